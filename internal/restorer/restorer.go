// Package restorer owns turning snapshots back into files: it restores a
// snapshot (or one subtree of it) into a target directory, and dumps single
// files or directories (as tar) to a stream.
//
// A restore is planned by pack. The tree is walked first and every needed
// data blob is collected with all the places it goes to (file, offset);
// blobs are grouped by pack and sorted by offset, and a few workers each
// take a whole pack, read the needed ranges of it, decrypt and verify every
// blob, and write it with WriteAt into each destination. Files are written
// under a temporary name in their final directory and renamed into place
// only when every blob has been written and verified, so an interrupted or
// damaged restore never leaves wrong bytes under a real name.
//
// The restorer never writes outside the target: every directory it enters
// is checked with Lstat and opened with os.Root, so a symbolic link (one
// found in the target, or one made by a hostile snapshot) is never followed.
package restorer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/repo"
)

// Repository is what the restorer needs from a repository. The index
// must be loaded.
type Repository interface {
	LoadTree(ctx context.Context, id repo.ID) (*repo.Tree, error)
	Index() *repo.Index
	Backend() backend.Backend
	OpenBlob(p repo.PackInfo, t repo.BlobType, flags uint8, id repo.ID, sealed, buf []byte) ([]byte, error)
}

// Options configure a restore.
type Options struct {
	// Include selects paths inside the snapshot (path.Match syntax); a
	// pattern that matches a directory selects everything under it. A
	// pattern starting with "/" is matched against the whole snapshot path
	// ("/srv/data/2024/*.xml"), any other against every trailing part of it
	// ("*.xml", "2024/01"). Empty means everything.
	Include []string
	// Exclude skips matching paths (same syntax); it wins over Include.
	Exclude []string
	// Overwrite replaces existing files in the target (atomically, by
	// rename). Without it an existing file is skipped and reported.
	Overwrite bool
	// Progress, when set, is called every ProgressInterval and once at the
	// end, from a single goroutine.
	Progress         func(Progress)
	ProgressInterval time.Duration
	// Workers restoring packs in parallel (default 4).
	Workers int
	// VerifyAfter re-reads every restored file and compares it with the
	// blobs it was restored from.
	VerifyAfter bool
	// OpenDirs bounds the number of directory handles kept open
	// (default 256).
	OpenDirs int
}

// Progress is a restore's running totals. Totals are known up front.
type Progress struct {
	Files      uint64        `json:"files_done"`
	TotalFiles uint64        `json:"total_files"`
	Bytes      uint64        `json:"bytes_done"`
	TotalBytes uint64        `json:"total_bytes"`
	Skipped    uint64        `json:"skipped"`
	Damaged    uint64        `json:"damaged"`
	Errors     uint64        `json:"errors"`
	Elapsed    time.Duration `json:"elapsed_ns"`
}

// PathReason names a path inside the snapshot and what happened to it.
type PathReason struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// maxListed bounds the skipped paths and notes listed in a report (the
// counts are always complete).
const maxListed = 1000

// Report is what a restore did.
type Report struct {
	Snapshot string `json:"snapshot,omitempty"`
	Subpath  string `json:"subpath,omitempty"`
	Target   string `json:"target"`

	Files     uint64 `json:"files_restored"`
	Dirs      uint64 `json:"dirs_restored"`
	Symlinks  uint64 `json:"symlinks_restored"`
	HardLinks uint64 `json:"hardlinks_restored"`
	Special   uint64 `json:"special_restored"`
	Bytes     uint64 `json:"bytes_restored"`

	TotalFiles uint64 `json:"total_files"`
	TotalBytes uint64 `json:"total_bytes"`

	SkippedExisting uint64       `json:"skipped_existing"`
	Skipped         []PathReason `json:"skipped,omitempty"`
	Damaged         []PathReason `json:"damaged,omitempty"`
	Errors          []PathReason `json:"errors,omitempty"`
	Notes           []PathReason `json:"notes,omitempty"`

	Verified     uint64       `json:"verified_files,omitempty"`
	VerifyFailed []PathReason `json:"verify_failed,omitempty"`

	Duration float64 `json:"duration_seconds"`
}

// ErrVerifyFailed is returned (wrapped) when VerifyAfter finds restored
// bytes that differ from the snapshot.
var ErrVerifyFailed = errors.New("restored files differ from the snapshot")

// ErrUnsafePath is returned (wrapped) for a target path that the restore
// refuses to write through: a symbolic link or a non-directory where a
// directory is needed.
var ErrUnsafePath = errors.New("refusing an unsafe path in the target")

// Restorer restores snapshots.
type Restorer struct {
	repo Repository
	opts Options
}

// New returns a restorer reading from r.
func New(r Repository, opts Options) *Restorer {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = 200 * time.Millisecond
	}
	if opts.OpenDirs <= 0 {
		opts.OpenDirs = 256
	}
	return &Restorer{repo: r, opts: opts}
}

// file flags
const (
	fCreated uint32 = 1 << iota // temp file exists
	fDamaged                    // a blob could not be restored
	fFailed                     // a local error (write, metadata)
	fDone                       // renamed into place
)

type dirEntry struct {
	parent  int32
	name    string
	spath   string // path inside the snapshot
	node    *repo.Node
	depth   int
	needed  bool
	created bool // made by this restore (so it was empty)
	existed bool
	failed  bool
	sgid    bool // new entries inherit the directory's group
}

// fileEntry is one file to restore. It copies what it needs from the
// tree node so that decoded trees are not kept in memory: a restore of
// millions of small files holds about 150 bytes per file.
type fileEntry struct {
	name      string
	content   []repo.ID
	size      uint64
	mtime     int64 // Unix nanoseconds; 0 = unknown
	atime     int64
	mode      fs.FileMode
	uid, gid  uint32
	dir       int32
	linkTo    int32 // hard link to this file index, or -1
	remaining atomic.Int32
	flags     atomic.Uint32
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

type specialEntry struct {
	dir  int32
	name string
	node *repo.Node
}

type dest struct {
	file int32
	off  int64
}

type blobPlan struct {
	id     repo.ID
	off    uint32
	length uint32
	raw    uint32
	flags  uint8
	dests  []dest
}

type packPlan struct {
	info  repo.PackInfo
	blobs []*blobPlan
}

// run is the state of one restore.
type run struct {
	r      *Restorer
	ctx    context.Context
	cancel context.CancelCauseFunc
	runID  string
	isRoot bool
	uid    uint32
	gid    uint32

	dirs     []*dirEntry
	files    []*fileEntry
	specials []specialEntry
	cache    *dirCache
	stripes  [64]sync.Mutex

	filesDone, bytesDone, skipped, damaged, errs, dirsDone atomic.Uint64
	symlinks, hardlinks, special                           atomic.Uint64
	totalFiles, totalBytes                                 uint64

	mu      sync.Mutex
	report  *Report
	reasons map[int32]string // damage reasons of files
	hashes  map[repo.ID]repo.ID
}

func (rs *run) tmpName(fi int32) string { return fmt.Sprintf(".einvault-restore-%s-%d", rs.runID, fi) }

func (rs *run) filePath(fi int32) string {
	f := rs.files[fi]
	return joinSnap(rs.dirs[f.dir].spath, f.name)
}

// relPath is the path of dir d relative to the target.
func (rs *run) relPath(d int32) string {
	var parts []string
	for d > 0 {
		parts = append(parts, rs.dirs[d].name)
		d = rs.dirs[d].parent
	}
	if len(parts) == 0 {
		return "."
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, "/")
}

func joinSnap(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

func (rs *run) addError(p string, err error) {
	rs.errs.Add(1)
	rs.mu.Lock()
	rs.report.Errors = append(rs.report.Errors, PathReason{Path: p, Reason: err.Error()})
	rs.mu.Unlock()
}

func (rs *run) addNote(p, note string) {
	rs.mu.Lock()
	if len(rs.report.Notes) < maxListed {
		rs.report.Notes = append(rs.report.Notes, PathReason{Path: p, Reason: note})
	}
	rs.mu.Unlock()
}

func (rs *run) addSkipped(p string) {
	rs.skipped.Add(1)
	rs.mu.Lock()
	if len(rs.report.Skipped) < maxListed {
		rs.report.Skipped = append(rs.report.Skipped, PathReason{Path: p, Reason: "exists, not overwritten"})
	}
	rs.mu.Unlock()
}

func (rs *run) addDamaged(p, reason string) {
	rs.damaged.Add(1)
	rs.mu.Lock()
	rs.report.Damaged = append(rs.report.Damaged, PathReason{Path: p, Reason: reason})
	rs.mu.Unlock()
}

// markDamaged records the first damage reason of a file.
func (rs *run) markDamaged(fi int32, reason string) {
	f := rs.files[fi]
	for {
		old := f.flags.Load()
		if old&fDamaged != 0 {
			return
		}
		if f.flags.CompareAndSwap(old, old|fDamaged) {
			break
		}
	}
	rs.mu.Lock()
	rs.reasons[fi] = reason
	rs.mu.Unlock()
}

// markFailed records a local error for a file (reported once).
func (rs *run) markFailed(fi int32, err error) {
	f := rs.files[fi]
	for {
		old := f.flags.Load()
		if old&(fFailed|fDamaged) != 0 {
			return
		}
		if f.flags.CompareAndSwap(old, old|fFailed) {
			break
		}
	}
	rs.addError(rs.filePath(fi), err)
}

func (rs *run) progress(start time.Time) Progress {
	return Progress{
		Files: rs.filesDone.Load(), TotalFiles: rs.totalFiles,
		Bytes: rs.bytesDone.Load(), TotalBytes: rs.totalBytes,
		Skipped: rs.skipped.Load(), Damaged: rs.damaged.Load(), Errors: rs.errs.Load(),
		Elapsed: time.Since(start),
	}
}

// Restore restores snap (or the subtree at subpath, "" or "/" for all of
// it) into target. A snapshot of /srv/data restores to target/srv/data; a
// subpath /srv/data restores its content into target; a subpath naming a
// file restores that file into target.
//
// Damaged or missing data never stops the restore: every other file is
// restored, damaged files are left out and listed in the report, and the
// returned error wraps repo.ErrDamaged. Other per-file problems are listed
// as errors. The report is returned even with an error, unless the restore
// could not start.
func (r *Restorer) Restore(ctx context.Context, snap *repo.Snapshot, subpath, target string) (*Report, error) {
	start := time.Now()
	if err := checkPatterns(r.opts.Include); err != nil {
		return nil, err
	}
	if err := checkPatterns(r.opts.Exclude); err != nil {
		return nil, err
	}
	if target == "" {
		return nil, errors.New("no target directory given")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var rid [4]byte
	_, _ = rand.Read(rid[:])
	rs := &run{r: r, ctx: ctx, cancel: cancel, runID: hex.EncodeToString(rid[:]), isRoot: os.Geteuid() == 0, uid: uint32(os.Geteuid()), gid: uint32(os.Getegid()),
		reasons: map[int32]string{}, report: &Report{Target: target, Snapshot: snap.ID.String()}}
	if r.opts.VerifyAfter {
		rs.hashes = map[repo.ID]repo.ID{}
	}
	sub := repo.CleanSnapshotPath(subpath)
	if sub != "/" {
		rs.report.Subpath = sub
	}

	// Walk the tree first: it is small compared with the data, and gives
	// the totals and the plan.
	if err := rs.walkRoot(snap, sub); err != nil {
		return nil, err
	}

	created := false
	fi, err := os.Lstat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(target, 0o700); err != nil {
			return nil, fmt.Errorf("create target: %w", err)
		}
		created = true
	case err != nil:
		return nil, fmt.Errorf("target: %w", err)
	case fi.Mode()&fs.ModeSymlink != 0:
		// The target itself is the user's choice: follow it, but it must
		// lead to a directory.
		if st, err := os.Stat(target); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("target %s: %w: a symbolic link that does not lead to a directory", target, ErrUnsafePath)
		}
	case !fi.IsDir():
		return nil, fmt.Errorf("target %s: %w: exists and is not a directory", target, ErrUnsafePath)
	}
	top, err := os.OpenRoot(target)
	if err != nil {
		return nil, fmt.Errorf("open target: %w", err)
	}
	rs.dirs[0].created = created
	if st, err := top.Stat("."); err == nil {
		rs.dirs[0].sgid = st.Mode()&fs.ModeSetgid != 0
	} else {
		rs.dirs[0].sgid = true
	}
	rs.dirs[0].existed = !created
	rs.cache = newDirCache(rs, top, r.opts.OpenDirs)
	defer rs.cache.close()

	var progressDone chan struct{}
	stopProgress := func() {}
	if r.opts.Progress != nil {
		progressDone = make(chan struct{})
		stop := make(chan struct{})
		go func() {
			defer close(progressDone)
			t := time.NewTicker(r.opts.ProgressInterval)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					r.opts.Progress(rs.progress(start))
				case <-stop:
					return
				}
			}
		}()
		stopProgress = func() {
			close(stop)
			<-progressDone
			r.opts.Progress(rs.progress(start))
		}
	}

	rs.makeDirs()
	rs.checkExisting()
	packs := rs.planPacks()
	rs.restoreEmpty()
	rs.runWorkers(packs)
	packs = nil
	rs.finishLinks()
	rs.restoreSpecials()
	rs.cleanup()
	if ctx.Err() == nil {
		rs.finishDirs()
	}
	stopProgress()
	if r.opts.VerifyAfter && ctx.Err() == nil {
		rs.verify()
	}

	rep := rs.report
	rep.Files = rs.filesDone.Load()
	rep.Dirs = rs.dirsDone.Load()
	rep.Symlinks = rs.symlinks.Load()
	rep.HardLinks = rs.hardlinks.Load()
	rep.Special = rs.special.Load()
	rep.Bytes = rs.bytesDone.Load()
	rep.TotalFiles, rep.TotalBytes = rs.totalFiles, rs.totalBytes
	rep.SkippedExisting = rs.skipped.Load()
	rep.Duration = time.Since(start).Seconds()
	sortReasons(rep.Damaged)
	sortReasons(rep.Errors)
	sortReasons(rep.VerifyFailed)

	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return rep, fmt.Errorf("restore interrupted: %w", context.Cause(ctx))
	}
	var errs []error
	if len(rep.Damaged) > 0 {
		errs = append(errs, fmt.Errorf("%w: %d file(s) not restored because their data is damaged or missing (first: %s); run 'einvault check'",
			repo.ErrDamaged, len(rep.Damaged), rep.Damaged[0].Path))
	}
	if len(rep.VerifyFailed) > 0 {
		errs = append(errs, fmt.Errorf("%w: %d file(s) (first: %s: %s)", ErrVerifyFailed, len(rep.VerifyFailed), rep.VerifyFailed[0].Path, rep.VerifyFailed[0].Reason))
	}
	if len(rep.Errors) > 0 {
		errs = append(errs, fmt.Errorf("%d error(s) while restoring (first: %s: %s)", len(rep.Errors), rep.Errors[0].Path, rep.Errors[0].Reason))
	}
	return rep, errors.Join(errs...)
}

func sortReasons(l []PathReason) {
	sort.Slice(l, func(i, j int) bool { return l[i].Path < l[j].Path })
}

// restoreEmpty finalises files without content.
func (rs *run) restoreEmpty() {
	w := &writer{rs: rs, curIdx: -1}
	for i, f := range rs.files {
		if f.linkTo < 0 && len(f.content) == 0 && f.flags.Load()&(fDamaged|fFailed|fDone) == 0 {
			rs.finalize(w, int32(i))
		}
	}
}

func (rs *run) runWorkers(packs []*packPlan) {
	// Biggest packs first, so the last one does not run alone.
	sort.Slice(packs, func(i, j int) bool { return len(packs[i].blobs) > len(packs[j].blobs) })
	jobs := make(chan *packPlan)
	var wg sync.WaitGroup
	n := min(rs.r.opts.Workers, max(1, len(packs)))
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &writer{rs: rs, curIdx: -1}
			defer w.closeCur()
			for pp := range jobs {
				if rs.ctx.Err() != nil {
					continue
				}
				rs.doPack(w, pp)
			}
		}()
	}
	for _, pp := range packs {
		jobs <- pp
	}
	close(jobs)
	wg.Wait()
}

// cleanup removes temporary files left by files that were not finished
// (damaged, failed or interrupted).
func (rs *run) cleanup() {
	for i, f := range rs.files {
		fl := f.flags.Load()
		if fl&fCreated != 0 && fl&fDone == 0 {
			rs.removeTemp(int32(i))
		}
		if fl&fDone == 0 && fl&fDamaged != 0 {
			rs.mu.Lock()
			reason := rs.reasons[int32(i)]
			rs.mu.Unlock()
			if reason != "" {
				rs.addDamaged(rs.filePath(int32(i)), reason)
			}
		}
	}
}

func (rs *run) removeTemp(fi int32) {
	f := rs.files[fi]
	root, err := rs.cache.get(f.dir)
	if err != nil {
		return
	}
	defer rs.cache.release(f.dir)
	if err := root.Remove(rs.tmpName(fi)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		rs.addError(rs.filePath(fi), fmt.Errorf("remove temporary file: %w", err))
	}
	f.flags.And(^fCreated)
}

func checkPatterns(ps []string) error {
	for _, p := range ps {
		if _, err := path.Match(strings.TrimSuffix(p, "/"), ""); err != nil {
			return fmt.Errorf("bad pattern %q: %w", p, err)
		}
	}
	return nil
}

// match reports whether pattern matches the snapshot path p ("/a/b").
func match(pattern, p string) bool {
	pattern = strings.TrimSuffix(pattern, "/")
	if pattern == "" {
		return false
	}
	if strings.HasPrefix(pattern, "/") {
		ok, _ := path.Match(pattern, p)
		return ok
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			if ok, _ := path.Match(pattern, p[i+1:]); ok {
				return true
			}
		}
	}
	return false
}

func matchAny(patterns []string, p string) bool {
	for _, pat := range patterns {
		if match(pat, p) {
			return true
		}
	}
	return false
}
