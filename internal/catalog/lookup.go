package catalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/einvault/einvault/internal/repo"
)

// Cached returns the IDs of the snapshots the cache holds.
func (c *Cache) Cached(ctx context.Context) (map[string]bool, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT sid FROM snaps`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var sid string
		if err := rows.Scan(&sid); err != nil {
			return nil, err
		}
		out[sid] = true
	}
	return out, rows.Err()
}

// Current reports whether the cache holds exactly the snapshots listed
// (so queries need no Sync first).
func (c *Cache) Current(ctx context.Context, snaps []*repo.Snapshot) (bool, error) {
	cached, err := c.Cached(ctx)
	if err != nil {
		return false, err
	}
	if len(cached) != len(snaps) {
		return false, nil
	}
	for _, s := range snaps {
		if !cached[s.ID.String()] {
			return false, nil
		}
	}
	return true, nil
}

// SelectSnapshots returns the snapshots with a catalog that ref names,
// newest first (the order Cache.Locate searches in): every one for "",
// the newest for "latest", else the one whose ID starts with ref.
func SelectSnapshots(snaps []*repo.Snapshot, ref string) ([]*repo.Snapshot, error) {
	var match []*repo.Snapshot
	for _, s := range snaps {
		if s.Catalog == nil {
			continue
		}
		if ref == "" || ref == "latest" || strings.HasPrefix(s.ID.String(), strings.ToLower(ref)) {
			match = append(match, s)
		}
	}
	slices.SortFunc(match, func(a, b *repo.Snapshot) int {
		return cmp.Or(b.Time.Compare(a.Time), strings.Compare(b.ID.String(), a.ID.String()))
	})
	switch {
	case len(match) == 0:
		return nil, fmt.Errorf("%w %q (list them with 'einvault snapshots'; backups made with --no-catalog have none)", ErrNoSnapshot, ref)
	case ref == "latest":
		return match[:1], nil
	case ref != "" && len(match) > 1:
		return nil, fmt.Errorf("snapshot prefix %q is ambiguous (%d matches): give more characters", ref, len(match))
	}
	return match, nil
}

// LocateInCatalogs finds the stored file of one invoice as Cache.Locate
// does, but straight from the snapshots' catalogs (snaps newest first,
// see SelectSnapshots) instead of the cache: each catalog is read until
// one holds ref, and found through its look-up index (format 3: the
// trailer, one index block and the entry blocks it names) or, in older
// catalogs, by a scan of its entries. This is the look-up of a new
// machine after a disaster, whose cache is empty: filling the cache
// first would read every entry of every catalog.
func LocateInCatalogs(ctx context.Context, src CatalogLoader, snaps []*repo.Snapshot, ref string) (*Located, error) {
	cid := isContentID(ref)
	if cid {
		ref = strings.ToLower(ref)
	}
	for _, s := range snaps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r, err := LoadReader(ctx, src, s)
		if err != nil {
			return nil, err
		}
		found, err := r.Lookup(ref)
		if errors.Is(err, ErrNoIndex) {
			found = nil
			err = r.Each(func(e *Entry) error {
				if (cid && e.ContentID == ref) || (!cid && e.Key() == ref) {
					found = append(found, *e)
				}
				return ctx.Err()
			})
		}
		if err != nil {
			return nil, fmt.Errorf("catalog of snapshot %s: %w", s.ID.Short(), err)
		}
		if len(found) == 0 {
			continue
		}
		sid := s.ID.String()
		distinct := map[string]bool{}
		for _, e := range found {
			distinct[e.ContentID] = true
		}
		if len(distinct) > 1 {
			ids := make([]string, 0, len(distinct))
			for id := range distinct {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			return nil, fmt.Errorf("%q has %d different versions in snapshot %s: restore one by content ID (%s)", ref, len(ids), sid[:8], strings.Join(ids, ", "))
		}
		e := found[0]
		packs := map[int]Pack{}
		all := r.Packs()
		for _, f := range []*File{&e.File, e.PDF} {
			if f == nil {
				continue
			}
			for _, b := range f.Blobs {
				if b.Pack >= 0 && b.Pack < len(all) {
					packs[b.Pack] = all[b.Pack]
				}
			}
		}
		return &Located{Entry: e, Packs: packs, Snapshot: sid, Path: e.Path}, nil
	}
	where := ""
	if len(snaps) == 1 {
		where = " in snapshot " + snaps[0].ID.String()[:8]
	}
	return nil, fmt.Errorf("%w %q%s (search with 'einvault invoices find')", ErrNotFound, ref, where)
}

// HistoryInCatalogs returns the history of one invoice key across the
// snapshots (all of them, any order), as Cache.Find gives it, read
// straight from the snapshots' catalogs through their look-up index
// (older formats by a scan): 'invoices find --key' on a cache that lacks
// snapshots. Signature statuses are those recorded at backup (the cache
// keeps later verdicts of 'invoices verify'). nil when no snapshot
// holds the key.
func HistoryInCatalogs(ctx context.Context, src CatalogLoader, snaps []*repo.Snapshot, key string) (*Match, error) {
	snaps = slices.Clone(snaps)
	slices.SortFunc(snaps, func(a, b *repo.Snapshot) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.ID.String(), b.ID.String()))
	})
	refs := make([]SnapshotRef, 0, len(snaps))
	type vkey struct{ content, inner string }
	var vs []Version
	at := map[vkey]int{}
	for _, s := range snaps {
		refs = append(refs, SnapshotRef{ID: s.ID.String(), Time: s.Time, Host: s.Host, Paths: s.Paths, HasCatalog: s.Catalog != nil})
		if s.Catalog == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r, err := LoadReader(ctx, src, s)
		if err != nil {
			return nil, err
		}
		found, err := r.Lookup(key)
		if errors.Is(err, ErrNoIndex) {
			found = nil
			err = r.Each(func(e *Entry) error {
				if e.Key() == key {
					found = append(found, *e)
				}
				return ctx.Err()
			})
		}
		if err != nil {
			return nil, fmt.Errorf("catalog of snapshot %s: %w", s.ID.Short(), err)
		}
		slices.SortFunc(found, func(a, b Entry) int {
			return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.Inner, b.Inner))
		})
		for _, e := range found {
			seen := Seen{Snapshot: s.ID.String(), Time: s.Time, Path: e.Path}
			k := vkey{e.ContentID, e.Inner}
			i, ok := at[k]
			if !ok {
				se := &storedEntry{Entry: e}
				vs = append(vs, Version{ContentID: e.ContentID, Inner: e.Inner, Size: e.Size, Total: e.Total,
					IssueDate: e.IssueDate, Status: overall(&e), FirstSeen: seen, entry: se})
				i = len(vs) - 1
				at[k] = i
			}
			vs[i].Snapshots = append(vs[i].Snapshots, seen)
			vs[i].LastSeen = seen
		}
	}
	if len(vs) == 0 {
		return nil, nil
	}
	return matchOf(key, vs, refs), nil
}
