package walcli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/einvault/einvault/internal/backend/local"
	"github.com/einvault/einvault/internal/crypto"
	"github.com/einvault/einvault/internal/replica"
	"github.com/einvault/einvault/internal/repo"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    options
		wantErr string
	}{
		{args: []string{"-r", "/repo", "wal-push", "--key-cache", "/k", "pg_wal/000000010000000000000001"},
			want: options{repo: "/repo", keyCache: "/k", command: "wal-push", args: []string{"pg_wal/000000010000000000000001"}}},
		{args: []string{"push", "--repo=/r", "-q", "--json", "x"},
			want: options{repo: "/r", quiet: true, json: true, command: "wal-push", args: []string{"x"}}},
		{args: []string{"--key-cache=/k", "fetch", "NAME", "PATH", "-v"},
			want: options{keyCache: "/k", verbose: true, command: "wal-fetch", args: []string{"NAME", "PATH"}}},
		{args: []string{"wal-fetch", "--", "NAME", "-PATH"},
			want: options{command: "wal-fetch", args: []string{"NAME", "-PATH"}}},
		{args: []string{"--help"}, want: options{command: "help"}},
		{args: nil, wantErr: "no command"},
		{args: []string{"wal-push"}, wantErr: "one argument"},
		{args: []string{"wal-push", "a", "b"}, wantErr: "one argument"},
		{args: []string{"wal-fetch", "a"}, wantErr: "two arguments"},
		{args: []string{"backup", "a"}, wantErr: "unknown command"},
		{args: []string{"--password", "x", "wal-push", "a"}, wantErr: "unknown option"},
		{args: []string{"wal-push", "a", "-r"}, wantErr: "needs a value"},
		{args: []string{"--json=yes", "wal-push", "a"}, wantErr: "takes no value"},
	} {
		got, err := parse(tc.args)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parse(%q): error %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parse(%q): %v", tc.args, err)
			continue
		}
		if got.repo != tc.want.repo || got.keyCache != tc.want.keyCache || got.json != tc.want.json || got.quiet != tc.want.quiet ||
			got.verbose != tc.want.verbose || got.command != tc.want.command || !slices.Equal(got.args, tc.want.args) {
			t.Errorf("parse(%q) = %+v, want %+v", tc.args, *got, tc.want)
		}
	}
}

type fixture struct {
	dir, repo, keys string
	env             map[string]string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{dir: t.TempDir()}
	f.repo = filepath.Join(f.dir, "repo")
	f.keys = filepath.Join(f.dir, "keys")
	be, err := local.Create(ctx, f.repo)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, be, []byte("secret"), repo.Options{KDF: crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	kc, err := r.ExportKeyCache()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.keys, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	f.env = map[string]string{"EINVAULT_INSECURE_TEST_KDF": "1"}
	return f
}

func (f *fixture) run(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = Run(args, &o, &e, func(k string) string { return f.env[k] })
	return o.String(), e.String(), code
}

func (f *fixture) segment(t *testing.T, name string, seed byte) (string, []byte) {
	t.Helper()
	p := filepath.Join(f.dir, "pg_wal", name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2<<20)
	for i := range b {
		b[i] = byte(i>>7) ^ seed
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, b
}

func TestPushFetch(t *testing.T) {
	f := newFixture(t)
	const name = "000000010000000000000007"
	seg, content := f.segment(t, name, 1)
	out, errOut, code := f.run("-r", f.repo, "--json", "wal-push", "--key-cache", f.keys, seg)
	if code != 0 {
		t.Fatalf("wal-push: exit %d: %s", code, errOut)
	}
	var res struct {
		Name            string `json:"name"`
		Bytes           int    `json:"bytes"`
		Stored          int    `json:"stored_bytes"`
		AlreadyArchived bool   `json:"already_archived"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Name != name || res.Bytes != len(content) || res.Stored == 0 || res.AlreadyArchived {
		t.Fatalf("wal-push --json: %q (%v)", out, err)
	}
	// PostgreSQL calling it again for the same file.
	if _, errOut, code := f.run("-r", f.repo, "wal-push", "--key-cache", f.keys, seg); code != 0 {
		t.Fatalf("second wal-push: exit %d: %s", code, errOut)
	}
	// The same name with other content (a second cluster) fails.
	if err := os.WriteFile(seg, content[:len(content)-1], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := f.run("-r", f.repo, "wal-push", "--key-cache", f.keys, seg); code != 1 || !strings.Contains(errOut, "already archived") {
		t.Fatalf("conflicting wal-push: exit %d: %s", code, errOut)
	}
	// Fetch with the key cache from the environment.
	f.env["EINVAULT_REPO"] = f.repo
	f.env["EINVAULT_KEY_CACHE"] = f.keys
	dst := filepath.Join(f.dir, "RECOVERYXLOG")
	if _, errOut, code := f.run("wal-fetch", name, dst); code != 0 {
		t.Fatalf("wal-fetch: exit %d: %s", code, errOut)
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("fetched content differs (%v)", err)
	}
	// The end of the archive: exit 1, the message names the file.
	if _, errOut, code := f.run("wal-fetch", "000000010000000000000008", dst); code != 1 || !strings.Contains(errOut, "not in the archive") {
		t.Fatalf("wal-fetch of a missing file: exit %d: %s", code, errOut)
	}
	// With the password instead of the key cache.
	delete(f.env, "EINVAULT_KEY_CACHE")
	f.env["EINVAULT_PASSWORD"] = "secret"
	if _, errOut, code := f.run("fetch", name, dst); code != 0 {
		t.Fatalf("wal-fetch with the password: exit %d: %s", code, errOut)
	}
	f.env["EINVAULT_PASSWORD"] = "wrong"
	if _, _, code := f.run("fetch", name, dst); code != 12 {
		t.Fatalf("wrong password: exit %d, want 12", code)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	seg, _ := f.segment(t, "000000010000000000000001", 2)
	bad := filepath.Join(f.dir, "notwal")
	if err := os.WriteFile(bad, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no repository", []string{"wal-push", "--key-cache", f.keys, seg}, 2, "no repository"},
		{"no key cache or password", []string{"-r", f.repo, "wal-push", seg}, 2, "no key cache and no password"},
		{"missing repository", []string{"-r", filepath.Join(f.dir, "none"), "wal-push", "--key-cache", f.keys, seg}, 10, "does not exist"},
		{"not a WAL name", []string{"-r", f.repo, "wal-push", "--key-cache", f.keys, bad}, 2, "not a PostgreSQL WAL file name"},
		{"missing segment", []string{"-r", f.repo, "wal-push", "--key-cache", f.keys, filepath.Join(f.dir, "000000010000000000000099")}, 1, "no such file"},
		{"missing key cache", []string{"-r", f.repo, "wal-push", "--key-cache", filepath.Join(f.dir, "nokeys"), seg}, 1, "einvault key cache"},
		{"usage", []string{"wal-push"}, 2, "one argument"},
	} {
		_, errOut, code := f.run(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tc.name, code, errOut, tc.code, tc.msg)
		}
		if strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%s: error is not one line: %q", tc.name, errOut)
		}
	}
	// Another repository's key cache.
	g := newFixture(t)
	if _, errOut, code := f.run("-r", f.repo, "wal-push", "--key-cache", g.keys, seg); code != 1 || !strings.Contains(errOut, "does not match") {
		t.Errorf("foreign key cache: exit %d: %s", code, errOut)
	}
	out, _, code := f.run("--help")
	if code != 0 || !strings.Contains(out, "archive_command") {
		t.Errorf("--help: exit %d: %q", code, out)
	}
}

// TestHandOff: remote storage (the repository or a copy) is handed,
// whole and before anything is written, to the full einvault.
func TestHandOff(t *testing.T) {
	f := newFixture(t)
	seg, _ := f.segment(t, "000000010000000000000005", 3)
	binDir := t.TempDir()
	full := filepath.Join(binDir, "einvault")
	if err := os.WriteFile(full, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", binDir)
	type call struct {
		bin  string
		argv []string
	}
	var calls []call
	run := func(args ...string) int {
		var o, e bytes.Buffer
		return RunWithExec(args, &o, &e, func(k string) string { return f.env[k] }, func(bin string, argv []string) error {
			calls = append(calls, call{bin, argv})
			return nil
		})
	}
	if code := run("-r", "s3:http://127.0.0.1:9/bucket", "-q", "wal-push", "--key-cache", f.keys, seg); code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := []string{"einvault", "-r", "s3:http://127.0.0.1:9/bucket", "-q", "wal-push", "--key-cache", f.keys, "--", seg}
	if len(calls) != 1 || calls[0].bin != full || !slices.Equal(calls[0].argv, want) {
		t.Fatalf("hand-off %+v, want %s %q", calls, full, want)
	}
	calls = nil
	f.env["EINVAULT_REPO"] = "sftp:backup@nas:/srv/repo"
	if code := run("wal-fetch", "000000010000000000000005", "/x/RECOVERYXLOG"); code != 0 || len(calls) != 1 ||
		!slices.Equal(calls[0].argv, []string{"einvault", "-r", "sftp:backup@nas:/srv/repo", "wal-fetch", "--", "000000010000000000000005", "/x/RECOVERYXLOG"}) {
		t.Fatalf("fetch hand-off: exit %d, %+v", code, calls)
	}
	delete(f.env, "EINVAULT_REPO")

	// A local repository with a remote copy: handed off before the
	// segment is stored anywhere.
	calls = nil
	ctx := context.Background()
	be, err := local.Open(ctx, f.repo)
	if err != nil {
		t.Fatal(err)
	}
	kc, _ := os.ReadFile(f.keys)
	r, err := repo.OpenWithKeyCache(ctx, be, kc, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := replica.List{Copies: []replica.Copy{
		{Name: "main", Location: f.repo, Kind: replica.KindDisk},
		{Name: "offsite", Location: "s3:https://s3.example.com/bucket", Kind: replica.KindS3, Order: 1},
	}}
	if _, err := r.SaveCopies(ctx, l, nil); err != nil {
		t.Fatal(err)
	}
	if code := run("-r", f.repo, "wal-push", "--key-cache", f.keys, seg); code != 0 || len(calls) != 1 || calls[0].argv[2] != f.repo {
		t.Fatalf("hand-off for a remote copy: exit %d, %+v", code, calls)
	}
	if _, err := os.Stat(filepath.Join(f.repo, "wal", "000000010000000000000005")); err == nil {
		t.Fatal("segment stored before the hand-off")
	}
	// No einvault to hand to: a one-line error naming the way out.
	t.Setenv("PATH", t.TempDir())
	var o, e bytes.Buffer
	code := RunWithExec([]string{"-r", "rclone:remote:repo", "wal-push", "--key-cache", f.keys, seg}, &o, &e, func(k string) string { return f.env[k] }, nil)
	if code != 1 || !strings.Contains(e.String(), "einvault wal-push") {
		t.Fatalf("no einvault: exit %d: %s", code, e.String())
	}
}

func TestLocalPath(t *testing.T) {
	for _, tc := range []struct {
		loc, path string
		ok        bool
	}{
		{"/backup/repo", "/backup/repo", true},
		{"relative/repo", "relative/repo", true},
		{"local:/backup/repo", "/backup/repo", true},
		{"./odd:name", "./odd:name", true},
		{"s3:http://minio:9000/b", "", false},
		{"sftp:u@h:/p", "", false},
		{"rclone:gdrive:repo", "", false},
		{"azure:container", "", false},
		{"local:", "", false},
		{"", "", false},
	} {
		p, ok := localPath(tc.loc)
		if p != tc.path || ok != tc.ok {
			t.Errorf("localPath(%q) = %q, %v; want %q, %v", tc.loc, p, ok, tc.path, tc.ok)
		}
	}
}
