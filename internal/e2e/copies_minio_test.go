package e2e

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/einvault/einvault/internal/testsvc"
	"github.com/minio/minio-go/v7"
)

// TestCopiesMinIO: a local primary with a copy on a real MinIO server.
// MinIO down during a backup: degraded (exit 4) naming the copy; back up:
// the next sync completes. Then a pack deleted in the local copy and a
// different one corrupted in MinIO: the restore is byte-identical and
// names the copy it used, repair makes both pass check --read-data.
func TestCopiesMinIO(t *testing.T) {
	t.Parallel()
	m := testsvc.StartMinIO(t, testsvc.MinIOOptions{})
	e := newRepo(t)
	for k, v := range m.Env() {
		e.vars[k] = v
	}
	src := filepath.Join(e.dir, "src")
	writeSource(t, src, 30, 200000)
	loc := m.RepoURL("einvault-copies", "ev")
	e.mustRun("copies", "add", "minio", loc, "--offsite")
	e.mustRun("backup", src)

	m.Kill()
	writeSource(t, filepath.Join(src, "more"), 5, 200000)
	res := e.run("backup", src)
	if res.code != 4 || !strings.Contains(res.stderr, `copy "minio"`) {
		t.Fatalf("want a degraded backup naming copy minio:\n%s", res)
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	e.mustRun("sync")
	em := *e
	em.repo = loc
	em.mustRun("check", "--read-data")

	ps := packs(t, e.repo)
	if len(ps) < 2 {
		t.Fatalf("want 2 packs, got %v", ps)
	}
	// Delete ps[0] locally, corrupt ps[1] in MinIO.
	if err := os.Remove(filepath.Join(e.repo, ps[0])); err != nil {
		t.Fatal(err)
	}
	c, err := m.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := "ev/" + ps[1]
	obj, err := c.GetObject(ctx, "einvault-copies", key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	data[len(data)/2] ^= 0x40
	if _, err := c.PutObject(ctx, "einvault-copies", key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(e.dir, "restore")
	res = e.mustRun("restore", "latest", "--target", target)
	healed := res.stderr
	if !strings.Contains(healed, `copy "minio"`) {
		// The deleted pack may hold only the first snapshot's trees,
		// which the latest does not need: every pack is needed by one
		// of the two snapshots.
		healed += e.mustRun("restore", e.snapshots()[0].ID, "--target", target+"-first").stderr
	}
	if !strings.Contains(healed, `copy "minio"`) {
		t.Errorf("restore does not name the copy that healed it:\n%s", res)
	}
	sameTree(t, src, filepath.Join(target, src))
	if res := e.run("check", "--all-copies", "--read-data"); res.code != 5 {
		t.Fatalf("check --all-copies missed the damage:\n%s", res)
	}
	e.mustRun("repair")
	e.mustRun("check", "--all-copies", "--read-data")
	em.mustRun("check", "--storage-only")
}
