package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestExitCodes runs the binary into each documented failure and checks
// the exit code and that the message is one line naming the cause.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	e := newRepo(t)
	src := filepath.Join(e.dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "invoice.xml"), []byte("<HDon/>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.backup(src)
	missing := filepath.Join(e.dir, "no-such-repo")

	tests := []struct {
		name string
		repo string // "" keeps the repository, "-" unsets it
		pw   string // "" keeps the password
		args []string
		code int
		msg  string // regexp the one-line message must match
	}{
		{name: "wrong password snapshots", pw: "wrong", args: []string{"snapshots"}, code: exitWrongPass, msg: `(?i)wrong password`},
		{name: "wrong password backup", pw: "wrong", args: []string{"backup", src}, code: exitWrongPass, msg: `(?i)wrong password`},
		{name: "wrong password ls", pw: "wrong", args: []string{"ls", "latest"}, code: exitWrongPass, msg: `(?i)wrong password`},
		{name: "missing repository snapshots", repo: missing, args: []string{"snapshots"}, code: exitNoRepo, msg: `does not exist.*einvault init`},
		{name: "missing repository backup", repo: missing, args: []string{"backup", src}, code: exitNoRepo, msg: `does not exist`},
		{name: "missing repository restore", repo: missing, args: []string{"restore", "latest", "--target", filepath.Join(e.dir, "t")}, code: exitNoRepo, msg: `does not exist`},
		{name: "missing repository check", repo: missing, args: []string{"check"}, code: exitNoRepo, msg: `does not exist`},
		{name: "no repository given", repo: "-", args: []string{"snapshots"}, code: exitUsage, msg: `EINVAULT_REPO`},
		{name: "unknown command", args: []string{"bogus"}, code: exitUsage, msg: `unknown command`},
		{name: "unknown flag", args: []string{"snapshots", "--bogus"}, code: exitUsage, msg: `unknown flag`},
		{name: "backup without paths", args: []string{"backup"}, code: exitUsage, msg: `nothing to back up`},
		{name: "backup full and differential", args: []string{"backup", "--full", "--differential", src}, code: exitUsage, msg: `exclude each other`},
		{name: "ls without snapshot", args: []string{"ls"}, code: exitUsage, msg: `argument`},
		{name: "restore without target", args: []string{"restore", "latest"}, code: exitUsage, msg: `target`},
		{name: "init existing repository", args: []string{"init"}, code: exitError, msg: `(?i)exists`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ee := *e
			ee.t = t
			switch tc.repo {
			case "":
			case "-":
				ee.repo = ""
			default:
				ee.repo = tc.repo
			}
			if tc.pw != "" {
				ee.pw = tc.pw
			}
			res := ee.run(tc.args...)
			if res.code != tc.code {
				t.Fatalf("want exit %d:\n%s", tc.code, res)
			}
			if res.stdout != "" {
				t.Errorf("failure printed to stdout (want stderr only):\n%s", res)
			}
			msg := strings.TrimRight(res.stderr, "\n")
			if strings.Contains(msg, "\n") || msg == "" {
				t.Errorf("want a one-line message on stderr:\n%s", res)
			}
			if !regexp.MustCompile(tc.msg).MatchString(msg) {
				t.Errorf("message %q does not match %q", msg, tc.msg)
			}
			if !strings.HasPrefix(msg, "einvault: ") {
				t.Errorf("message %q does not start with \"einvault: \"", msg)
			}
		})
	}
}

// TestUnreadableSource backs up a directory together with /proc/self/mem,
// whose read fails with EIO even for root: the backup completes, lists
// the file, exits 3, and the snapshot restores everything else.
func TestUnreadableSource(t *testing.T) {
	t.Parallel()
	e := newRepo(t)
	src := filepath.Join(e.dir, "corpus")
	e.generate(src, 50, "--dump-size", "20000")
	want := takeManifest(t, src)

	res := e.run("backup", src, "/proc/self/mem")
	if res.code != exitPartial {
		t.Fatalf("want exit %d:\n%s", exitPartial, res)
	}
	if !strings.Contains(res.stderr, "/proc/self/mem") {
		t.Errorf("the unreadable file is not named:\n%s", res)
	}

	res = e.run("backup", "--json", src, "/proc/self/mem")
	if res.code != exitPartial {
		t.Fatalf("want exit %d:\n%s", exitPartial, res)
	}
	sum := parseSummary(t, res)
	if len(sum.Unreadable) != 1 || sum.Unreadable[0].Path != "/proc/self/mem" {
		t.Errorf("JSON summary lists unreadable %+v, want /proc/self/mem", sum.Unreadable)
	}
	e.mustRun("check", "--read-data")
	e.restoreAndCompare(sum.SnapshotID, src, want, "/proc/self/mem")
}

// TestJSONOutput checks that --json output of the commands that print
// data is JSON, one document per line, on stdout.
func TestJSONOutput(t *testing.T) {
	t.Parallel()
	e := newRepo(t)
	src := filepath.Join(e.dir, "corpus")
	e.generate(src, 30, "--dump-size", "10000")

	res := e.mustRun("backup", "--json", src)
	lines := jsonLines(t, res.stdout)
	if len(lines) == 0 || lines[len(lines)-1]["message_type"] != "summary" {
		t.Fatalf("backup --json: last line is not a summary:\n%s", res)
	}
	// Progress goes to stderr, also as JSON lines.
	jsonLines(t, res.stderr)

	res = e.mustRun("snapshots", "--json")
	var snaps []map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &snaps); err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots --json: %v (%d snapshots)\n%s", err, len(snaps), res)
	}
	for _, k := range []string{"id", "time", "host", "paths", "tree", "summary", "kind"} {
		if _, ok := snaps[0][k]; !ok {
			t.Errorf("snapshots --json: no %q in %v", k, snaps[0])
		}
	}
	for _, args := range [][]string{{"ls", "--json", "latest"}, {"stats", "--json"}, {"key", "list", "--json"}, {"check", "--json"}, {"version", "--json"}} {
		res := e.mustRun(args...)
		jsonLines(t, res.stdout)
	}

	// Errors are JSON too under --json, and the exit code is kept.
	ee := *e
	ee.pw = "wrong"
	res = ee.run("snapshots", "--json")
	if res.code != exitWrongPass {
		t.Fatalf("want exit %d:\n%s", exitWrongPass, res)
	}
	for _, l := range jsonLines(t, res.stdout) {
		if l["message_type"] != "error" || l["exit_code"] != float64(exitWrongPass) {
			t.Errorf("error JSON %v: want message_type error and exit_code %d", l, exitWrongPass)
		}
	}
}

// jsonLines parses every non-empty line of s as a JSON value; objects are
// returned.
func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// TestHelpGolden compares help texts with testdata/*.golden; run with
// -update to rewrite them after a deliberate change.
func TestHelpGolden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"help.golden", []string{"--help"}},
		{"backup_help.golden", []string{"backup", "--help"}},
	} {
		res := e.mustRun(tc.args...)
		path := filepath.Join("testdata", tc.golden)
		if *update {
			if err := os.WriteFile(path, []byte(res.stdout), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run 'go test ./internal/e2e -run HelpGolden -update' to create it)", err)
		}
		if string(want) != res.stdout {
			t.Errorf("einvault %s differs from %s (run with -update if the change is deliberate):\n--- want\n%s\n--- got\n%s",
				strings.Join(tc.args, " "), path, want, res.stdout)
		}
	}
}

// TestSourceBelowSymlink backs up a file whose parent directory is reached
// through a symbolic link (/srv/current -> releases/7): the snapshot
// records the path as directories, and the file restores.
func TestSourceBelowSymlink(t *testing.T) {
	t.Parallel()
	e := newRepo(t)
	real := filepath.Join(e.dir, "releases", "7")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, "invoice.xml"), []byte("<HDon>1</HDon>\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(e.dir, "current")
	if err := os.Symlink(filepath.Join("releases", "7"), link); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(link, "invoice.xml")
	sum := e.backup(src)
	res := e.mustRun("ls", "latest")
	if !strings.Contains(res.stdout, src) {
		t.Errorf("ls does not list %s:\n%s", src, res)
	}
	target := filepath.Join(e.dir, "target")
	e.mustRun("restore", sum.SnapshotID, "--target", target)
	got, err := os.ReadFile(filepath.Join(target, src))
	if err != nil || string(got) != "<HDon>1</HDon>\n" {
		t.Fatalf("restored %s: %q, %v", src, got, err)
	}
}
