package checker

import (
	"context"
	"path"
	"strings"
	"testing"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/mem"
	"github.com/einvault/einvault/internal/catalog"
	"github.com/einvault/einvault/internal/repo"
)

// withCatalog stores a snapshot naming a catalog with the given payload
// (nil: a real, empty catalog) and returns the snapshot.
func withCatalog(t *testing.T, be backend.Backend, base *repo.Snapshot, payload []byte) *repo.Snapshot {
	t.Helper()
	ctx := context.Background()
	r := open(t, be)
	if payload == nil {
		var err error
		if payload, err = (&catalog.Catalog{}).Encode(); err != nil {
			t.Fatal(err)
		}
	}
	cid, err := r.SaveCatalog(ctx, payload)
	if err != nil {
		t.Fatal(err)
	}
	s := *base
	s.Catalog = &cid
	s.Time = s.Time.Add(3600e9)
	if _, err := r.SaveSnapshot(ctx, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func TestCatalogs(t *testing.T) {
	f := newFixture(t)
	base := f.clone(t)
	s := withCatalog(t, base, f.snaps[1], nil)
	h := backend.Handle{Type: backend.CatalogFile, Name: s.Catalog.String()}
	if rep := check(t, base, Options{}); rep.Damaged() {
		t.Fatalf("healthy catalog reported:\n%s", dump(rep))
	}
	if rep, err := CheckStorage(context.Background(), base, Options{}); err != nil || rep.Damaged() {
		t.Fatalf("storage-only on a healthy catalog: %v\n%s", err, dump(rep))
	}

	muts := append(append([]mutation{}, flips...), truncations...)
	muts = append(muts, deletion)
	for _, m := range muts {
		t.Run(m.name, func(t *testing.T) {
			be := mem.New()
			copyAll(t, base, be)
			mutate(t, be, h, m)
			rep := check(t, be, Options{})
			p := findError(rep, KindCatalogDamaged, path.Join("catalogs", s.Catalog.String()))
			if p == nil || !rep.Damaged() || !strings.Contains(p.Message, s.ID.Short()) || len(p.Affected) != 1 || p.Affected[0].Snapshot != s.ID {
				t.Fatalf("damaged catalog not reported naming snapshot %s:\n%s", s.ID.Short(), dump(rep))
			}
			if m.name == deletion.name {
				return
			}
			srep, err := CheckStorage(context.Background(), be, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if findError(srep, KindFileDamaged, path.Join("catalogs", s.Catalog.String())) == nil {
				t.Fatalf("storage-only check missed the damaged catalog:\n%s", dump(srep))
			}
		})
	}

	// Sealed correctly but not a catalog: decoding fails.
	t.Run("not-a-catalog", func(t *testing.T) {
		be := f.clone(t)
		st, err := catalog.EncodeStatus([]catalog.StatusRecord{{Key: "k", Status: "cancelled", Source: "x"}})
		if err != nil {
			t.Fatal(err)
		}
		bad := withCatalog(t, be, f.snaps[0], st)
		rep := check(t, be, Options{})
		p := findError(rep, KindCatalogDamaged, path.Join("catalogs", bad.Catalog.String()))
		if p == nil || !strings.Contains(p.Message, "does not decode") {
			t.Fatalf("undecodable catalog not reported:\n%s", dump(rep))
		}
		// Status records nobody names are not an error.
		if _, err := open(t, be).SaveCatalog(context.Background(), st); err != nil {
			t.Fatal(err)
		}
		if rep := check(t, be, Options{}); len(rep.Errors) != 1 {
			t.Fatalf("unnamed status records reported:\n%s", dump(rep))
		}
	})
}

func copyAll(t *testing.T, src, dst backend.Backend) {
	t.Helper()
	ctx := context.Background()
	for _, ft := range backend.AllFileTypes {
		err := src.List(ctx, ft, func(fi backend.FileInfo) error {
			h := backend.Handle{Type: ft, Name: fi.Name}
			data, err := backend.LoadAll(ctx, src, h)
			if err != nil {
				return err
			}
			return dst.Save(ctx, h, strings.NewReader(string(data)), int64(len(data)))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
