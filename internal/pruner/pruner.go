// Package pruner owns two-phase deletion: it frees the storage of data no
// snapshot references any more, without ever blocking a backup and
// without deleting anything a snapshot that exists when the deletion
// happens still references.
//
// Phase 1, mark: under the exclusive prune lock, find the blobs every
// snapshot uses, repack packs that are mostly garbage, write a new index
// without the unused packs, and record those packs with the time in a
// pending file. From then on new backups no longer deduplicate against
// them.
//
// Phase 2, sweep (at the start of every prune, and right after the mark
// when the grace window is zero): for every pending file older than the
// grace window, wait while a backup that started before the mark is
// still running; otherwise re-index the marked packs that some snapshot
// now references (a backup that saw the old index may have deduplicated
// against them) and delete the rest.
package pruner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/catalog"
	"github.com/einvault/einvault/internal/repo"
)

// Defaults.
const (
	DefaultGrace     = 30 * time.Minute
	DefaultMaxUnused = 0.5
	// indexPacksPerFile bounds the size of the index files prune writes.
	indexPacksPerFile = 4096
)

// Options tune a prune.
type Options struct {
	// Grace is how long marked packs wait before the sweep deletes them.
	// Zero means DefaultGrace; a negative value means no grace window
	// (the sweep runs right after the mark).
	Grace time.Duration
	// MaxUnused is the fraction of a pack that may be garbage before the
	// pack is repacked. Zero means DefaultMaxUnused; a negative value
	// means repack every pack holding any garbage; 1 or more means never
	// repack (only wholly unused packs are deleted).
	MaxUnused float64
	// DryRun computes and reports what would be done, writing nothing
	// and taking no lock.
	DryRun bool
	// LockOptions are passed to the prune lock and to the staleness
	// check of backup locks.
	LockOptions []repo.LockOption
	Logger      *slog.Logger
}

func (o Options) grace() time.Duration {
	switch {
	case o.Grace == 0:
		return DefaultGrace
	case o.Grace < 0:
		return 0
	}
	return o.Grace
}

func (o Options) maxUnused() float64 {
	switch {
	case o.MaxUnused == 0:
		return DefaultMaxUnused
	case o.MaxUnused < 0:
		return 0
	}
	return o.MaxUnused
}

// Waiting is a pending mark the sweep did not process yet.
type Waiting struct {
	Pending repo.ID   `json:"pending"`
	Created time.Time `json:"created"`
	Packs   int       `json:"packs"`
	Bytes   int64     `json:"bytes"`
	// Due is when the grace window ends.
	Due    time.Time `json:"due"`
	Reason string    `json:"reason"`
}

// Report says what a prune did (or, in a dry run, would do).
type Report struct {
	DryRun    bool    `json:"dry_run"`
	Grace     string  `json:"grace"`
	MaxUnused float64 `json:"max_unused"`

	Snapshots  int   `json:"snapshots"`
	UsedBlobs  int   `json:"used_blobs"`
	Packs      int   `json:"packs"`       // packs in storage before
	StoredSize int64 `json:"stored_size"` // bytes in packs before

	// Mark.
	PacksMarked     int     `json:"packs_marked"` // newly marked for deletion
	BytesMarked     int64   `json:"bytes_marked"`
	PacksUnindexed  int     `json:"packs_unindexed"` // of them, packs no index listed (interrupted backups)
	PacksRepacked   int     `json:"packs_repacked"`
	BlobsRepacked   int     `json:"blobs_repacked"`
	BytesRepacked   int64   `json:"bytes_repacked"` // used bytes copied into new packs
	PacksReindexed  int     `json:"packs_reindexed"`
	IndexWritten    int     `json:"index_files_written"`
	IndexRemoved    int     `json:"index_files_removed"`
	Pending         repo.ID `json:"pending,omitzero"`
	MissingPacks    int     `json:"missing_packs"` // indexed but absent from storage
	MissingBlobs    int     `json:"missing_blobs"` // used but in no pack
	UnreadablePacks int     `json:"unreadable_packs"`

	// Sweep.
	PacksDeleted int `json:"packs_deleted"`
	// Catalogs of forgotten snapshots: marked, then deleted by the sweep.
	// Imported tax-authority status records (also in catalogs/, named by
	// no snapshot) are never marked.
	CatalogsMarked  int       `json:"catalogs_marked"`
	CatalogsDeleted int       `json:"catalogs_deleted"`
	BytesFreed      int64     `json:"bytes_freed"`
	PacksKeptBack   int       `json:"packs_kept_back"` // marked packs a snapshot needed: re-indexed
	PendingDone     int       `json:"pending_done"`
	Waiting         []Waiting `json:"waiting"`
	// Protected lists the files whose removal the storage refused because
	// a retention period (S3 object lock) still protects them, each with
	// until when. They are kept, not an error; a later prune removes them.
	Protected []string `json:"protected,omitempty"`
}

// ErrIndexLoaded is returned when Prune is given a repository whose index
// is already loaded: repacking needs a fresh one.
var ErrIndexLoaded = errors.New("pruner: the repository's index is already loaded; open the repository afresh for prune")

// Prune runs a sweep of due pending marks, then a mark, and, when the
// grace window is zero, a sweep of that mark. r must be open with its
// index not loaded (the pruner loads it itself).
func Prune(ctx context.Context, r *repo.Repository, o Options) (*Report, error) {
	if r.Index().Len() > 0 {
		return nil, ErrIndexLoaded
	}
	p := &pruner{r: r, o: o, log: o.Logger, rep: &Report{DryRun: o.DryRun, Grace: o.grace().String(), MaxUnused: o.maxUnused()}}
	if p.log == nil {
		p.log = r.Logger()
	}
	if !o.DryRun {
		lock, err := r.Lock(ctx, repo.LockPrune, o.LockOptions...)
		if err != nil {
			return nil, err
		}
		defer lock.Unlock(context.WithoutCancel(ctx))
	}
	if err := p.sweep(ctx); err != nil {
		return p.rep, fmt.Errorf("sweep: %w", err)
	}
	if err := p.mark(ctx); err != nil {
		return p.rep, fmt.Errorf("mark: %w", err)
	}
	if o.grace() == 0 && !o.DryRun {
		p.rep.Waiting = nil
		if err := p.sweep(ctx); err != nil {
			return p.rep, fmt.Errorf("sweep: %w", err)
		}
	}
	return p.rep, nil
}

type pruner struct {
	r   *repo.Repository
	o   Options
	log *slog.Logger
	rep *Report
}

// storagePacks lists the packs in storage with their sizes.
func (p *pruner) storagePacks(ctx context.Context) (map[repo.ID]int64, error) {
	sizes := map[repo.ID]int64{}
	err := p.r.Backend().List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
		if id, err := repo.ParseID(fi.Name); err == nil {
			sizes[id] = fi.Size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	return sizes, nil
}

// indexFiles lists the index files in storage.
func (p *pruner) indexFiles(ctx context.Context) (repo.IDs, error) {
	var ids repo.IDs
	err := p.r.Backend().List(ctx, backend.IndexFile, func(fi backend.FileInfo) error {
		if id, err := repo.ParseID(fi.Name); err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list index: %w", err)
	}
	ids.Sort()
	return ids, nil
}

// loadIndexFiles reads the given index files; a file removed meanwhile
// (superseded by another prune's index) is skipped.
func (p *pruner) loadIndexFiles(ctx context.Context, ids repo.IDs) (loaded repo.IDs, packs []repo.IndexPack, err error) {
	for _, id := range ids {
		f, err := p.r.LoadIndexFile(ctx, id)
		if errors.Is(err, backend.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		loaded = append(loaded, id)
		packs = append(packs, f.Packs...)
	}
	return loaded, packs, nil
}

// locator finds blobs in a list of indexes, first match wins.
type locator []*repo.Index

func (l locator) find(id repo.ID) (repo.PackInfo, repo.IndexEntry, bool) {
	for _, idx := range l {
		if e, ok := idx.Lookup(id); ok {
			return idx.PackOf(e), e, true
		}
	}
	return repo.PackInfo{}, repo.IndexEntry{}, false
}

// loadBlob reads and verifies one blob from where loc says it is.
func (p *pruner) loadBlob(ctx context.Context, loc locator, t repo.BlobType, id repo.ID) ([]byte, error) {
	pi, e, ok := loc.find(id)
	if !ok {
		return nil, fmt.Errorf("%v blob %s: %w", t, id.Short(), repo.ErrBlobMissing)
	}
	if e.Type != t {
		return nil, fmt.Errorf("%w: blob %s is a %v blob, expected %v", repo.ErrDamaged, id.Short(), e.Type, t)
	}
	sealed, err := backend.LoadRange(ctx, p.r.Backend(), backend.Handle{Type: backend.PackFile, Name: pi.ID.String()}, int64(e.Offset), int64(e.Length), nil)
	if err != nil {
		return nil, fmt.Errorf("load %v blob %s from pack %s: %w", t, id.Short(), pi.ID.Short(), err)
	}
	return p.r.OpenBlob(pi, t, e.Flags, id, sealed, nil)
}

// usedBlobs walks the trees of every snapshot, each tree once, and
// returns the IDs of every tree and data blob they reference. Only IDs
// are kept, never trees. A tree that cannot be found or read is an error:
// without it the set would be incomplete and deleting anything unsafe.
func (p *pruner) usedBlobs(ctx context.Context, loc locator, snaps []*repo.Snapshot) (repo.IDSet, error) {
	used := repo.IDSet{}
	var stack []repo.ID
	for _, s := range snaps {
		if !used.Has(s.Tree) {
			used.Insert(s.Tree)
			stack = append(stack, s.Tree)
		}
	}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		data, err := p.loadBlob(ctx, loc, repo.TreeBlob, id)
		if err != nil {
			return nil, fmt.Errorf("%w (prune deletes nothing while a snapshot's tree is unreadable; run 'einvault check')", err)
		}
		t, err := repo.DecodeTree(data)
		if err != nil {
			return nil, fmt.Errorf("tree %s: %w", id.Short(), err)
		}
		for _, n := range t.Nodes {
			for _, c := range n.Content {
				used.Insert(c)
			}
			if n.Subtree != nil && !used.Has(*n.Subtree) {
				used.Insert(*n.Subtree)
				stack = append(stack, *n.Subtree)
			}
		}
	}
	return used, nil
}

// snapshots loads every snapshot; any damaged snapshot aborts the prune,
// since the data it references could not be known.
func (p *pruner) snapshots(ctx context.Context) ([]*repo.Snapshot, error) {
	snaps, err := p.r.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w (prune deletes nothing while a snapshot is unreadable)", err)
	}
	return snaps, nil
}

// pendingPacks returns every pack listed in a pending file.
func pendingPacks(pend []*repo.Pending) repo.IDSet {
	s := repo.IDSet{}
	for _, pf := range pend {
		for _, id := range pf.Packs {
			s.Insert(id)
		}
	}
	return s
}

func sortedIDs(s repo.IDSet) repo.IDs {
	out := make(repo.IDs, 0, len(s))
	for id := range s {
		out = append(out, id)
	}
	out.Sort()
	return out
}

// packState is one pack as the mark sees it.
type packState struct {
	info    repo.PackInfo
	blobs   []repo.PackedBlob
	size    int64
	indexed bool // listed in a loaded index file
	present bool // exists in storage
}

// mark is phase 1.
func (p *pruner) mark(ctx context.Context) error {
	r, rep := p.r, p.rep
	sizes, err := p.storagePacks(ctx)
	if err != nil {
		return err
	}
	rep.Packs = len(sizes)
	for _, s := range sizes {
		rep.StoredSize += s
	}
	files, err := p.indexFiles(ctx)
	if err != nil {
		return err
	}
	loaded, ipacks, err := p.loadIndexFiles(ctx, files)
	if err != nil {
		return err
	}
	pend, err := r.PendingFiles(ctx)
	if err != nil {
		return err
	}
	alreadyPending := pendingPacks(pend)

	packs := map[repo.ID]*packState{}
	var order []repo.ID
	for _, ip := range ipacks {
		if ps, ok := packs[ip.ID]; ok { // listed twice: keep one
			if len(ip.Blobs) > len(ps.blobs) {
				ps.blobs = ip.Blobs
			}
			continue
		}
		size, present := sizes[ip.ID]
		packs[ip.ID] = &packState{info: ip.PackInfo, blobs: ip.Blobs, size: size, indexed: true, present: present}
		order = append(order, ip.ID)
	}
	// Packs in storage but in no index: leftovers of interrupted backups,
	// packs marked earlier, or packs a running backup has not indexed
	// yet. A snapshot may still need some of their blobs (a backup that
	// deduplicated against a marked pack), so read their headers.
	var unindexed repo.IDs
	for id := range sizes {
		if _, ok := packs[id]; !ok {
			unindexed = append(unindexed, id)
		}
	}
	unindexed.Sort()
	for _, id := range unindexed {
		info, blobs, err := r.PackHeader(ctx, id, sizes[id])
		if err != nil {
			if errors.Is(err, backend.ErrNotExist) {
				continue
			}
			p.log.Warn("unindexed pack has an unreadable header; it will be removed", "pack", id.Short(), "err", err)
			rep.UnreadablePacks++
			blobs = nil
		}
		info.ID = id
		packs[id] = &packState{info: info, blobs: blobs, size: sizes[id], present: true}
		order = append(order, id)
	}

	// Locate blobs: indexed packs in storage first, then unindexed ones,
	// then indexed packs missing from storage, so a used blob is found
	// where it can actually be read.
	all := repo.NewIndex()
	for _, pass := range []func(*packState) bool{
		func(ps *packState) bool { return ps.indexed && ps.present },
		func(ps *packState) bool { return !ps.indexed },
		func(ps *packState) bool { return ps.indexed && !ps.present },
	} {
		for _, id := range order {
			if ps := packs[id]; pass(ps) {
				all.AddPack(ps.info, ps.blobs)
			}
		}
	}

	snaps, err := p.snapshots(ctx)
	if err != nil {
		return err
	}
	rep.Snapshots = len(snaps)
	used, err := p.usedBlobs(ctx, locator{all}, snaps)
	if err != nil {
		return err
	}
	rep.UsedBlobs = len(used)
	for id := range used {
		if !all.Has(id) {
			rep.MissingBlobs++
		}
	}

	// Classify.
	needed := func(id repo.ID, b repo.PackedBlob) bool {
		if !used.Has(b.ID) {
			return false
		}
		e, ok := all.Lookup(b.ID)
		return ok && all.PackOf(e).ID == id && e.Offset == b.Offset
	}
	var keep, repack, remove []*packState
	newlyUnindexed := 0
	for _, id := range order {
		ps := packs[id]
		if ps.indexed && !ps.present {
			rep.MissingPacks++
			keep = append(keep, ps) // damage is check's business; keep the index as it is
			continue
		}
		var unusedBytes int64
		nNeeded := 0
		for _, b := range ps.blobs {
			if needed(id, b) {
				nNeeded++
			} else {
				unusedBytes += int64(b.Length)
			}
		}
		switch {
		case nNeeded == 0:
			if ps.indexed {
				remove = append(remove, ps)
			} else if !alreadyPending.Has(id) {
				remove = append(remove, ps)
				newlyUnindexed++
			}
		case unusedBytes > 0 && float64(unusedBytes)/float64(ps.size) > p.o.maxUnused():
			repack = append(repack, ps)
		default:
			keep = append(keep, ps)
			if !ps.indexed {
				rep.PacksReindexed++
			}
		}
	}
	rep.PacksUnindexed = newlyUnindexed
	rep.PacksRepacked = len(repack)
	for _, ps := range append(append([]*packState{}, remove...), repack...) {
		rep.PacksMarked++
		rep.BytesMarked += ps.size
	}
	for _, ps := range repack {
		for _, b := range ps.blobs {
			if needed(ps.info.ID, b) {
				rep.BlobsRepacked++
				rep.BytesRepacked += int64(b.Length)
			}
		}
	}
	cats, err := p.orphanCatalogs(ctx, snaps, pend)
	if err != nil {
		return err
	}
	rep.CatalogsMarked = len(cats)
	indexChanged := len(remove) > newlyUnindexed || len(repack) > 0 || rep.PacksReindexed > 0
	if p.o.DryRun || (!indexChanged && newlyUnindexed == 0 && len(cats) == 0) {
		return nil
	}

	// Repack: the kept packs go into the repository's index so that
	// SaveBlob deduplicates against them; the repacked packs' blobs do
	// not, so SaveBlob stores them anew.
	for _, ps := range keep {
		r.Index().AddPack(ps.info, ps.blobs)
	}
	for _, ps := range repack {
		if err := p.repackOne(ctx, ps, needed); err != nil {
			return err
		}
	}
	if err := r.Flush(ctx); err != nil {
		return fmt.Errorf("write repacked data: %w", err)
	}

	if indexChanged {
		// New index files for every kept pack, superseding those loaded;
		// then delete those. A backup that loads the index from now on no
		// longer sees the marked packs.
		var batch []repo.IndexPack
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			if _, err := r.SaveIndexFile(ctx, &repo.IndexFile{Supersedes: loaded, Packs: batch}); err != nil {
				return err
			}
			rep.IndexWritten++
			batch = nil
			return nil
		}
		for _, ps := range keep {
			batch = append(batch, repo.IndexPack{PackInfo: ps.info, Blobs: ps.blobs})
			if len(batch) >= indexPacksPerFile {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		if err := flush(); err != nil {
			return err
		}
		for _, id := range loaded {
			err := r.Backend().Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: id.String()})
			if errors.Is(err, backend.ErrProtected) {
				rep.Protected = append(rep.Protected, err.Error())
				continue
			}
			if err != nil && !errors.Is(err, backend.ErrNotExist) {
				return fmt.Errorf("remove superseded index %s: %w", id.Short(), err)
			}
			rep.IndexRemoved++
		}
	}

	// The pending file's time comes after the old index is gone: any
	// backup starting later cannot have seen the marked packs.
	marked := repo.IDSet{}
	for _, ps := range remove {
		marked.Insert(ps.info.ID)
	}
	for _, ps := range repack {
		marked.Insert(ps.info.ID)
	}
	for id := range alreadyPending {
		delete(marked, id)
	}
	if len(marked) == 0 && len(cats) == 0 {
		return nil
	}
	pf := &repo.Pending{Created: r.Now(), Packs: sortedIDs(marked), Catalogs: cats}
	pf.Host, _ = os.Hostname()
	if _, err := r.SavePending(ctx, pf); err != nil {
		return err
	}
	rep.Pending = pf.ID
	w := Waiting{Pending: pf.ID, Created: pf.Created, Packs: len(pf.Packs), Due: pf.Created.Add(p.o.grace())}
	for id := range marked {
		w.Bytes += packs[id].size
	}
	w.Reason = fmt.Sprintf("marked now; grace window ends in %s", p.o.grace())
	rep.Waiting = append(rep.Waiting, w)
	p.log.Info("prune: packs marked", "packs", len(marked), "catalogs", len(cats), "pending", pf.ID.Short())
	return nil
}

// repackOne copies the needed blobs of a pack into new packs.
func (p *pruner) repackOne(ctx context.Context, ps *packState, needed func(repo.ID, repo.PackedBlob) bool) error {
	h := backend.Handle{Type: backend.PackFile, Name: ps.info.ID.String()}
	data, err := backend.LoadAll(ctx, p.r.Backend(), h)
	if err != nil {
		return fmt.Errorf("repack %s: %w", ps.info.ID.Short(), err)
	}
	for _, b := range ps.blobs {
		if !needed(ps.info.ID, b) {
			continue
		}
		end := int64(b.Offset) + int64(b.Length)
		if end > int64(len(data)) {
			return fmt.Errorf("repack %s: %w: blob %s lies past the end of the pack", ps.info.ID.Short(), repo.ErrDamaged, b.ID.Short())
		}
		plain, err := p.r.OpenBlob(ps.info, b.Type, b.Flags, b.ID, data[b.Offset:end], nil)
		if err != nil {
			return fmt.Errorf("repack %s: %w", ps.info.ID.Short(), err)
		}
		if _, _, err := p.r.SaveBlob(ctx, b.Type, b.ID, plain); err != nil {
			return fmt.Errorf("repack %s: %w", ps.info.ID.Short(), err)
		}
	}
	return nil
}

// sweep is phase 2.
func (p *pruner) sweep(ctx context.Context) error {
	r, rep := p.r, p.rep
	pend, err := r.PendingFiles(ctx)
	if err != nil {
		return err
	}
	if len(pend) == 0 {
		return nil
	}
	sizes, err := p.storagePacks(ctx)
	if err != nil {
		return err
	}
	now := r.Now()
	grace := p.o.grace()
	locks, err := r.Locks(ctx, p.o.LockOptions...)
	if err != nil {
		return err
	}
	var due []*repo.Pending
	for _, pf := range pend {
		w := Waiting{Pending: pf.ID, Created: pf.Created, Packs: len(pf.Packs), Due: pf.Created.Add(grace)}
		for _, id := range pf.Packs {
			w.Bytes += sizes[id]
		}
		if now.Before(w.Due) {
			w.Reason = fmt.Sprintf("grace window ends in %s", w.Due.Sub(now).Round(time.Second))
			rep.Waiting = append(rep.Waiting, w)
			continue
		}
		var blocker *repo.LockInfo
		for i, l := range locks {
			if l.Kind == repo.LockBackup && !l.Stale && !l.Start.After(pf.Created) {
				blocker = &locks[i]
				break
			}
		}
		if blocker != nil {
			w.Reason = "waiting for a backup that started before the mark: " + blocker.Describe(now)
			rep.Waiting = append(rep.Waiting, w)
			continue
		}
		due = append(due, pf)
	}
	if len(due) == 0 {
		return nil
	}

	// The current index, and the headers of every marked pack still in
	// storage, so that blobs referenced from a marked pack are found.
	files, err := p.indexFiles(ctx)
	if err != nil {
		return err
	}
	_, ipacks, err := p.loadIndexFiles(ctx, files)
	if err != nil {
		return err
	}
	cur := repo.NewIndex()
	for _, ip := range ipacks {
		cur.AddPack(ip.PackInfo, ip.Blobs)
	}
	ipacks = nil
	extra := repo.NewIndex()
	type header struct {
		info  repo.PackInfo
		blobs []repo.PackedBlob
		err   error
	}
	headers := map[repo.ID]header{}
	for _, id := range sortedIDs(pendingPacks(pend)) {
		size, ok := sizes[id]
		if !ok || cur.HasPack(id) {
			continue
		}
		info, blobs, err := r.PackHeader(ctx, id, size)
		info.ID = id
		headers[id] = header{info, blobs, err}
		if err == nil {
			extra.AddPack(info, blobs)
		}
	}
	snaps, err := p.snapshots(ctx)
	if err != nil {
		return err
	}
	used, err := p.usedBlobs(ctx, locator{cur, extra}, snaps)
	if err != nil {
		return err
	}
	missing := false
	for id := range used {
		if !cur.Has(id) && !extra.Has(id) {
			missing = true
			break
		}
	}

	done := repo.IDSet{}
	for _, pf := range due {
		for _, id := range pf.Packs {
			if done.Has(id) {
				continue
			}
			done.Insert(id)
			size, ok := sizes[id]
			if !ok {
				continue // deleted already
			}
			if cur.HasPack(id) {
				continue // indexed meanwhile (a backup's own pack, or re-indexed)
			}
			hd := headers[id]
			if hd.err != nil {
				if missing {
					p.log.Warn("keeping a marked pack with an unreadable header: a snapshot references data found nowhere else", "pack", id.Short(), "err", hd.err)
					rep.PacksKeptBack++
					continue
				}
			} else {
				var need bool
				for _, b := range hd.blobs {
					if used.Has(b.ID) && !cur.Has(b.ID) {
						need = true
						break
					}
				}
				if need {
					rep.PacksKeptBack++
					if p.o.DryRun {
						continue
					}
					if _, err := r.SaveIndexFile(ctx, &repo.IndexFile{Packs: []repo.IndexPack{{PackInfo: hd.info, Blobs: hd.blobs}}}); err != nil {
						return fmt.Errorf("re-index pack %s: %w", id.Short(), err)
					}
					cur.AddPack(hd.info, hd.blobs)
					p.log.Info("prune: marked pack is needed by a snapshot; re-indexed", "pack", id.Short())
					continue
				}
			}
			rep.PacksDeleted++
			rep.BytesFreed += size
			if p.o.DryRun {
				continue
			}
			err := r.Backend().Remove(ctx, backend.Handle{Type: backend.PackFile, Name: id.String()})
			if errors.Is(err, backend.ErrProtected) {
				// Kept: unreferenced, so the next prune marks it again.
				rep.PacksDeleted--
				rep.BytesFreed -= size
				rep.Protected = append(rep.Protected, err.Error())
				continue
			}
			if err != nil && !errors.Is(err, backend.ErrNotExist) {
				return fmt.Errorf("delete pack %s: %w", id.Short(), err)
			}
		}
		if err := p.sweepCatalogs(ctx, pf, snaps); err != nil {
			return err
		}
		rep.PendingDone++
		if p.o.DryRun {
			continue
		}
		if err := r.RemovePending(ctx, pf.ID); err != nil {
			return fmt.Errorf("remove pending %s: %w", pf.ID.Short(), err)
		}
	}
	sort.Slice(rep.Waiting, func(i, j int) bool { return rep.Waiting[i].Created.Before(rep.Waiting[j].Created) })
	return nil
}

// orphanCatalogs returns the catalog files no snapshot names and no
// pending file lists yet, leaving out imported status records (kept
// forever) and files it cannot read (never delete what cannot be
// classified; check reports them).
func (p *pruner) orphanCatalogs(ctx context.Context, snaps []*repo.Snapshot, pend []*repo.Pending) (repo.IDs, error) {
	named := repo.IDSet{}
	for _, s := range snaps {
		if s.Catalog != nil {
			named.Insert(*s.Catalog)
		}
	}
	for _, pf := range pend {
		for _, id := range pf.Catalogs {
			named.Insert(id)
		}
	}
	var cand repo.IDs
	err := p.r.Backend().List(ctx, backend.CatalogFile, func(fi backend.FileInfo) error {
		if id, err := repo.ParseID(fi.Name); err == nil && !named.Has(id) {
			cand = append(cand, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list catalogs: %w", err)
	}
	cand.Sort()
	var out repo.IDs
	for _, id := range cand {
		payload, err := p.r.LoadCatalog(ctx, id)
		if errors.Is(err, backend.ErrNotExist) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			p.log.Warn("keeping an unreadable file in catalogs/", "catalog", id.Short(), "err", err)
			continue
		}
		if catalog.IsStatusPayload(payload) {
			continue
		}
		out = append(out, id)
	}
	return out, nil
}

// sweepCatalogs deletes the catalogs a due pending file lists, unless a
// snapshot names one again.
func (p *pruner) sweepCatalogs(ctx context.Context, pf *repo.Pending, snaps []*repo.Snapshot) error {
	named := repo.IDSet{}
	for _, s := range snaps {
		if s.Catalog != nil {
			named.Insert(*s.Catalog)
		}
	}
	for _, id := range pf.Catalogs {
		if named.Has(id) {
			continue
		}
		p.rep.CatalogsDeleted++
		if p.o.DryRun {
			continue
		}
		err := p.r.Backend().Remove(ctx, backend.Handle{Type: backend.CatalogFile, Name: id.String()})
		if errors.Is(err, backend.ErrProtected) {
			p.rep.CatalogsDeleted--
			p.rep.Protected = append(p.rep.Protected, err.Error())
			continue
		}
		if err != nil && !errors.Is(err, backend.ErrNotExist) {
			return fmt.Errorf("delete catalog %s: %w", id.Short(), err)
		}
	}
	return nil
}
