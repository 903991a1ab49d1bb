// Package checker owns repository verification ("einvault check").
//
// The structural check loads every key, index and snapshot file, compares
// the packs in storage with what the index says about them (existence and
// exact size), and walks every snapshot's trees once to make sure every
// referenced tree and data blob is indexed. Reading data (--read-data and
// --read-data-subset) additionally reads packs whole, verifies that their
// bytes hash to their names, compares their headers with the index and
// opens every blob. The storage-only mode needs no password: it verifies
// that every content-addressed file hashes to its name.
//
// Damage is reported per file, with the damaged blobs and, mapped back
// through the trees, the snapshot paths whose content is affected.
// Unreferenced packs, leftover temporary files and pending deletions are
// information only.
//
// Memory is bounded by the index plus the set of tree IDs already seen: the
// tree walk holds only the trees being processed, and a second walk that
// maps damage to paths runs only when damage was found.
package checker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/catalog"
	"github.com/einvault/einvault/internal/repo"
	"github.com/zeebo/blake3"
)

// Options choose what a check does.
type Options struct {
	// ReadData reads every indexed pack.
	ReadData bool
	// ReadDataSubset reads a subset of the indexed packs (ignored when
	// ReadData is set).
	ReadDataSubset Subset
	// StorageOnly checks without the password that every pack, index,
	// snapshot, catalog and key file hashes to its name (every pack is read unless
	// ReadDataSubset chooses a subset). Check then uses only r.Backend().
	StorageOnly bool
	// Progress, if set, receives the progress of the current phase: files
	// for "keys", "index" and "snapshots", packs for "packs", trees seen
	// so far (total -1: unknown) for "trees", bytes for "read-data".
	// Calls are serialised, never concurrent.
	Progress func(done, total int64)
	// Phase, if set, is called when a phase starts.
	Phase func(name string)
	// Workers bounds parallel loads; it also bounds memory when reading
	// data (one pack per worker). Default GOMAXPROCS, at least 2.
	Workers int
	// MaxListed caps the blobs, paths and informational files listed per
	// finding (all are counted). Default 1000.
	MaxListed int
	// Rand drives the random subset; nil seeds one randomly.
	Rand *rand.Rand
}

// maxPackRead is the largest pack read into memory; the format caps packs
// far below it.
const maxPackRead = 1 << 30

type fingerprint [2]uint64

// fingerprintOf sums a hash of every blob entry: equal lists (in any
// order) give equal fingerprints.
func fingerprintOf(blobs []repo.PackedBlob) fingerprint {
	var f fingerprint
	var buf [2 + repo.IDSize + 12]byte
	for _, b := range blobs {
		buf[0], buf[1] = byte(b.Type), b.Flags
		copy(buf[2:], b.ID[:])
		binary.LittleEndian.PutUint32(buf[2+repo.IDSize:], b.Offset)
		binary.LittleEndian.PutUint32(buf[6+repo.IDSize:], b.Length)
		binary.LittleEndian.PutUint32(buf[10+repo.IDSize:], b.RawLength)
		h := repo.Hash(buf[:])
		f[0] += binary.LittleEndian.Uint64(h[:8])
		f[1] += binary.LittleEndian.Uint64(h[8:16])
	}
	return f
}

// packMeta is what the index files say about one pack; the blob list is
// not kept (the merged index has the blobs, and a pack's list is reloaded
// from its index files when a pack needs a closer look).
type packMeta struct {
	info  repo.PackInfo
	size  int64 // exact file size implied by the index
	blobs int
	fp    fingerprint
	files []int32 // positions in checker.indexFiles
}

type checker struct {
	r    *repo.Repository // nil in storage-only mode
	be   backend.Backend
	opts Options
	rep  *Report

	progMu     sync.Mutex // serialises Progress calls
	mu         sync.Mutex
	idx        *repo.Index
	indexFiles repo.IDs
	packs      map[repo.ID]*packMeta
	stored     map[repo.ID]int64
	snapshots  []*repo.Snapshot
	packProb   map[repo.ID]*Problem
	kindProb   map[string]*Problem // missing blobs, wrong types
	infoCount  map[string]int
	infoMore   map[string]*Problem
	damaged    map[repo.ID][]*Problem

	trees     atomic.Int64
	dataRefs  atomic.Int64
	bytesRead atomic.Int64
	opened    atomic.Int64
}

func newChecker(be backend.Backend, opts Options) *checker {
	if opts.Workers <= 0 {
		// Streaming verification holds a blob, not a pack, per worker:
		// more workers than cores overlap reading with decrypting.
		opts.Workers = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if opts.MaxListed <= 0 {
		opts.MaxListed = 1000
	}
	rd := "none"
	switch {
	case opts.ReadData:
		rd = "all"
	case !opts.ReadDataSubset.IsZero():
		rd = opts.ReadDataSubset.String()
	case opts.StorageOnly:
		rd = "all"
	}
	return &checker{
		be:        be,
		opts:      opts,
		rep:       &Report{Repository: be.Location(), StorageOnly: opts.StorageOnly, ReadData: rd, Errors: []*Problem{}, Info: []*Problem{}},
		idx:       repo.NewIndex(),
		packs:     map[repo.ID]*packMeta{},
		stored:    map[repo.ID]int64{},
		packProb:  map[repo.ID]*Problem{},
		kindProb:  map[string]*Problem{},
		infoCount: map[string]int{},
		infoMore:  map[string]*Problem{},
		damaged:   map[repo.ID][]*Problem{},
	}
}

// Check verifies the repository r. The returned error is for a check that
// could not run (storage unreachable, cancelled); findings are in the
// report, and Report.Damaged tells whether any is an error.
func Check(ctx context.Context, r *repo.Repository, opts Options) (*Report, error) {
	if opts.StorageOnly {
		return CheckStorage(ctx, r.Backend(), opts)
	}
	start := time.Now()
	c := newChecker(r.Backend(), opts)
	c.r = r
	steps := []func(context.Context) error{
		c.checkConfig, c.checkKeys, c.checkDicts, c.loadIndex, c.listPacks, c.checkPackSizes,
		c.loadSnapshots, c.checkCatalogs, c.listInfoFiles, c.readData, c.walkTrees, c.mapDamage,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	return c.finish(start), nil
}

// CheckStorage verifies, without the password, that every pack, index,
// snapshot and key file in be hashes to its name and that the config
// file decodes. Only opts.ReadDataSubset, Progress, Phase, Workers and
// MaxListed are used.
func CheckStorage(ctx context.Context, be backend.Backend, opts Options) (*Report, error) {
	start := time.Now()
	opts.StorageOnly = true
	c := newChecker(be, opts)
	steps := []func(context.Context) error{
		c.checkConfig, c.checkKeys, c.hashFiles, c.listPacks, c.listInfoFiles, c.readData,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	return c.finish(start), nil
}

func (c *checker) finish(start time.Time) *Report {
	st := &c.rep.Stats
	st.Trees = c.trees.Load()
	st.DataBlobRefs = c.dataRefs.Load()
	st.BytesRead = c.bytesRead.Load()
	st.BlobsOpened = c.opened.Load()
	st.Duration = time.Since(start).Seconds()
	for kind, p := range c.infoMore {
		p.Message = fmt.Sprintf("%d more of the same kind not listed", c.infoCount[kind]-c.opts.MaxListed)
	}
	if missing := c.kindProb[KindBlobMissing]; missing != nil && c.infoCount[KindPackUnreferenced] > 0 {
		// The packs of a lost index file hold data snapshots need:
		// pruning them would turn a repairable index into lost data.
		addMessage(missing, fmt.Sprintf("%d packs in no index may hold them: do not prune before the index is rebuilt from the packs", c.infoCount[KindPackUnreferenced]))
		for _, p := range c.rep.Info {
			if p.Kind == KindPackUnreferenced && p.File != "" {
				p.Message = fmt.Sprintf("pack of %d bytes is in no index; it may hold blobs that snapshots miss (see errors): keep it", c.stored[packID(p.File)])
			}
		}
	}
	for _, p := range c.kindProb {
		c.rep.Errors = append(c.rep.Errors, p)
	}
	sortProblems(c.rep.Errors)
	sortProblems(c.rep.Info)
	return c.rep
}

func sortProblems(ps []*Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Kind != ps[j].Kind {
			return ps[i].Kind < ps[j].Kind
		}
		if (ps[i].File == "") != (ps[j].File == "") {
			return ps[j].File == "" // "more not listed" last
		}
		return ps[i].File < ps[j].File
	})
}

func (c *checker) phase(name string) {
	if c.opts.Phase != nil {
		c.opts.Phase(name)
	}
}

func (c *checker) progress(done, total int64) {
	if c.opts.Progress != nil {
		c.progMu.Lock()
		c.opts.Progress(done, total)
		c.progMu.Unlock()
	}
}

// addError records an error about one file.
func (c *checker) addError(kind, file, msg string) *Problem {
	p := &Problem{Kind: kind, File: file, Message: msg}
	c.mu.Lock()
	c.rep.Errors = append(c.rep.Errors, p)
	c.mu.Unlock()
	return p
}

// addInfo records information, listing at most MaxListed of each kind.
func (c *checker) addInfo(kind, file, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.infoCount[kind]++
	if n := c.infoCount[kind]; n <= c.opts.MaxListed {
		c.rep.Info = append(c.rep.Info, &Problem{Kind: kind, File: file, Message: msg})
	} else if n == c.opts.MaxListed+1 {
		c.infoMore[kind] = &Problem{Kind: kind}
		c.rep.Info = append(c.rep.Info, c.infoMore[kind])
	}
}

// packProblem returns the (single) error about a pack file, creating it.
// Called with c.mu held.
func (c *checker) packProblemLocked(id repo.ID, kind string) *Problem {
	p := c.packProb[id]
	if p == nil {
		p = &Problem{Kind: kind, File: packFile(id)}
		c.packProb[id] = p
		c.rep.Errors = append(c.rep.Errors, p)
	}
	return p
}

func addMessage(p *Problem, msg string) {
	if p.Message == "" {
		p.Message = msg
	} else {
		p.Message += "; " + msg
	}
}

// markDamaged records that blob id is damaged or missing, as reported by
// p. Called with c.mu held.
func (c *checker) markDamagedLocked(p *Problem, t repo.BlobType, id repo.ID) {
	if p.blobSet == nil {
		p.blobSet = repo.IDSet{}
	}
	if p.blobSet.Has(id) {
		return
	}
	p.blobSet.Insert(id)
	p.BlobsTotal++
	if len(p.Blobs) < c.opts.MaxListed {
		p.Blobs = append(p.Blobs, BlobRef{Type: t.String(), ID: id})
	}
	c.damaged[id] = append(c.damaged[id], p)
}

func (c *checker) isDamaged(id repo.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.damaged[id]) > 0
}

// kindProblemLocked returns the repository-wide error of a kind (missing
// blobs, blobs of the wrong type). Called with c.mu held.
func (c *checker) kindProblemLocked(kind string) *Problem {
	p := c.kindProb[kind]
	if p == nil {
		p = &Problem{Kind: kind}
		switch kind {
		case KindBlobMissing:
			p.Message = "blobs referenced by snapshots are in no index (a damaged or deleted index file may have listed them, or their pack was never written)"
		case KindBlobWrongType:
			p.Message = "blobs are referenced as one type but indexed as another"
		}
		c.kindProb[kind] = p
	}
	return p
}

func packID(file string) repo.ID {
	id, _ := repo.ParseID(strings.TrimPrefix(file, string(backend.PackFile)+"/"))
	return id
}

func packFile(id repo.ID) string { return string(backend.PackFile) + "/" + id.String() }

func fileName(t backend.FileType, name string) string {
	return backend.Handle{Type: t, Name: name}.String()
}

// listIDs lists the files of type t whose names are IDs; other names
// (leftover temporary files) are reported as information.
func (c *checker) listIDs(ctx context.Context, t backend.FileType, sizes map[repo.ID]int64) (repo.IDs, error) {
	var ids repo.IDs
	err := c.be.List(ctx, t, func(fi backend.FileInfo) error {
		id, err := repo.ParseID(fi.Name)
		if err != nil {
			c.addInfo(KindTemporaryFile, fileName(t, fi.Name), fmt.Sprintf("not a repository file name (leftover temporary file of an interrupted save?), %d bytes; it can be removed", fi.Size))
			return nil
		}
		ids = append(ids, id)
		if sizes != nil {
			sizes[id] = fi.Size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", t, err)
	}
	ids.Sort()
	return ids, nil
}

// parallel runs fn for every id with c.opts.Workers goroutines and stops
// at the first error fn returns (fn reports findings itself).
func (c *checker) parallel(ctx context.Context, ids repo.IDs, fn func(ctx context.Context, i int, id repo.ID) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for w := 0; w < min(c.opts.Workers, len(ids)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ids) || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i, ids[i]); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// fatal reports whether err stops the check rather than being a finding
// about one file.
func fatal(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func (c *checker) checkConfig(ctx context.Context) error {
	c.phase("config")
	data, err := backend.LoadAll(ctx, c.be, backend.Handle{Type: backend.ConfigFile, Name: "config"})
	if err != nil {
		if fatal(ctx, err) {
			return err
		}
		c.addError(KindConfigDamaged, "config", fmt.Sprintf("cannot read the config file: %v", err))
		return nil
	}
	cfg, err := repo.DecodeConfig(data)
	if err != nil {
		c.addError(KindConfigDamaged, "config", err.Error())
		return nil
	}
	if c.r != nil && cfg.ID != c.r.Config().ID {
		c.addError(KindConfigDamaged, "config", fmt.Sprintf("repository ID %s differs from %s seen when the repository was opened", cfg.ID.Short(), c.r.Config().ID.Short()))
	}
	return nil
}

// checkKeys verifies every key file: it must hash to its name and decode.
func (c *checker) checkKeys(ctx context.Context) error {
	c.phase("keys")
	ids, err := c.listIDs(ctx, backend.KeyFile, nil)
	if err != nil {
		return err
	}
	c.rep.Stats.KeyFiles = len(ids)
	if len(ids) == 0 {
		c.addError(KindKeyDamaged, "keys/", "the repository has no key files: nobody can open it")
		return nil
	}
	var done atomic.Int64
	return c.parallel(ctx, ids, func(ctx context.Context, _ int, id repo.ID) error {
		defer func() { c.progress(done.Add(1), int64(len(ids))) }()
		name := fileName(backend.KeyFile, id.String())
		data, err := backend.LoadAll(ctx, c.be, backend.Handle{Type: backend.KeyFile, Name: id.String()})
		switch {
		case fatal(ctx, err):
			return err
		case errors.Is(err, backend.ErrNotExist):
			return nil // removed meanwhile
		case err != nil:
			c.addError(KindKeyDamaged, name, fmt.Sprintf("cannot read: %v", err))
		case repo.Hash(data) != id:
			c.addError(KindKeyDamaged, name, "content does not hash to its name (bit rot or tampering): this password may no longer open the repository")
		default:
			if _, err := repo.DecodeKeyFile(data); err != nil {
				c.addError(KindKeyDamaged, name, err.Error())
			}
		}
		return nil
	})
}

// hashFiles (storage-only) verifies that index, snapshot, dictionary
// and catalog files hash to their names.
func (c *checker) hashFiles(ctx context.Context) error {
	return c.hashTypes(ctx, backend.IndexFile, backend.SnapshotFile, backend.DictFile, backend.CatalogFile)
}

// checkDicts verifies that compression dictionaries still hash to their
// names (the repository loaded them when it was opened; this catches
// damage since, before the next open fails on it).
func (c *checker) checkDicts(ctx context.Context) error {
	return c.hashTypes(ctx, backend.DictFile)
}

func (c *checker) hashTypes(ctx context.Context, types ...backend.FileType) error {
	for _, t := range types {
		c.phase(string(t))
		ids, err := c.listIDs(ctx, t, nil)
		if err != nil {
			return err
		}
		switch t {
		case backend.IndexFile:
			c.rep.Stats.IndexFiles = len(ids)
		case backend.SnapshotFile:
			c.rep.Stats.Snapshots = len(ids)
		}
		var done atomic.Int64
		err = c.parallel(ctx, ids, func(ctx context.Context, _ int, id repo.ID) error {
			defer func() { c.progress(done.Add(1), int64(len(ids))) }()
			data, err := backend.LoadAll(ctx, c.be, backend.Handle{Type: t, Name: id.String()})
			c.bytesRead.Add(int64(len(data)))
			switch {
			case fatal(ctx, err):
				return err
			case errors.Is(err, backend.ErrNotExist):
			case err != nil:
				c.addError(KindFileDamaged, fileName(t, id.String()), fmt.Sprintf("cannot read: %v", err))
			case repo.Hash(data) != id:
				c.addError(KindFileDamaged, fileName(t, id.String()), "content does not hash to its name (bit rot, truncation or tampering)")
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// loadIndex loads every index file into c.idx and records per pack what
// the index says about it.
func (c *checker) loadIndex(ctx context.Context) error {
	c.phase("index")
	ids, err := c.listIDs(ctx, backend.IndexFile, nil)
	if err != nil {
		return err
	}
	c.indexFiles = ids
	c.rep.Stats.IndexFiles = len(ids)
	var done atomic.Int64
	return c.parallel(ctx, ids, func(ctx context.Context, i int, id repo.ID) error {
		defer func() { c.progress(done.Add(1), int64(len(ids))) }()
		f, err := c.r.LoadIndexFile(ctx, id)
		switch {
		case fatal(ctx, err):
			return err
		case errors.Is(err, backend.ErrNotExist):
			return nil // superseded meanwhile
		case err != nil:
			c.addError(KindIndexDamaged, fileName(backend.IndexFile, id.String()), fmt.Sprintf("%v; the blobs it listed are reported below as missing unless another index lists them", err))
			return nil
		}
		for _, p := range f.Packs {
			c.idx.AddPack(p.PackInfo, p.Blobs)
			fp := fingerprintOf(p.Blobs)
			c.mu.Lock()
			m := c.packs[p.ID]
			if m == nil {
				m = &packMeta{info: p.PackInfo, size: repo.PackFileSize(p.Blobs), blobs: len(p.Blobs), fp: fp}
				c.packs[p.ID] = m
			} else if m.fp != fp || m.info != p.PackInfo {
				prob := c.packProblemLocked(p.ID, KindIndexConflict)
				addMessage(prob, fmt.Sprintf("index files disagree about this pack (%s among them)", fileName(backend.IndexFile, id.String())))
			}
			m.files = append(m.files, int32(i))
			c.mu.Unlock()
		}
		return nil
	})
}

// packBlobs reloads a pack's blob list from the index files listing it.
func (c *checker) packBlobs(ctx context.Context, id repo.ID) ([]repo.PackedBlob, error) {
	c.mu.Lock()
	m := c.packs[id]
	files := append([]int32(nil), m.files...)
	c.mu.Unlock()
	var last error
	for _, i := range files {
		f, err := c.r.LoadIndexFile(ctx, c.indexFiles[i])
		if err != nil {
			last = err
			continue
		}
		for _, p := range f.Packs {
			if p.ID == id {
				return p.Blobs, nil
			}
		}
	}
	if last == nil {
		last = errors.New("no index file lists it any more")
	}
	return nil, fmt.Errorf("reload the index entries of pack %s: %w", id.Short(), last)
}

func (c *checker) listPacks(ctx context.Context) error {
	c.phase("packs")
	ids, err := c.listIDs(ctx, backend.PackFile, c.stored)
	if err != nil {
		return err
	}
	c.rep.Stats.Packs = len(ids)
	if c.r == nil {
		return nil
	}
	for _, id := range ids {
		if _, ok := c.packs[id]; !ok {
			c.addInfo(KindPackUnreferenced, packFile(id), fmt.Sprintf("pack of %d bytes is in no index (left by an interrupted backup, or awaiting prune); 'einvault prune' removes it", c.stored[id]))
		}
	}
	return nil
}

// checkPackSizes reports indexed packs that are missing or whose size
// differs from the one the index implies.
func (c *checker) checkPackSizes(ctx context.Context) error {
	ids := make(repo.IDs, 0, len(c.packs))
	for id := range c.packs {
		ids = append(ids, id)
	}
	ids.Sort()
	for i, id := range ids {
		c.progress(int64(i+1), int64(len(ids)))
		m := c.packs[id]
		size, ok := c.stored[id]
		if ok && size == m.size {
			continue
		}
		blobs, err := c.packBlobs(ctx, id)
		if err != nil && fatal(ctx, err) {
			return err
		}
		c.mu.Lock()
		if !ok {
			p := c.packProblemLocked(id, KindPackMissing)
			p.Kind = KindPackMissing
			addMessage(p, fmt.Sprintf("pack listed in the index (%d blobs) does not exist in storage", m.blobs))
			for _, b := range blobs {
				c.markDamagedLocked(p, b.Type, b.ID)
			}
		} else {
			p := c.packProblemLocked(id, KindPackDamaged)
			var cut int
			for _, b := range blobs {
				if int64(b.Offset)+int64(b.Length) > size {
					c.markDamagedLocked(p, b.Type, b.ID)
					cut++
				}
			}
			msg := fmt.Sprintf("pack is %d bytes, but its index entries imply exactly %d (truncated or damaged)", size, m.size)
			if size < m.size {
				msg += fmt.Sprintf("; %d of %d blobs are cut off", cut, m.blobs)
			}
			addMessage(p, msg)
		}
		if err != nil {
			addMessage(c.packProb[id], err.Error())
		}
		c.mu.Unlock()
	}
	return nil
}

func (c *checker) loadSnapshots(ctx context.Context) error {
	c.phase("snapshots")
	ids, err := c.listIDs(ctx, backend.SnapshotFile, nil)
	if err != nil {
		return err
	}
	c.rep.Stats.Snapshots = len(ids)
	snaps := make([]*repo.Snapshot, len(ids))
	var done atomic.Int64
	err = c.parallel(ctx, ids, func(ctx context.Context, i int, id repo.ID) error {
		defer func() { c.progress(done.Add(1), int64(len(ids))) }()
		s, err := c.r.LoadSnapshot(ctx, id)
		switch {
		case fatal(ctx, err):
			return err
		case errors.Is(err, backend.ErrNotExist):
		case err != nil:
			c.addError(KindSnapshotDamaged, fileName(backend.SnapshotFile, id.String()), fmt.Sprintf("%v; this snapshot cannot be restored (the data it referred to may still be intact)", err))
		default:
			snaps[i] = s
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, s := range snaps {
		if s != nil {
			c.snapshots = append(c.snapshots, s)
		}
	}
	repo.SortSnapshots(c.snapshots)
	return nil
}

// checkCatalogs verifies that the invoice catalog each snapshot names
// exists, opens and decodes. A damaged catalog does not stop the
// snapshot's files from restoring, but invoice queries, one-invoice
// restore and restore's invoice verification lose it.
func (c *checker) checkCatalogs(ctx context.Context) error {
	var snaps []*repo.Snapshot
	var ids repo.IDs
	for _, s := range c.snapshots {
		if s.Catalog != nil {
			snaps = append(snaps, s)
			ids = append(ids, *s.Catalog)
		}
	}
	if len(snaps) == 0 {
		return nil
	}
	c.phase("catalogs")
	var done atomic.Int64
	return c.parallel(ctx, ids, func(ctx context.Context, i int, id repo.ID) error {
		defer func() { c.progress(done.Add(1), int64(len(ids))) }()
		s := snaps[i]
		payload, err := c.r.LoadCatalog(ctx, id)
		c.bytesRead.Add(int64(len(payload)))
		if fatal(ctx, err) {
			return err
		}
		what := ""
		switch {
		case errors.Is(err, backend.ErrNotExist):
			what = "is missing"
		case err != nil:
			what = fmt.Sprintf("cannot be read: %v", err)
		default:
			if _, err := catalog.Decode(payload); err != nil {
				what = fmt.Sprintf("does not decode: %v", err)
			}
		}
		if what == "" {
			return nil
		}
		p := &Problem{Kind: KindCatalogDamaged, File: fileName(backend.CatalogFile, id.String()),
			Message: fmt.Sprintf("the invoice catalog of snapshot %s (%s, %s) %s; its files still restore, but invoice queries and verification of this snapshot do not work (repair it from a healthy copy with 'einvault copies', or forget the snapshot)",
				s.ID.Short(), s.Time.Format(time.RFC3339), s.Host, what),
			Affected: []Affected{{Snapshot: s.ID, Time: s.Time, Host: s.Host, Path: "/"}}, AffectedTotal: 1}
		c.mu.Lock()
		c.rep.Errors = append(c.rep.Errors, p)
		c.mu.Unlock()
		return nil
	})
}

// listInfoFiles reports pending deletions and locks as information.
func (c *checker) listInfoFiles(ctx context.Context) error {
	err := c.be.List(ctx, backend.PendingFile, func(fi backend.FileInfo) error {
		c.addInfo(KindPendingDeletion, fileName(backend.PendingFile, fi.Name), "prune marked data for deletion; it is removed after its grace window if still unreferenced")
		return nil
	})
	if err != nil && !errors.Is(err, backend.ErrNotExist) {
		return fmt.Errorf("list pending: %w", err)
	}
	var locks int
	err = c.be.List(ctx, backend.LockFile, func(backend.FileInfo) error { locks++; return nil })
	if err != nil && !errors.Is(err, backend.ErrNotExist) {
		return fmt.Errorf("list locks: %w", err)
	}
	if locks > 0 {
		c.addInfo(KindLocks, "locks/", fmt.Sprintf("%d lock files (running or killed operations; stale ones never block backups)", locks))
	}
	return nil
}

// readData reads the chosen packs whole.
func (c *checker) readData(ctx context.Context) error {
	var cands repo.IDs
	for id := range c.stored {
		// Packs of the wrong size are reported already; they are read
		// too, so their intact blobs are told apart from the lost ones.
		if c.r == nil || c.packs[id] != nil {
			cands = append(cands, id)
		}
	}
	cands.Sort()
	var chosen repo.IDs
	switch {
	case c.opts.ReadData || (c.opts.StorageOnly && c.opts.ReadDataSubset.IsZero()):
		chosen = cands
	case !c.opts.ReadDataSubset.IsZero():
		chosen = c.opts.ReadDataSubset.choose(cands, c.opts.Rand)
	default:
		return nil
	}
	c.phase("read-data")
	var total int64
	for _, id := range chosen {
		total += c.stored[id]
	}
	c.rep.Stats.PacksRead = len(chosen)
	var done atomic.Int64
	bufs := sync.Pool{New: func() any { return new([]byte) }}
	return c.parallel(ctx, chosen, func(ctx context.Context, _ int, id repo.ID) error {
		size := c.stored[id]
		defer func() { c.progress(done.Add(size), total) }()
		if size > maxPackRead {
			c.mu.Lock()
			addMessage(c.packProblemLocked(id, KindPackDamaged), fmt.Sprintf("%d bytes: too large to be a pack, not read", size))
			c.mu.Unlock()
			return nil
		}
		if c.r != nil {
			// Intact packs are verified streaming, in bounded memory;
			// anything odd is read again whole for the full diagnosis.
			ok, err := c.streamPack(ctx, id, size)
			if fatal(ctx, err) {
				return err
			}
			if ok {
				return nil
			}
		}
		bp := bufs.Get().(*[]byte)
		defer bufs.Put(bp)
		data, err := c.loadPack(ctx, id, size, bp)
		switch {
		case fatal(ctx, err):
			return err
		case err != nil:
			c.mu.Lock()
			kind := KindPackDamaged
			if errors.Is(err, backend.ErrNotExist) {
				kind = KindPackMissing
			}
			addMessage(c.packProblemLocked(id, kind), fmt.Sprintf("cannot read: %v", err))
			c.mu.Unlock()
			return nil
		}
		if c.r == nil {
			if repo.Hash(data) != id {
				c.addError(KindPackDamaged, packFile(id), "content does not hash to its name (bit rot, truncation or tampering)")
			}
			return nil
		}
		return c.verifyPack(ctx, id, data)
	})
}

// streamPack verifies a pack that the index describes without holding it
// in memory: it reads the header, then the file in one pass, opening each
// blob as it arrives and hashing every byte. It reports true only when
// everything is intact; on any finding the caller re-reads the pack whole
// to name what is damaged.
func (c *checker) streamPack(ctx context.Context, id repo.ID, size int64) (bool, error) {
	c.mu.Lock()
	m := c.packs[id]
	c.mu.Unlock()
	if m == nil {
		return false, nil
	}
	info, hdr, err := c.r.PackHeader(ctx, id, size)
	if err != nil || info.Epoch != m.info.Epoch || info.Salt != m.info.Salt || fingerprintOf(hdr) != m.fp {
		return false, ctxErr(ctx)
	}
	rd, err := c.be.Load(ctx, backend.Handle{Type: backend.PackFile, Name: id.String()}, 0, 0)
	if err != nil {
		return false, ctxErr(ctx)
	}
	defer rd.Close()
	h := blake3.New()
	br := bufio.NewReaderSize(rd, 256<<10)
	var sealed, plain []byte
	var n int64
	for _, b := range hdr {
		if int64(cap(sealed)) < int64(b.Length) {
			sealed = make([]byte, b.Length)
		}
		sealed = sealed[:b.Length]
		if _, err := io.ReadFull(br, sealed); err != nil {
			return false, ctxErr(ctx)
		}
		n += int64(b.Length)
		_, _ = h.Write(sealed)
		out, err := c.r.OpenBlob(m.info, b.Type, b.Flags, b.ID, sealed, plain)
		if err != nil {
			return false, nil
		}
		if cap(out) > cap(plain) && cap(out) <= 8<<20 {
			plain = out[:0]
		}
	}
	rest, err := io.Copy(h, br)
	n += rest
	c.bytesRead.Add(n)
	if err != nil || n != size || repo.ID(h.Sum(nil)) != id {
		return false, ctxErr(ctx)
	}
	c.opened.Add(int64(len(hdr)))
	return true, nil
}

func ctxErr(ctx context.Context) error { return ctx.Err() }

// loadPack reads a whole pack of the expected size into *buf; a file
// that turns out shorter yields fewer bytes.
func (c *checker) loadPack(ctx context.Context, id repo.ID, size int64, buf *[]byte) ([]byte, error) {
	rd, err := c.be.Load(ctx, backend.Handle{Type: backend.PackFile, Name: id.String()}, 0, 0)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	if int64(cap(*buf)) < size {
		*buf = make([]byte, size)
	}
	data := (*buf)[:size]
	n, err := io.ReadFull(rd, data)
	c.bytesRead.Add(int64(n))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return data[:n], nil
}

// verifyPack checks a whole pack: its hash, its header against the index,
// and every blob the index locates in it.
func (c *checker) verifyPack(ctx context.Context, id repo.ID, data []byte) error {
	c.mu.Lock()
	m := c.packs[id]
	c.mu.Unlock()
	var msgs []string
	if repo.Hash(data) != id {
		msgs = append(msgs, "content does not hash to its name (bit rot, truncation or tampering)")
	}
	info, hdr, herr := c.r.DecodePack(data)
	var blobs []repo.PackedBlob
	switch {
	case herr != nil:
		msgs = append(msgs, fmt.Sprintf("header unreadable: %v", herr))
	case info.Epoch != m.info.Epoch || info.Salt != m.info.Salt || fingerprintOf(hdr) != m.fp:
		msgs = append(msgs, fmt.Sprintf("header (%d blobs) disagrees with the index entries for this pack (%d blobs)", len(hdr), m.blobs))
	default:
		blobs = hdr
	}
	if blobs == nil {
		var err error
		if blobs, err = c.packBlobs(ctx, id); err != nil {
			if fatal(ctx, err) {
				return err
			}
			msgs = append(msgs, err.Error())
		}
	}
	var bad []repo.PackedBlob
	var scratch []byte
	for _, b := range blobs {
		end := int64(b.Offset) + int64(b.Length)
		if end > int64(len(data)) {
			bad = append(bad, b)
			continue
		}
		out, err := c.r.OpenBlob(m.info, b.Type, b.Flags, b.ID, data[b.Offset:end], scratch)
		c.opened.Add(1)
		if err != nil {
			bad = append(bad, b)
			continue
		}
		if cap(out) > cap(scratch) && cap(out) <= 8<<20 {
			scratch = out[:0]
		}
	}
	if len(msgs) == 0 && len(bad) == 0 {
		return nil
	}
	if len(bad) > 0 {
		msgs = append(msgs, fmt.Sprintf("%d of %d blobs fail to decrypt or verify", len(bad), len(blobs)))
	} else {
		msgs = append(msgs, fmt.Sprintf("all %d blobs still open intact through the index", len(blobs)))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.packProblemLocked(id, KindPackDamaged)
	if p.Kind == KindIndexConflict {
		p.Kind = KindPackDamaged
	}
	addMessage(p, strings.Join(msgs, "; "))
	for _, b := range bad {
		c.markDamagedLocked(p, b.Type, b.ID)
	}
	return nil
}

// loadTree loads a tree through the checker's own index.
func (c *checker) loadTree(ctx context.Context, id repo.ID, e repo.IndexEntry) (*repo.Tree, repo.ID, error) {
	p := c.idx.PackOf(e)
	sealed, err := backend.LoadRange(ctx, c.be, backend.Handle{Type: backend.PackFile, Name: p.ID.String()}, int64(e.Offset), int64(e.Length), nil)
	if err != nil {
		return nil, p.ID, err
	}
	plain, err := c.r.OpenBlob(p, repo.TreeBlob, e.Flags, id, sealed, nil)
	if err != nil {
		return nil, p.ID, err
	}
	t, err := repo.DecodeTree(plain)
	if err != nil {
		return nil, p.ID, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	return t, p.ID, nil
}

// walkTrees visits every tree reachable from a snapshot once, in
// parallel, checking that every referenced blob is indexed.
func (c *checker) walkTrees(ctx context.Context) error {
	c.phase("trees")
	seen := repo.IDSet{}
	var queue []repo.ID
	for _, s := range c.snapshots {
		if !seen.Has(s.Tree) {
			seen.Insert(s.Tree)
			queue = append(queue, s.Tree)
		}
	}
	var (
		mu     sync.Mutex
		cond   = sync.NewCond(&mu)
		active int
		failed error
		wg     sync.WaitGroup
	)
	for w := 0; w < c.opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				for len(queue) == 0 && active > 0 && failed == nil {
					cond.Wait()
				}
				if len(queue) == 0 || failed != nil {
					mu.Unlock()
					cond.Broadcast()
					return
				}
				id := queue[len(queue)-1]
				queue = queue[:len(queue)-1]
				active++
				mu.Unlock()

				subs, err := c.checkTree(ctx, id)

				mu.Lock()
				active--
				if err != nil && failed == nil {
					failed = err
				}
				for _, s := range subs {
					if !seen.Has(s) {
						seen.Insert(s)
						queue = append(queue, s)
					}
				}
				c.progress(int64(len(seen)), -1)
				mu.Unlock()
				cond.Broadcast()
			}
		}()
	}
	wg.Wait()
	c.trees.Store(int64(len(seen)))
	return failed
}

// checkTree checks one tree and returns its subtrees.
func (c *checker) checkTree(ctx context.Context, id repo.ID) ([]repo.ID, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e, ok := c.idx.Lookup(id)
	if !ok {
		c.mu.Lock()
		c.markDamagedLocked(c.kindProblemLocked(KindBlobMissing), repo.TreeBlob, id)
		c.mu.Unlock()
		return nil, nil
	}
	if e.Type != repo.TreeBlob {
		c.mu.Lock()
		c.markDamagedLocked(c.kindProblemLocked(KindBlobWrongType), repo.TreeBlob, id)
		c.mu.Unlock()
		return nil, nil
	}
	if c.isDamaged(id) {
		return nil, nil // its pack is reported already
	}
	t, pack, err := c.loadTree(ctx, id, e)
	if err != nil {
		if fatal(ctx, err) {
			return nil, err
		}
		c.mu.Lock()
		var p *Problem
		if errors.Is(err, repo.ErrDamaged) && strings.HasPrefix(err.Error(), "tree ") {
			// Authentic but undecodable: written damaged or hostile.
			p = &Problem{Kind: KindTreeDamaged, File: packFile(pack), Message: err.Error()}
			c.rep.Errors = append(c.rep.Errors, p)
		} else {
			p = c.packProblemLocked(pack, KindPackDamaged)
			addMessage(p, fmt.Sprintf("tree blob %s: %v", id.Short(), err))
		}
		c.markDamagedLocked(p, repo.TreeBlob, id)
		c.mu.Unlock()
		return nil, nil
	}
	var subs []repo.ID
	for _, n := range t.Nodes {
		switch n.Type {
		case repo.NodeDir:
			subs = append(subs, *n.Subtree)
		case repo.NodeFile:
			c.dataRefs.Add(int64(len(n.Content)))
			for _, b := range n.Content {
				be, ok := c.idx.Lookup(b)
				switch {
				case !ok:
					c.mu.Lock()
					c.markDamagedLocked(c.kindProblemLocked(KindBlobMissing), repo.DataBlob, b)
					c.mu.Unlock()
				case be.Type != repo.DataBlob:
					c.mu.Lock()
					c.markDamagedLocked(c.kindProblemLocked(KindBlobWrongType), repo.DataBlob, b)
					c.mu.Unlock()
				}
			}
		}
	}
	return subs, nil
}

// mapDamage walks the snapshots a second time, only when damage was
// found, and lists the paths whose content depends on a damaged blob.
func (c *checker) mapDamage(ctx context.Context) error {
	if len(c.damaged) == 0 || len(c.snapshots) == 0 {
		return nil
	}
	c.phase("map-damage")
	m := &mapper{c: c, memo: map[repo.ID]bool{}}
	for i, s := range c.snapshots {
		c.progress(int64(i), int64(len(c.snapshots)))
		hit, err := m.affected(ctx, s.Tree)
		if err != nil {
			return err
		}
		if hit {
			if err := m.emit(ctx, s, s.Tree, ""); err != nil {
				return err
			}
		}
	}
	c.progress(int64(len(c.snapshots)), int64(len(c.snapshots)))
	return nil
}

type mapper struct {
	c    *checker
	memo map[repo.ID]bool // tree -> something below it is damaged
}

func (m *mapper) tree(ctx context.Context, id repo.ID) (*repo.Tree, error) {
	e, ok := m.c.idx.Lookup(id)
	if !ok || len(m.c.damaged[id]) > 0 {
		return nil, nil
	}
	t, _, err := m.c.loadTree(ctx, id, e)
	if err != nil {
		if fatal(ctx, err) {
			return nil, err
		}
		return nil, nil // failed in the first walk too, so it is in damaged
	}
	return t, nil
}

func (m *mapper) affected(ctx context.Context, id repo.ID) (bool, error) {
	if v, ok := m.memo[id]; ok {
		return v, nil
	}
	if len(m.c.damaged[id]) > 0 {
		m.memo[id] = true
		return true, nil
	}
	t, err := m.tree(ctx, id)
	if err != nil || t == nil {
		return t == nil && err == nil, err
	}
	hit := false
	for _, n := range t.Nodes {
		switch n.Type {
		case repo.NodeFile:
			for _, b := range n.Content {
				if len(m.c.damaged[b]) > 0 {
					hit = true
				}
			}
		case repo.NodeDir:
			h, err := m.affected(ctx, *n.Subtree)
			if err != nil {
				return false, err
			}
			hit = hit || h
		}
	}
	m.memo[id] = hit
	return hit, nil
}

func (m *mapper) emit(ctx context.Context, s *repo.Snapshot, id repo.ID, prefix string) error {
	add := func(ps []*Problem, p string, dir bool) {
		if p == "" {
			p = "/"
		}
		a := Affected{Snapshot: s.ID, Time: s.Time, Host: s.Host, Path: p, Directory: dir}
		done := make(map[*Problem]bool, 2)
		for _, prob := range ps {
			if done[prob] {
				continue
			}
			done[prob] = true
			prob.AffectedTotal++
			if len(prob.Affected) < m.c.opts.MaxListed {
				prob.Affected = append(prob.Affected, a)
			}
		}
	}
	if ps := m.c.damaged[id]; len(ps) > 0 {
		add(ps, prefix, true)
		return nil
	}
	t, err := m.tree(ctx, id)
	if err != nil || t == nil {
		return err
	}
	for _, n := range t.Nodes {
		p := prefix + "/" + n.Name
		switch n.Type {
		case repo.NodeFile:
			var ps []*Problem
			for _, b := range n.Content {
				ps = append(ps, m.c.damaged[b]...)
			}
			if len(ps) > 0 {
				add(ps, p, false)
			}
		case repo.NodeDir:
			if m.memo[*n.Subtree] {
				if err := m.emit(ctx, s, *n.Subtree, p); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// VerifyPacks reads the packs ids whole and verifies them as a check with
// --read-data does (each pack hashes to its name, its header agrees with
// the index, every blob decrypts and verifies), without the rest of a
// check: it is the post-backup verification of the packs a backup wrote.
// A pack that is missing, of the wrong size or in no index is an error.
// Only Progress, Phase, Workers and MaxListed of opts are used.
func VerifyPacks(ctx context.Context, r *repo.Repository, ids repo.IDs, opts Options) (*Report, error) {
	start := time.Now()
	opts.ReadData, opts.StorageOnly = true, false
	c := newChecker(r.Backend(), opts)
	c.r = r
	c.rep.ReadData = fmt.Sprintf("%d packs", len(ids))
	if err := c.loadIndex(ctx); err != nil {
		return nil, err
	}
	want := map[repo.ID]*packMeta{}
	for _, id := range ids {
		m := c.packs[id]
		if m == nil {
			c.addError(KindPackUnreferenced, packFile(id), "a pack this backup wrote is in no index file: its data cannot be found (run 'einvault check')")
			continue
		}
		want[id] = m
		fi, err := c.be.Stat(ctx, backend.Handle{Type: backend.PackFile, Name: id.String()})
		switch {
		case fatal(ctx, err):
			return nil, err
		case errors.Is(err, backend.ErrNotExist):
		case err != nil:
			c.addError(KindPackDamaged, packFile(id), fmt.Sprintf("cannot stat: %v", err))
			delete(want, id)
		default:
			c.stored[id] = fi.Size
		}
	}
	c.packs = want
	c.rep.Stats.Packs = len(want)
	for _, step := range []func(context.Context) error{c.checkPackSizes, c.readData} {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	return c.finish(start), nil
}
