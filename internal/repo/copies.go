package repo

import (
	"context"
	"errors"
	"fmt"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/replica"
)

// The copy list (package replica) is stored as sealed files of kind 7
// under copies/. Every change writes a new version with a higher
// sequence number and then removes the versions it replaces; readers use
// the newest version they find, so a sync that carries versions between
// copies in any order converges.

// LoadCopies returns the newest copy list (an empty list when there is
// none) and the IDs of every version found.
func (r *Repository) LoadCopies(ctx context.Context) (replica.List, IDs, error) {
	return r.LoadCopiesFrom(ctx, r.be)
}

// LoadCopiesFrom reads the copy list from be, another copy of this
// repository.
func (r *Repository) LoadCopiesFrom(ctx context.Context, be backend.Backend) (replica.List, IDs, error) {
	var ids IDs
	err := be.List(ctx, backend.CopiesFile, func(fi backend.FileInfo) error {
		if id, err := ParseID(fi.Name); err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil && !errors.Is(err, backend.ErrNotExist) {
		return replica.List{}, nil, fmt.Errorf("list copy lists: %w", err)
	}
	var best replica.List
	found := false
	var damaged []error
	for _, id := range ids {
		data, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.CopiesFile, Name: id.String()})
		if err == nil && Hash(data) != id {
			err = fmt.Errorf("%w: content does not match its name", ErrDamaged)
		}
		var plain []byte
		if err == nil {
			plain, err = r.openFile(KindCopies, data)
		}
		var l replica.List
		if err == nil {
			l, err = replica.DecodeList(plain)
		}
		if err != nil {
			if errors.Is(err, backend.ErrNotExist) {
				continue // replaced meanwhile
			}
			damaged = append(damaged, fmt.Errorf("copies/%s: %w", id.Short(), err))
			continue
		}
		if !found || replica.Newer(l, best) {
			best, found = l, true
		}
	}
	if !found && len(damaged) > 0 {
		return replica.List{}, ids, errors.Join(damaged...)
	}
	if !found {
		best = replica.List{Version: replica.ListVersion}
	}
	return best, ids, nil
}

// SaveCopies writes l as the newest version of the copy list (its Seq is
// set above every version in old) and removes the versions in old.
func (r *Repository) SaveCopies(ctx context.Context, l replica.List, old IDs) (ID, error) {
	if err := l.Validate(); err != nil {
		return ID{}, err
	}
	l.Version = replica.ListVersion
	l.Seq++
	l.Time = r.now().UTC()
	data, err := l.Encode()
	if err != nil {
		return ID{}, err
	}
	id, err := r.saveFile(ctx, backend.CopiesFile, KindCopies, data)
	if err != nil {
		return ID{}, fmt.Errorf("save copy list: %w", err)
	}
	for _, o := range old {
		if o == id {
			continue
		}
		if err := r.be.Remove(ctx, backend.Handle{Type: backend.CopiesFile, Name: o.String()}); err != nil && !errors.Is(err, backend.ErrNotExist) {
			r.log.Warn("could not remove an old copy list", "id", o.Short(), "err", err)
		}
	}
	return id, nil
}
