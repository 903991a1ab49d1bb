package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/einvault/einvault/internal/backend"
)

// SyncOrder returns the file types in the order a sync copies them: key
// files, then config (a copy without config is no repository, so it
// becomes one only once its keys are there), then every other type of
// backend.AllFileTypes in its order (data before what refers to it).
// Locks belong to the processes of one copy and are never copied.
func SyncOrder() []backend.FileType {
	out := []backend.FileType{backend.KeyFile, backend.ConfigFile}
	for _, t := range backend.AllFileTypes {
		if t != backend.KeyFile && t != backend.ConfigFile && t != backend.LockFile {
			out = append(out, t)
		}
	}
	return out
}

// neverDeleted are types a sync never removes from a copy: the config,
// compression dictionaries (blobs of any age may use them), locks and
// archived WAL (wal-push writes a segment to the copies that are up when
// the repository is not, so the authority may lack a segment only a copy
// holds; WAL leaves a copy only by the retention rule, prune).
func neverDeleted(t backend.FileType) bool {
	return t == backend.ConfigFile || t == backend.DictFile || t == backend.LockFile || t == backend.WALFile
}

// walNameRE matches the names of archived WAL files (package pg's
// ValidWALName; repeated here, the replica layer knows no sources).
var walNameRE = regexp.MustCompile(`^([0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$`)

// synced reports whether a file of type t called name is one a sync
// carries: content-addressed files, the config, and archived WAL, which
// is named by segment (verified by its size on arrival; it is sealed, so
// wal-fetch authenticates it).
func synced(t backend.FileType, name string) bool {
	switch t {
	case backend.ConfigFile:
		return true
	case backend.WALFile:
		return walNameRE.MatchString(name)
	}
	return IsID(name)
}

// SyncOptions tune SyncTo.
type SyncOptions struct {
	// Workers is the number of parallel transfers (default 4).
	Workers int
	// Mirror makes the destination equal to the first source: files the
	// first source lacks are removed from the destination, after every
	// addition, in the reverse of SyncOrder. Without Mirror the sync only
	// adds (the destination gets the union of all sources). The caller
	// sets Mirror only when the first source holds every write made to
	// any copy (no copy is marked Behind) and the destination is not
	// immutable.
	Mirror bool
	// Union makes the destination hold every file any source holds
	// (catching up a copy that missed writes, repair). Without it the
	// first source decides what the destination should hold and the
	// others only stand in for damaged or missing versions. Key files are
	// never taken from other sources than the first: a copy whose
	// password was changed must not spread its keys.
	Union bool
	// VerifyExisting re-reads every file the destination already holds and
	// replaces those that do not hash to their name (repair).
	VerifyExisting bool
	// CheckKeys is called when the destination's key files differ from the
	// first source's; it must return nil only when the repository's
	// password opens the destination's key files.
	CheckKeys func(ctx context.Context, dst Member) error
	// Progress is called after every file.
	Progress func(Progress)
	Logger   *slog.Logger
}

// Progress reports a running sync.
type Progress struct {
	Copy       string           `json:"copy"`
	Phase      backend.FileType `json:"phase"`
	FilesDone  int64            `json:"files_done"`
	FilesTotal int64            `json:"files_total"`
	BytesDone  int64            `json:"bytes_done"`
	BytesTotal int64            `json:"bytes_total"`
}

// Problem is one file a sync could not handle as it should.
type Problem struct {
	File   string `json:"file"`
	Source string `json:"source,omitempty"`
	Reason string `json:"reason"`
}

// Result summarises a sync to one copy.
type Result struct {
	Copy        string    `json:"copy"`
	Copied      int       `json:"files_copied"`
	CopiedBytes int64     `json:"bytes_copied"`
	Replaced    int       `json:"files_replaced"` // damaged files rewritten
	Deleted     int       `json:"files_deleted"`
	Verified    int       `json:"files_verified"` // with VerifyExisting
	Rejected    []Problem `json:"rejected,omitempty"`
	Unavailable []Problem `json:"unavailable,omitempty"` // no source held a valid version
	Complete    bool      `json:"complete"`
}

// ErrIncompatible is matched when the destination holds another
// repository or its key files do not open with the password.
var ErrIncompatible = errors.New("copy refused")

type listing map[backend.FileType]map[string]int64

func listAll(ctx context.Context, be backend.Backend, types []backend.FileType) (listing, error) {
	l := listing{}
	for _, t := range types {
		m := map[string]int64{}
		err := be.List(ctx, t, func(fi backend.FileInfo) error {
			if synced(t, fi.Name) {
				m[fi.Name] = fi.Size
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", t, err)
		}
		if t == backend.ConfigFile && len(m) == 0 {
			// Backends list config as one file; accept a Stat too.
			if fi, err := be.Stat(ctx, backend.Handle{Type: backend.ConfigFile, Name: "config"}); err == nil {
				m["config"] = fi.Size
			}
		}
		l[t] = m
	}
	return l, nil
}

type srcListing struct {
	m Member
	l listing
}

// SyncTo brings dst up to date from sources (in order of preference; the
// first is the authority for Mirror). Every file is verified on arrival:
// a source version whose bytes do not hash to the name is rejected and
// the next source tried. Each type is complete and durable before the
// next begins, so an interrupted sync leaves the destination consistent
// (at worst with files nothing refers to yet), and running it again
// continues where it stopped. A source that cannot be listed is skipped;
// the first must be listable.
func SyncTo(ctx context.Context, sources []Member, dst Member, opts SyncOptions) (*Result, error) {
	if len(sources) == 0 {
		return nil, errors.New("sync: no source")
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	res := &Result{Copy: dst.Name}
	types := SyncOrder()
	start := time.Now()
	var srcs []srcListing
	for i, s := range sources {
		if i > 0 && !opts.Union {
			// Only stands in for damaged versions: tried without a listing.
			srcs = append(srcs, srcListing{s, nil})
			continue
		}
		l, err := listAll(ctx, s.Backend, types)
		if err != nil {
			if i == 0 {
				return res, fmt.Errorf("copy %q: %w", s.Name, err)
			}
			opts.Logger.Warn("sync: skipping an unreadable source", "copy", s.Name, "err", err)
			continue
		}
		srcs = append(srcs, srcListing{s, l})
	}
	dl, err := listAll(ctx, dst.Backend, types)
	if err != nil {
		return res, fmt.Errorf("copy %q: %w", dst.Name, err)
	}
	if err := compatible(ctx, srcs[0], dst, dl, opts); err != nil {
		return res, err
	}
	opts.Logger.Debug("sync: listed", "copy", dst.Name, "took", time.Since(start))

	// Plan: per type, the files to copy.
	type job struct {
		h       backend.Handle
		size    int64
		replace bool
	}
	plan := map[backend.FileType][]job{}
	var totalFiles, totalBytes int64
	for _, t := range types {
		want := map[string]int64{}
		for k, s := range srcs {
			if k > 0 && (!opts.Union || t == backend.KeyFile) {
				break
			}
			for n, sz := range s.l[t] {
				if _, ok := want[n]; !ok {
					want[n] = sz
				}
			}
		}
		if t == backend.ConfigFile {
			if _, ok := dl[t]["config"]; ok {
				continue // checked equal by compatible
			}
		}
		names := make([]string, 0, len(want))
		for n := range want {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			sz := want[n]
			have, ok := dl[t][n]
			switch {
			case !ok:
				plan[t] = append(plan[t], job{h: backend.Handle{Type: t, Name: n}, size: sz})
			case have != sz || opts.VerifyExisting:
				// A size that differs from the source's, or (repair) any
				// file, is verified and replaced when damaged.
				plan[t] = append(plan[t], job{h: backend.Handle{Type: t, Name: n}, size: sz, replace: true})
			default:
				continue
			}
			totalFiles++
			totalBytes += sz
		}
	}

	if sr, ok := find[backend.SpaceReporter](dst.Backend); ok && totalBytes > 0 {
		if free, err := sr.FreeSpace(ctx); err == nil {
			if need := totalBytes + 16<<20 + totalBytes/20; free < need {
				return res, fmt.Errorf("copy %q (%s): %w: %s free, %s to copy plus margin: free space there or move the copy, then run 'einvault sync'",
					dst.Name, dst.Location, ErrNoSpace, FormatBytes(free), FormatBytes(need))
			}
		}
	}
	var filesDone, bytesDone atomic.Int64
	var mu sync.Mutex
	report := func(t backend.FileType) {
		if opts.Progress != nil {
			opts.Progress(Progress{Copy: dst.Name, Phase: t, FilesDone: filesDone.Load(), FilesTotal: totalFiles, BytesDone: bytesDone.Load(), BytesTotal: totalBytes})
		}
	}
	for _, t := range types {
		jobs := plan[t]
		if len(jobs) == 0 {
			continue
		}
		tctx, cancel := context.WithCancel(ctx)
		work := make(chan job)
		var wg sync.WaitGroup
		var firstErr error
		for w := 0; w < opts.Workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range work {
					var done bool
					var err error
					if j.replace {
						done, err = repairOne(tctx, srcs, dst, j.h, j.size, res, &mu)
					} else {
						done, err = copyOne(tctx, srcs, dst, j.h, j.size, res, &mu)
					}
					if err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						cancel()
						continue
					}
					filesDone.Add(1)
					bytesDone.Add(j.size)
					if done {
						mu.Lock()
						if j.replace {
							res.Replaced++
						} else {
							res.Copied++
						}
						res.CopiedBytes += j.size
						mu.Unlock()
					}
					report(t)
				}
			}()
		}
	feed:
		for _, j := range jobs {
			select {
			case work <- j:
			case <-tctx.Done():
				break feed
			}
		}
		close(work)
		wg.Wait()
		cancel()
		if firstErr != nil {
			return res, fmt.Errorf("copy %q: %w", dst.Name, firstErr)
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		opts.Logger.Debug("sync: type copied", "copy", dst.Name, "type", t, "files", len(jobs), "took", time.Since(start))
		// A type is only complete when all of it arrived: never write
		// what refers to data (index, snapshots) past a gap.
		if len(res.Unavailable) > 0 && t == backend.PackFile {
			return res, fmt.Errorf("copy %q: %d file(s) have no valid version in any source (first: %s: %s); nothing that refers to data was copied: run 'einvault repair' or 'einvault check --all-copies'",
				dst.Name, len(res.Unavailable), res.Unavailable[0].File, res.Unavailable[0].Reason)
		}
	}
	if opts.Mirror {
		if err := mirrorDeletes(ctx, srcs[0], dst, dl, res); err != nil {
			return res, err
		}
	}
	res.Complete = len(res.Unavailable) == 0
	return res, nil
}

// compatible refuses a destination that holds another repository (config
// differs) or whose key files the password does not open.
func compatible(ctx context.Context, src srcListing, dst Member, dl listing, opts SyncOptions) error {
	if _, ok := dl[backend.ConfigFile]["config"]; !ok {
		if len(dl[backend.KeyFile]) > 0 && opts.CheckKeys != nil {
			return checkKeys(ctx, dst, opts)
		}
		return nil // a new copy
	}
	a, err := backend.LoadAll(ctx, src.m.Backend, backend.Handle{Type: backend.ConfigFile, Name: "config"})
	if err != nil {
		return fmt.Errorf("copy %q: read config: %w", src.m.Name, err)
	}
	b, err := backend.LoadAll(ctx, dst.Backend, backend.Handle{Type: backend.ConfigFile, Name: "config"})
	if err != nil {
		return fmt.Errorf("copy %q: read config: %w", dst.Name, err)
	}
	if string(a) != string(b) {
		return fmt.Errorf("%w: copy %q holds a different repository (its config differs from copy %q's); remove it with 'einvault copies remove %s' or point it at an empty location", ErrIncompatible, dst.Name, src.m.Name, dst.Name)
	}
	if opts.CheckKeys == nil {
		return nil
	}
	sk, dk := src.l[backend.KeyFile], dl[backend.KeyFile]
	same := len(sk) == len(dk)
	for n := range sk {
		if _, ok := dk[n]; !ok {
			same = false
		}
	}
	if same {
		return nil
	}
	return checkKeys(ctx, dst, opts)
}

func checkKeys(ctx context.Context, dst Member, opts SyncOptions) error {
	if err := opts.CheckKeys(ctx, dst); err != nil {
		return fmt.Errorf("%w: copy %q: its key files differ and the password does not open them (was the password changed only there? change it back there, or 'einvault copies remove %s'): %s", ErrIncompatible, dst.Name, dst.Name, oneLine(err))
	}
	return nil
}

// copyOne copies h to dst from the first source that holds a version
// that hashes to its name. It returns false when no source did (the file
// is listed in res.Unavailable) and an error when the destination fails.
func copyOne(ctx context.Context, srcs []srcListing, dst Member, h backend.Handle, size int64, res *Result, mu *sync.Mutex) (bool, error) {
	var reasons []string
	for _, s := range srcs {
		sz, ok := s.l[h.Type][h.Name]
		if s.l == nil {
			sz, ok = size, true
		}
		if !ok {
			continue
		}
		rd, err := s.m.Backend.Load(ctx, h, 0, 0)
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			if s.l == nil && errors.Is(err, backend.ErrNotExist) {
				continue
			}
			reasons = append(reasons, fmt.Sprintf("copy %q: %s", s.m.Name, oneLine(err)))
			continue
		}
		vr := newVerifyingReader(rd, h.Name, sz)
		err = dst.Backend.Save(ctx, h, vr.reader(), sz)
		_ = rd.Close()
		if err == nil {
			return true, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if vr.err != nil {
			// The source's bytes were bad (or its read failed): nothing
			// was stored; try the next source.
			mu.Lock()
			res.Rejected = append(res.Rejected, Problem{File: h.String(), Source: s.m.Name, Reason: oneLine(err)})
			mu.Unlock()
			reasons = append(reasons, fmt.Sprintf("copy %q: %s", s.m.Name, oneLine(err)))
			continue
		}
		return false, fmt.Errorf("save %v: %w", h, err)
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no source lists it any more")
		if h.Type != backend.PackFile {
			// Removed from the source meanwhile (superseded index, a
			// forgotten snapshot): nothing to do.
			return false, nil
		}
	}
	mu.Lock()
	res.Unavailable = append(res.Unavailable, Problem{File: h.String(), Reason: fmt.Sprint(reasons)})
	mu.Unlock()
	return false, nil
}

// repairOne verifies dst's version of h and replaces it when damaged.
func repairOne(ctx context.Context, srcs []srcListing, dst Member, h backend.Handle, size int64, res *Result, mu *sync.Mutex) (bool, error) {
	data, err := backend.LoadAll(ctx, dst.Backend, h)
	// Files not named by hash (WAL) are checked by size against the source.
	if err == nil && hashOK(h.Name, data) && (IsID(h.Name) || int64(len(data)) == size) {
		if h.Type == backend.ConfigFile {
			return false, nil
		}
		mu.Lock()
		res.Verified++
		mu.Unlock()
		return false, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	return copyOne(ctx, srcs, dst, h, size, res, mu)
}

// mirrorDeletes removes from dst what the authority lacks, in the reverse
// of SyncOrder (snapshots before the index before packs), so the copy
// never refers to data it no longer holds.
func mirrorDeletes(ctx context.Context, auth srcListing, dst Member, dl listing, res *Result) error {
	types := slices.Clone(SyncOrder())
	slices.Reverse(types)
	for _, t := range types {
		if neverDeleted(t) {
			continue
		}
		if t == backend.KeyFile && len(auth.l[t]) == 0 {
			continue // never leave a copy without keys
		}
		var names []string
		for n := range dl[t] {
			if _, ok := auth.l[t][n]; !ok {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			err := dst.Backend.Remove(ctx, backend.Handle{Type: t, Name: n})
			if err != nil && !errors.Is(err, backend.ErrNotExist) {
				return fmt.Errorf("copy %q: remove %s/%s: %w", dst.Name, t, n, err)
			}
			res.Deleted++
		}
	}
	return nil
}

// CopyFile copies one file from src to dst, verifying it on arrival.
func CopyFile(ctx context.Context, src, dst Member, h backend.Handle) error {
	fi, err := src.Backend.Stat(ctx, h)
	if err != nil {
		return err
	}
	rd, err := src.Backend.Load(ctx, h, 0, 0)
	if err != nil {
		return err
	}
	defer rd.Close()
	return dst.Backend.Save(ctx, h, newVerifyingReader(rd, h.Name, fi.Size).reader(), fi.Size)
}
