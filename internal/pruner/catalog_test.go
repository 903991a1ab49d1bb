package pruner

import (
	"context"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/catalog"
	"github.com/einvault/einvault/internal/repo"
)

// withCatalog replaces snapshot s by one naming a new catalog file and
// returns the new snapshot and the catalog's ID.
func (e *env) withCatalog(s *repo.Snapshot, payload string) (*repo.Snapshot, repo.ID) {
	e.t.Helper()
	ctx := context.Background()
	r := e.open()
	cid, err := r.SaveCatalog(ctx, []byte(payload))
	if err != nil {
		e.t.Fatal(err)
	}
	ns := *s
	ns.Catalog = &cid
	if _, err := r.SaveSnapshot(ctx, &ns); err != nil {
		e.t.Fatal(err)
	}
	e.forget(s.ID)
	return &ns, cid
}

func (e *env) hasCatalog(id repo.ID) bool {
	e.t.Helper()
	_, err := e.be.Stat(context.Background(), backend.Handle{Type: backend.CatalogFile, Name: id.String()})
	return err == nil
}

// Catalogs of forgotten snapshots go through the same mark, grace window
// and sweep as packs; catalogs of live snapshots and imported status
// records stay.
func TestPruneCatalogs(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.writeFiles("a", 3, 20<<10)
	e.writeFiles("b", 3, 20<<10)
	s1, c1 := e.withCatalog(e.backup("a"), "catalog of a")
	s2, c2 := e.withCatalog(e.backup("b"), "catalog of b")
	st, err := catalog.SaveStatus(ctx, e.open(), []catalog.StatusRecord{{Key: "0101/1/C25TAA/7", Status: "cancelled", Source: "portal.json"}})
	if err != nil {
		t.Fatal(err)
	}

	// Nothing forgotten: nothing marked, status records untouched.
	if rep := e.prune(Options{Grace: -1}); rep.CatalogsMarked != 0 || rep.CatalogsDeleted != 0 {
		t.Fatalf("catalogs marked with every snapshot alive: %+v", rep)
	}

	e.forget(s1.ID)
	if rep := e.prune(Options{DryRun: true}); rep.CatalogsMarked != 1 || e.count(backend.PendingFile) != 0 {
		t.Fatalf("dry run: %+v", rep)
	}
	rep := e.prune(Options{})
	if rep.CatalogsMarked != 1 || rep.CatalogsDeleted != 0 || !e.hasCatalog(c1) {
		t.Fatalf("mark: %+v", rep)
	}
	e.clk.Add(29 * time.Minute)
	if rep := e.prune(Options{}); rep.CatalogsDeleted != 0 || rep.CatalogsMarked != 0 || !e.hasCatalog(c1) {
		t.Fatalf("catalog deleted or marked twice inside the grace window: %+v", rep)
	}
	e.clk.Add(2 * time.Minute)
	if rep := e.prune(Options{}); rep.CatalogsDeleted != 1 || e.hasCatalog(c1) {
		t.Fatalf("sweep: %+v", rep)
	}
	if !e.hasCatalog(c2) || !e.hasCatalog(st) {
		t.Fatal("prune deleted a live snapshot's catalog or the status records")
	}

	// A catalog named again by a snapshot before the sweep is kept.
	e.forget(s2.ID)
	if rep := e.prune(Options{}); rep.CatalogsMarked != 1 {
		t.Fatalf("mark c2: %+v", rep)
	}
	back := *s2
	if _, err := e.open().SaveSnapshot(ctx, &back); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(time.Hour)
	if rep := e.prune(Options{}); rep.CatalogsDeleted != 0 || !e.hasCatalog(c2) {
		t.Fatalf("sweep deleted a catalog a snapshot names again: %+v", rep)
	}

	// Everything forgotten: the status records survive any prune.
	e.forget(back.ID)
	e.prune(Options{Grace: -1})
	if e.hasCatalog(c2) || !e.hasCatalog(st) {
		t.Fatal("after forgetting everything: catalog kept or status records deleted")
	}
	if n := e.count(backend.CatalogFile); n != 1 {
		t.Fatalf("%d files in catalogs/, want only the status records", n)
	}
}
