package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	// The binary under test is built in TestMain by "go build"; importing
	// its command package makes the test binary, and so go test's result
	// cache, depend on every package the binary is built from.
	_ "github.com/einvault/einvault/internal/cli"
)

// Documented exit codes (README, DESIGN.md). They are written out here
// rather than imported: these tests see the binary from outside.
const (
	exitOK        = 0
	exitError     = 1
	exitUsage     = 2
	exitPartial   = 3
	exitDamaged   = 5
	exitNoRepo    = 10
	exitLocked    = 11
	exitWrongPass = 12
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// bin is the einvault binary built by TestMain.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "einvault-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go env GOMOD:", err)
		return 1
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		fmt.Fprintln(os.Stderr, "e2e: not inside the einvault module")
		return 1
	}
	bin = filepath.Join(tmp, "einvault")
	build := exec.Command("go", "build", "-o", bin, "./cmd/einvault")
	build.Dir = filepath.Dir(gomod)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building einvault:", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "e2e: built %s in %s\n", bin, time.Since(start).Round(time.Millisecond))
	}
	return m.Run()
}

// result is what one run of the binary did.
type result struct {
	args   []string
	code   int
	stdout string
	stderr string
	dur    time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("einvault %s: exit %d after %s\n--- stdout:\n%s--- stderr:\n%s", strings.Join(r.args, " "), r.code, r.dur.Round(time.Millisecond),
		tail(r.stdout, 4000), tail(r.stderr, 4000))
}

func (r result) output() string { return r.stdout + r.stderr }

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// env runs the binary with a clean einvault environment: cheap key
// derivation, a repository and a password.
type env struct {
	t    testing.TB
	dir  string // scratch directory
	repo string
	pw   string
	vars map[string]string
}

// newEnv returns an environment with a repository path (not created yet).
func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	// the invoice catalog cache stays inside the test's directory
	return &env{t: t, dir: dir, repo: filepath.Join(dir, "repo"), pw: "correct horse battery staple",
		vars: map[string]string{"EINVAULT_CACHE_DIR": filepath.Join(dir, "cache")}}
}

// newRepo returns an environment with an initialised repository.
func newRepo(t testing.TB) *env {
	t.Helper()
	e := newEnv(t)
	e.mustRun("init")
	return e
}

func (e *env) environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "EINVAULT_") {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "EINVAULT_INSECURE_TEST_KDF=1", "EINVAULT_STATE_DIR="+filepath.Join(e.dir, "state"), "EINVAULT_JOURNAL_SPOOL="+filepath.Join(e.dir, "spool"))
	if e.repo != "" {
		out = append(out, "EINVAULT_REPO="+e.repo)
	}
	if e.pw != "" {
		out = append(out, "EINVAULT_PASSWORD="+e.pw)
	}
	keys := make([]string, 0, len(e.vars))
	for k := range e.vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+e.vars[k])
	}
	return out
}

func (e *env) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = e.environ()
	cmd.Dir = e.dir
	return cmd
}

// run runs the binary to completion (at most 5 minutes).
func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runStdin(nil, args...)
}

func (e *env) runStdin(stdin io.Reader, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := e.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &stdout, &stderr, stdin
	start := time.Now()
	err := cmd.Run()
	res := result{args: args, stdout: stdout.String(), stderr: stderr.String(), dur: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		res.code = ee.ExitCode()
	default:
		e.t.Fatalf("einvault %s: %v\n%s", strings.Join(args, " "), err, res)
	}
	return res
}

// mustRun runs the binary and fails the test unless it exits 0.
func (e *env) mustRun(args ...string) result {
	e.t.Helper()
	res := e.run(args...)
	if res.code != 0 {
		e.t.Fatalf("expected success:\n%s", res)
	}
	return res
}

// killed is the outcome of a process killed at a chosen moment.
type killed struct {
	result
	// finished is set when the process exited before the kill.
	finished bool
}

// runKilled starts the binary and sends SIGKILL after delay (unless it
// finished earlier).
func (e *env) runKilled(delay time.Duration, args ...string) killed {
	e.t.Helper()
	cmd := e.command(context.Background(), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start einvault %s: %v", strings.Join(args, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	k := killed{}
	select {
	case err = <-done:
		k.finished = true
	case <-time.After(delay):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err = <-done
	}
	k.result = result{args: args, stdout: stdout.String(), stderr: stderr.String(), dur: time.Since(start)}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		k.code = ee.ExitCode() // -1 when killed
	}
	return k
}

// snapshotInfo is the part of "snapshots --json" the tests use.
type snapshotInfo struct {
	ID    string   `json:"id"`
	Time  string   `json:"time"`
	Paths []string `json:"paths"`
	Kind  string   `json:"kind"`
}

func (e *env) snapshots() []snapshotInfo {
	e.t.Helper()
	res := e.mustRun("snapshots", "--json")
	var list []snapshotInfo
	if err := json.Unmarshal([]byte(res.stdout), &list); err != nil {
		e.t.Fatalf("snapshots --json: %v\n%s", err, res)
	}
	return list
}

// backupSummary is the summary line of "backup --json".
type backupSummary struct {
	MessageType string `json:"message_type"`
	SnapshotID  string `json:"snapshot_id"`
	Kind        string `json:"kind"`
	Summary     struct {
		TotalFiles int   `json:"total_files"`
		BytesAdded int64 `json:"bytes_added"`
	} `json:"summary"`
	Unreadable []struct {
		Path string `json:"path"`
	} `json:"unreadable"`
}

// backup runs "backup --json" to completion and returns the new snapshot.
func (e *env) backup(args ...string) backupSummary {
	e.t.Helper()
	res := e.mustRun(append([]string{"backup", "--json"}, args...)...)
	return parseSummary(e.t, res)
}

func parseSummary(t testing.TB, res result) backupSummary {
	t.Helper()
	var sum backupSummary
	for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		var s backupSummary
		if json.Unmarshal([]byte(line), &s) == nil && s.MessageType == "summary" {
			sum = s
		}
	}
	if sum.SnapshotID == "" {
		t.Fatalf("no summary in backup --json output:\n%s", res)
	}
	return sum
}

// repoSize is the number of bytes the repository occupies.
func (e *env) repoSize() int64 {
	e.t.Helper()
	var n int64
	err := filepath.WalkDir(e.repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// generate writes a corpus of n invoices into dir.
func (e *env) generate(dir string, n int, extra ...string) {
	e.t.Helper()
	e.mustRun(append([]string{"corpus", "generate", dir, "--files", strconv.Itoa(n)}, extra...)...)
}

// entry describes one file system object of a source tree.
type entry struct {
	Type   string // "file", "dir", "symlink"
	Mode   fs.FileMode
	Size   int64
	Hash   string // sha256 of a file's content
	Target string // symlink target
}

// manifest maps slash-separated paths relative to a root to entries.
type manifest map[string]entry

// takeManifest describes every file, directory and symlink below root.
func takeManifest(t testing.TB, root string) manifest {
	t.Helper()
	m := manifest{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			m[rel] = entry{Type: "dir", Mode: fi.Mode().Perm()}
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			m[rel] = entry{Type: "symlink", Target: target}
		case d.Type().IsRegular():
			h, err := hashFile(p)
			if err != nil {
				return err
			}
			m[rel] = entry{Type: "file", Mode: fi.Mode().Perm(), Size: fi.Size(), Hash: h}
		default:
			m[rel] = entry{Type: "other"}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("manifest of %s: %v", root, err)
	}
	return m
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// diffManifests lists the differences between want and got (at most max).
func diffManifests(want, got manifest, max int) []string {
	var out []string
	add := func(format string, args ...any) {
		if len(out) < max {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, ok := got[k]
		switch {
		case !ok:
			add("missing: %s", k)
		case g != want[k]:
			add("differs: %s: want %+v, got %+v", k, want[k], g)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			add("unexpected: %s", k)
		}
	}
	return out
}

// restoreAndCompare restores snapshot id into a fresh directory and
// compares the restored copy of src with want, byte for byte (by SHA-256)
// and mode for mode. Nothing but the path leading to src may appear in
// the target, besides the directories leading to the other sources of
// the snapshot given in others.
func (e *env) restoreAndCompare(id, src string, want manifest, others ...string) {
	e.t.Helper()
	target, err := os.MkdirTemp(e.dir, "restore-")
	if err != nil {
		e.t.Fatal(err)
	}
	defer os.RemoveAll(target)
	e.mustRun("restore", id, "--target", target)
	got := takeManifest(e.t, filepath.Join(target, src))
	if d := diffManifests(want, got, 20); len(d) > 0 {
		e.t.Fatalf("restore of snapshot %s differs from the source it was taken from:\n  %s", id, strings.Join(d, "\n  "))
	}
	// The target holds only the directories leading to src.
	all := takeManifest(e.t, target)
	prefix := strings.TrimPrefix(filepath.ToSlash(src), "/")
	leading := func(p string) bool {
		for _, o := range append([]string{src}, others...) {
			if strings.HasPrefix(strings.TrimPrefix(filepath.ToSlash(o), "/"), p+"/") {
				return true
			}
		}
		return false
	}
	for p, en := range all {
		if p == "." || p == prefix || strings.HasPrefix(p, prefix+"/") {
			continue
		}
		if en.Type != "dir" || !leading(p) {
			e.t.Fatalf("restore of %s wrote %s (%s) into the target, outside the snapshot's paths", id, p, en.Type)
		}
	}
}

// envInt reads a positive integer from the environment.
func envInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a non-negative integer", name, v)
	}
	return n
}

// newRand returns a random source seeded from env (if set) or the clock,
// and logs the seed so that a failure can be replayed.
func newRand(t testing.TB, envName string) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(envName); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want an unsigned integer", envName, v)
		}
		seed = s
	}
	t.Logf("random seed %d (replay with %s=%d)", seed, envName, seed)
	return rand.New(rand.NewPCG(seed, 0x6569_6e76_6175_6c74))
}

// copyDir copies a directory tree of regular files and directories.
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(to, fi.Mode().Perm())
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy %s to %s: %v", src, dst, err)
	}
}
