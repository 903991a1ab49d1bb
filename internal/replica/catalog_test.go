package replica

import (
	"context"
	"testing"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/mem"
)

// A catalog prune deleted from the authority is deleted from a mirrored
// copy like a pack, and a later sync does not bring it back; catalogs
// files the authority still holds (status records) stay.
func TestSyncMirrorDeletesCatalogs(t *testing.T) {
	ctx := context.Background()
	a, b := mem.New(), mem.New()
	fill(t, a, 1)
	gone := put(t, a, backend.CatalogFile, "catalog of a forgotten snapshot")
	status := put(t, a, backend.CatalogFile, "EVS1 status records")
	if _, err := SyncTo(ctx, []Member{member("a", a, 0)}, member("b", b, 1), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.Remove(ctx, gone); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := SyncTo(ctx, []Member{member("a", a, 0)}, member("b", b, 1), SyncOptions{Mirror: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Stat(ctx, gone); err == nil {
			t.Fatalf("sync %d: the deleted catalog is still on the copy", i+1)
		}
		if _, err := b.Stat(ctx, status); err != nil {
			t.Fatalf("sync %d: status records lost: %v", i+1, err)
		}
	}
	equalFiles(t, a, b)
}
