package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/einvault/einvault/internal/testsvc"
)

// newS3Env returns an environment whose repository is loc on m (not
// created yet), with m's credentials (and CA) in the environment.
func newS3Env(t *testing.T, m *testsvc.MinIO, loc string) *env {
	t.Helper()
	e := newEnv(t)
	e.repo = loc
	for k, v := range m.Env() {
		e.vars[k] = v
	}
	return e
}

// TestS3EndToEnd runs init, backup, restore and check against MinIO over
// HTTPS with a private CA, through the bandwidth and connection limits.
func TestS3EndToEnd(t *testing.T) {
	m := testsvc.StartMinIO(t, testsvc.MinIOOptions{TLS: true})
	e := newS3Env(t, m, m.RepoURL("einvault", "prod/site1"))
	res := e.mustRun("init")
	if !strings.Contains(res.output(), "s3:https://") {
		t.Errorf("init does not name the S3 location:\n%s", res)
	}
	if res := e.run("init"); res.code == 0 {
		t.Fatalf("second init succeeded:\n%s", res)
	}
	src := filepath.Join(e.dir, "src")
	e.generate(src, 150)
	want := takeManifest(t, src)
	first := e.backup("--connections", "2", "--limit-upload", "102400", src)
	e.mustRun("corpus", "mutate", src, "--seed", "7", "--change", "0.1", "--add", "0.05")
	want2 := takeManifest(t, src)
	second := e.backup(src)
	if second.Summary.BytesAdded >= first.Summary.BytesAdded {
		t.Errorf("incremental backup added %d bytes, the first %d", second.Summary.BytesAdded, first.Summary.BytesAdded)
	}
	e.mustRun("check", "--read-data")
	e.restoreAndCompare(first.SnapshotID, src, want)
	e.restoreAndCompare("latest", src, want2)

	// Without the CA the server is not trusted; without the bucket there
	// is no repository (exit 10).
	noCA := newS3Env(t, m, e.repo)
	delete(noCA.vars, "EINVAULT_S3_CA_FILE")
	if res := noCA.run("snapshots"); res.code == 0 || !strings.Contains(res.stderr, "EINVAULT_S3_CA_FILE") {
		t.Errorf("snapshots without the CA:\n%s", res)
	}
	missing := newS3Env(t, m, m.RepoURL("nosuchbucket", ""))
	if res := missing.run("snapshots"); res.code != 10 {
		t.Errorf("snapshots of a missing bucket: want exit 10\n%s", res)
	}
	bad := newS3Env(t, m, m.RepoURL("einvault", "?colour=red"))
	if res := bad.run("snapshots"); res.code != 2 {
		t.Errorf("unknown location option: want exit 2\n%s", res)
	}
}

// TestS3ObjectLock: with object lock, backups cannot be deleted before
// their retention ends; forget --prune says so and exits 0, and the
// repository stays intact.
func TestS3ObjectLock(t *testing.T) {
	m := testsvc.StartMinIO(t, testsvc.MinIOOptions{})
	e := newS3Env(t, m, m.RepoURL("locked", "repo?object-lock=1d"))
	e.mustRun("init") // creates the bucket with object lock
	src := filepath.Join(e.dir, "src")
	e.generate(src, 100)
	want := takeManifest(t, src)
	first := e.backup(src)
	e.mustRun("corpus", "mutate", src, "--seed", "3", "--change", "0.5")
	e.backup(src)

	res := e.mustRun("forget", "--keep-last", "1", "--prune", "--json")
	var out struct {
		Removed   int      `json:"removed"`
		Protected []string `json:"protected"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("forget --json: %v\n%s", err, res)
	}
	if out.Removed != 0 || len(out.Protected) != 1 || !strings.Contains(out.Protected[0], "protected by a retention period until") {
		t.Fatalf("forget of a protected snapshot: %+v\n%s", out, res)
	}
	res = e.mustRun("forget", "--keep-last", "1", "--prune")
	if !strings.Contains(res.stdout, "kept snapshot") {
		t.Errorf("forget does not report the protected snapshot:\n%s", res)
	}
	if got := len(e.snapshots()); got != 2 {
		t.Fatalf("%d snapshots after a refused forget, want 2", got)
	}
	e.mustRun("check", "--read-data")
	e.restoreAndCompare(first.SnapshotID, src, want)

	// A stolen credential cannot delete the data either: every version
	// of a pack survives a direct delete.
	c, err := m.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var victim minio.ObjectInfo
	lctx, cancel := context.WithCancel(ctx)
	for oi := range c.ListObjects(lctx, "locked", minio.ListObjectsOptions{Prefix: "repo/data/", Recursive: true, WithVersions: true}) {
		if victim.Key != "" {
			continue // draining after cancel
		}
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		victim = oi
		cancel()
	}
	cancel()
	if victim.Key == "" {
		t.Fatal("no pack in the locked bucket")
	}
	if err := c.RemoveObject(ctx, "locked", victim.Key, minio.RemoveObjectOptions{VersionID: victim.VersionID}); err == nil {
		t.Fatalf("deleting locked version %s of %s succeeded", victim.VersionID, victim.Key)
	}
	e.mustRun("check", "--read-data")
}

// TestS3ServerKilledDuringBackup kills MinIO (SIGKILL) while a backup
// uploads, restarts it on the same data and port, and backs up again:
// the new backup succeeds, check --read-data passes, and the restore is
// byte-identical.
func TestS3ServerKilledDuringBackup(t *testing.T) {
	m := testsvc.StartMinIO(t, testsvc.MinIOOptions{})
	e := newS3Env(t, m, m.RepoURL("fault", ""))
	e.mustRun("init")
	src := filepath.Join(e.dir, "src")
	e.generate(src, 800) // about 11 MB
	want := takeManifest(t, src)

	// Upload at 1 MiB/s so that the kill lands in the middle.
	cmd := e.command(context.Background(), "--limit-upload", "1024", "backup", "--json", src)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	time.Sleep(3 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("backup finished before the kill (%v): make the corpus larger\n%s%s", err, stdout.String(), stderr.String())
	default:
	}
	m.Kill()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("backup still running 2 minutes after the server died")
	}
	t.Logf("backup with the server killed: %v\n%s", err, tail(stderr.String(), 600))
	if err == nil {
		t.Fatalf("backup succeeded although the server was killed mid-upload:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "einvault:") {
		t.Errorf("no clear error message:\n%s", stderr.String())
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if n := len(e.snapshots()); n != 0 {
		t.Fatalf("%d snapshots after the failed backup, want 0", n)
	}
	sum := e.backup(src)
	e.mustRun("check", "--read-data")
	e.restoreAndCompare(sum.SnapshotID, src, want)
	// Whatever the killed backup left is unreferenced; prune removes it
	// and the repository stays complete.
	e.mustRun("prune", "--grace", "0")
	e.mustRun("check", "--read-data")
}
