package catalog

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/archiver"
	"github.com/einvault/einvault/internal/backend/mem"
	"github.com/einvault/einvault/internal/crypto"
	"github.com/einvault/einvault/internal/invoice"
	"github.com/einvault/einvault/internal/repo"
)

func recognize(ctx context.Context, name string, data []byte) ([]invoice.Invoice, error) {
	return invoice.Recognize(ctx, name, data, invoice.Limits{})
}

// recheck parses and verifies signatures, as 'invoices verify' does.
func recheck(ctx context.Context, name string, data []byte) ([]invoice.Invoice, error) {
	invs, err := recognize(ctx, name, data)
	for i := range invs {
		if err := invoice.VerifySignatures(ctx, data, &invs[i], invoice.VerifyOptions{}); err != nil {
			return nil, err
		}
	}
	return invs, err
}

type testEnv struct {
	t     *testing.T
	be    *mem.Backend
	r     *repo.Repository
	cache *Cache
	clock time.Time
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	be := mem.New()
	e := &testEnv{t: t, be: be, clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r, err := repo.Init(context.Background(), be, []byte("pw"), e.repoOpts())
	if err != nil {
		t.Fatal(err)
	}
	e.r = r
	c, err := OpenCache(context.Background(), filepath.Join(t.TempDir(), "cache.sqlite"), func() time.Time { return e.clock })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	e.cache = c
	return e
}

func (e *testEnv) repoOpts() repo.Options {
	return repo.Options{KDF: crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1}, PackSize: 1 << 20,
		Now:     func() time.Time { return e.clock },
		Chunker: repo.ChunkerParams{Algorithm: "fastcdc-v1.0.0", Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}}
}

// backup runs one backup of dir with a catalog (parent: previous snapshot).
func (e *testEnv) backup(dir string, parent *repo.Snapshot) (*repo.Snapshot, BuildStats) {
	e.t.Helper()
	ctx := context.Background()
	e.clock = e.clock.Add(time.Hour)
	var pcat *Reader
	if parent != nil && parent.Catalog != nil {
		var err error
		if pcat, err = LoadReader(ctx, e.r, parent); err != nil {
			e.t.Fatal(err)
		}
	}
	b := NewBuilder(ctx, BuilderOptions{Recognize: recognize, Parent: pcat, Index: e.r.Index(), Store: e.r})
	defer b.Close()
	res, err := archiver.New(e.r, archiver.Options{Parent: parent, Host: "h", Observer: b}).Backup(ctx, []string{dir})
	if err != nil {
		e.t.Fatal(err)
	}
	if res.Snapshot.Catalog == nil {
		e.t.Fatal("snapshot has no catalog")
	}
	return res.Snapshot, b.Stats()
}

func (e *testEnv) sync() SyncStats {
	e.t.Helper()
	st, err := e.cache.Sync(context.Background(), e.r)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

func xmlFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if filepath.Ext(p) == ".xml" {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[p] = data
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func strconvFormat(n int64) string { return strconv.FormatInt(n, 10) }
