package pg_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/einvault/einvault/internal/backend/local"
	"github.com/einvault/einvault/internal/crypto"
	"github.com/einvault/einvault/internal/replica"
	"github.com/einvault/einvault/internal/repo"
)

// TestWALPushCopies: wal-push stores the segment in every copy that is up,
// reports the others loudly, and fails only when no copy can take it.
func TestWALPushCopies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	second := filepath.Join(dir, "second")
	e.mustRun("init", "-r", second) // same password; another repository is enough to receive files
	be, err := local.Open(ctx, e.repo)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, be, []byte("test-password"), repo.Options{KDF: crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	list := replica.List{Copies: []replica.Copy{
		{Name: "main", Location: e.repo, Kind: replica.KindDisk, Order: 1},
		{Name: "nas", Location: second, Kind: replica.KindNAS, Order: 2},
		{Name: "gone", Location: filepath.Join(dir, "unmounted"), Kind: replica.KindDisk, Order: 3},
	}}
	if _, err := r.SaveCopies(ctx, list, nil); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, "000000010000000000000007")
	if err := os.WriteFile(seg, []byte(strings.Repeat("wal", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := e.run("wal-push", seg)
	if code != 0 || !strings.Contains(errOut, `NOT stored in copy "gone"`) {
		t.Fatalf("one copy down: exit %d, %s", code, errOut)
	}
	for _, root := range []string{e.repo, second} {
		if _, err := os.Stat(filepath.Join(root, "wal", "000000010000000000000007")); err != nil {
			t.Errorf("segment missing in %s: %v", root, err)
		}
	}
	// The first copy loses its WAL directory: the second serves fetches
	// and receives pushes.
	if err := os.RemoveAll(filepath.Join(e.repo, "wal")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.repo, "wal"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.mustRun("wal-fetch", "000000010000000000000007", filepath.Join(dir, "fetched"))
	seg8 := filepath.Join(dir, "000000010000000000000008")
	if err := os.WriteFile(seg8, []byte("eight"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := e.run("wal-push", seg8); code != 0 || !strings.Contains(errOut, "NOT stored in "+e.repo) {
		t.Errorf("first copy broken: exit %d, %s", code, errOut)
	}
	// No copy can take it: fail, so PostgreSQL retries.
	if err := os.RemoveAll(filepath.Join(second, "wal")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(second, "wal"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	seg9 := filepath.Join(dir, "000000010000000000000009")
	if err := os.WriteFile(seg9, []byte("nine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := e.run("wal-push", seg9); code != 1 || !strings.Contains(errOut, "no copy could store it") {
		t.Errorf("all copies down: exit %d, %s", code, errOut)
	}
}
