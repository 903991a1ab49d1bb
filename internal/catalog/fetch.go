package catalog

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/repo"
)

// BlobStore is what reading a cataloged file back needs from a
// repository. The index is loaded only when a recorded location fails
// (prune moved the blob), so reading one invoice costs one ranged read
// per blob on a repository of any size.
type BlobStore interface {
	Backend() backend.Backend
	OpenBlob(p repo.PackInfo, t repo.BlobType, flags uint8, id repo.ID, sealed, buf []byte) ([]byte, error)
	LoadIndex(ctx context.Context) error
	LoadBlob(ctx context.Context, t repo.BlobType, id repo.ID, buf []byte) ([]byte, error)
}

// Fetcher reads cataloged files from a repository.
type Fetcher struct {
	Store      BlobStore
	indexOnce  sync.Once
	indexErr   error
	IndexLoads int // how often the full index had to be loaded (0 or 1)
}

// ReadFile returns the bytes of f, whose blob locations refer to packs.
func (fe *Fetcher) ReadFile(ctx context.Context, f File, packs map[int]Pack) ([]byte, error) {
	var out []byte
	for _, b := range f.Blobs {
		data, err := fe.readBlob(ctx, b, packs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		out = append(out, data...)
	}
	if uint64(len(out)) != f.Size {
		return nil, fmt.Errorf("%s: %w: read %d bytes, the catalog says %d", f.Path, repo.ErrDamaged, len(out), f.Size)
	}
	return out, nil
}

func (fe *Fetcher) readBlob(ctx context.Context, b Blob, packs map[int]Pack) ([]byte, error) {
	if p, ok := packs[b.Pack]; ok && b.Pack >= 0 && len(p.Salt) == 16 {
		pi := repo.PackInfo{ID: p.ID, Epoch: p.Epoch}
		copy(pi.Salt[:], p.Salt)
		sealed, err := backend.LoadRange(ctx, fe.Store.Backend(), backend.Handle{Type: backend.PackFile, Name: p.ID.String()}, int64(b.Offset), int64(b.Length), nil)
		if err == nil && len(sealed) == int(b.Length) {
			data, err := fe.Store.OpenBlob(pi, repo.DataBlob, b.Flags, b.ID, sealed, nil)
			if err == nil {
				return data, nil
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	// moved by prune, or the recorded pack is damaged: ask the index
	fe.indexOnce.Do(func() {
		fe.IndexLoads++
		fe.indexErr = fe.Store.LoadIndex(ctx)
	})
	if fe.indexErr != nil && !errors.Is(fe.indexErr, repo.ErrDamaged) {
		return nil, fmt.Errorf("load index: %w", fe.indexErr)
	}
	return fe.Store.LoadBlob(ctx, repo.DataBlob, b.ID, nil)
}
