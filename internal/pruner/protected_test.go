package pruner

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/backend"
)

// protectingBackend refuses to remove packs and index files while on,
// as an S3 bucket with object lock does before retention ends.
type protectingBackend struct {
	backend.Backend
	on atomic.Bool
}

func (b *protectingBackend) Remove(ctx context.Context, h backend.Handle) error {
	if b.on.Load() && (h.Type == backend.PackFile || h.Type == backend.IndexFile) {
		if _, err := b.Stat(ctx, h); err != nil {
			return err
		}
		return fmt.Errorf("remove %v: %w until 2025-09-01T00:00:00Z", h, backend.ErrProtected)
	}
	return b.Backend.Remove(ctx, h)
}

func TestProtectedFilesAreKept(t *testing.T) {
	e := newEnv(t)
	pb := &protectingBackend{Backend: e.be}
	e.be = pb
	keepA := e.writeFiles("a", 4, 100<<10)
	e.writeFiles("b", 8, 100<<10)
	sA := e.backupPaths("a")
	e.clk.Add(time.Hour)
	sB := e.backupPaths("b")
	e.clk.Add(time.Hour)
	e.forget(sB.ID)
	packsBefore, _ := e.storage()

	pb.on.Store(true)
	rep := e.prune(Options{Grace: -1, MaxUnused: 1})
	if len(rep.Protected) == 0 || rep.PacksDeleted != 0 || rep.BytesFreed != 0 {
		t.Fatalf("prune with protected packs: %+v; want them reported as protected, none deleted", rep)
	}
	if packs, _ := e.storage(); packs != packsBefore {
		t.Fatalf("packs %d -> %d while protected", packsBefore, packs)
	}
	e.checkRestores(sA, keepA)

	// Once retention ends, the next prune removes what is unused.
	pb.on.Store(false)
	rep = e.prune(Options{Grace: -1, MaxUnused: 1})
	if rep.PacksDeleted == 0 || len(rep.Protected) != 0 {
		t.Fatalf("prune after retention: %+v; want the unused packs deleted", rep)
	}
	e.checkRestores(sA, keepA)
}
