package repo

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/einvault/einvault/internal/backend"
)

// IndexUnindexedPacks reads the header of every pack in storage that no
// loaded index file lists and adds its blobs to the in-memory index (it
// writes nothing). After a damaged or lost index file this makes every
// intact pack readable again; packs left by interrupted backups and packs
// awaiting deletion are indexed too, which is harmless for reading. It
// returns the number of packs added and the packs whose headers are
// damaged.
func (r *Repository) IndexUnindexedPacks(ctx context.Context) (int, []error) {
	type pack struct {
		id   ID
		size int64
	}
	var todo []pack
	err := r.be.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		id, err := ParseID(fi.Name)
		if err == nil && !r.idx.HasPack(id) {
			todo = append(todo, pack{id, fi.Size})
		}
		return nil
	})
	if err != nil {
		return 0, []error{fmt.Errorf("list packs: %w", err)}
	}
	var errs []error
	added := 0
	for _, p := range todo {
		info, blobs, err := r.PackHeader(ctx, p.id, p.size)
		if err != nil {
			if ctx.Err() != nil {
				return added, append(errs, ctx.Err())
			}
			errs = append(errs, err)
			continue
		}
		r.idx.AddPack(info, blobs)
		added++
	}
	return added, errs
}

// asDamage classifies a failed read of repository data: a missing or
// short file is damage (exit 5, reported per file), anything else (a
// network error, a permission problem) is returned as it is.
func asDamage(err error) error {
	if err == nil || errors.Is(err, ErrDamaged) {
		return err
	}
	if errors.Is(err, backend.ErrNotExist) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	return err
}
