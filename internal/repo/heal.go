package repo

import (
	"context"
	"time"

	"github.com/einvault/einvault/internal/backend"
)

// RangeHealer is implemented by backends that hold several copies of
// every file (replica.Set). When bytes that an earlier Load returned fail
// authentication, the repository asks for the same range again:
// ReloadRange serves it from a copy whose whole file hashes to its name
// and records which copy that was. It is the only hook between the
// repository format and self-healing reads.
type RangeHealer interface {
	ReloadRange(ctx context.Context, h backend.Handle, offset, length int64) (data []byte, servedBy string, err error)
}

// healTimeout bounds a re-read that OpenBlob starts on its own (it has no
// context of the caller's; the backends' own timeouts apply as well).
const healTimeout = 10 * time.Minute

// heal re-reads the sealed blob id of pack p from another copy, if the
// backend can, and opens it. ok is false when no other copy could help.
func (r *Repository) heal(p PackInfo, t BlobType, flags uint8, id ID, length int, buf []byte) ([]byte, bool) {
	h, ok := r.be.(RangeHealer)
	if !ok {
		return nil, false
	}
	off, ok := r.idx.offsetIn(p.ID, id, length)
	if !ok {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), healTimeout)
	defer cancel()
	sealed, from, err := h.ReloadRange(ctx, backend.Handle{Type: backend.PackFile, Name: p.ID.String()}, off, int64(length))
	if err != nil {
		r.log.Warn("no copy could heal a damaged blob", "pack", p.ID.Short(), "blob", id.Short(), "err", err)
		return nil, false
	}
	plain, err := r.openBlob(p, t, flags, id, sealed, buf)
	if err != nil {
		return nil, false
	}
	r.log.Info("healed a damaged blob from another copy", "pack", p.ID.Short(), "blob", id.Short(), "copy", from)
	return plain, true
}
