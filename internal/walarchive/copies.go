package walarchive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/replica"
	"github.com/einvault/einvault/internal/repo"
)

// Copies tells PushToCopies and FetchFromCopies how to reach the other
// copies of the repository and where to report the ones that failed.
type Copies struct {
	// Open opens a copy's storage from its location string (the command
	// line passes location.Open with its options).
	Open func(ctx context.Context, loc string) (backend.Backend, error)
	// Warnf reports, on one line each, a copy that missed a WAL file or
	// served one in place of the repository; nil discards them.
	Warnf func(format string, args ...any)
}

func (c Copies) warnf(format string, args ...any) {
	if c.Warnf != nil {
		c.Warnf(format, args...)
	}
}

// PushToCopies archives a WAL file into the repository and into every
// copy of its copy list. It succeeds when at least one place stored it
// (the others are reported loudly through Warnf: they miss the file and
// sync catches them up); when none could, it fails, so PostgreSQL keeps
// the segment and retries. A conflicting file (same name, other content)
// anywhere is an error. The content is sealed once for all places.
func PushToCopies(ctx context.Context, r *repo.Repository, name string, content []byte, c Copies) (PushResult, error) {
	return pushToCopies(ctx, r, name, source{data: content, size: int64(len(content))}, c)
}

// PushFileToCopies is PushToCopies of the WAL file open as f, of size
// bytes. The file is read while it is sealed, one block per compressor
// at a time, rather than into memory first: the segment stays in the
// page cache, and each block is compressed from the CPU's cache. It
// must not change while it is pushed (PostgreSQL never changes a
// segment while archive_command runs).
func PushFileToCopies(ctx context.Context, r *repo.Repository, name string, f io.ReaderAt, size int64, c Copies) (PushResult, error) {
	return pushToCopies(ctx, r, name, source{file: f, size: size}, c)
}

func pushToCopies(ctx context.Context, r *repo.Repository, name string, src source, c Copies) (PushResult, error) {
	st := NewStore(r)
	// The file is sealed once, in memory of its own (huge pages; see
	// arena) given back when the push is done.
	st.arena = newArena(sealArenaSize(int(src.size), runtime.GOMAXPROCS(0)))
	defer st.arena.release()
	res, sealed, primaryErr := st.pushTo(ctx, st.be, name, src, nil)
	if errors.Is(primaryErr, ErrConflict) {
		return res, primaryErr
	}
	list, _, err := r.LoadCopies(ctx)
	if err != nil {
		if primaryErr != nil {
			return res, primaryErr
		}
		c.warnf("warning: wal-push %s: cannot read the copy list: %v; the file went only to %s\n", name, err, r.Backend().Location())
		return res, nil
	}
	stored := primaryErr == nil
	primary := replica.NormalizeLocation(r.Backend().Location())
	var failures []string
	if primaryErr != nil {
		failures = append(failures, fmt.Sprintf("%s: %v", r.Backend().Location(), primaryErr))
	}
	for _, cp := range list.Sorted() {
		if replica.NormalizeLocation(cp.Location) == primary {
			continue
		}
		if c.Open == nil {
			failures = append(failures, fmt.Sprintf("copy %q: no way to open copies here", cp.Name))
			continue
		}
		be, err := c.Open(ctx, cp.Location)
		if err == nil {
			var cres PushResult
			var s []byte
			cres, s, err = st.pushTo(ctx, be, name, src, sealed)
			if s != nil {
				sealed = s
			}
			_ = be.Close()
			if errors.Is(err, ErrConflict) {
				return cres, fmt.Errorf("copy %q: %w", cp.Name, err)
			}
			if err == nil && !stored {
				res, stored = cres, true
			}
		}
		if err != nil {
			failures = append(failures, fmt.Sprintf("copy %q: %v", cp.Name, err))
		}
	}
	if !stored {
		return res, fmt.Errorf("no copy could store it (PostgreSQL keeps the segment and retries): %s", strings.Join(failures, "; "))
	}
	for _, f := range failures {
		c.warnf("WARNING: wal-push %s was NOT stored in %s; the other copies have it\n", name, f)
	}
	return res, nil
}

// FetchFromCopies reads a WAL file from the repository, or, when it is
// missing or unreadable there, from the copies in their read order. A
// file no place holds is an error matching ErrMissing (or the
// repository's own error when that was not "missing").
func FetchFromCopies(ctx context.Context, r *repo.Repository, name string, c Copies) ([]byte, error) {
	st := NewStore(r)
	data, firstErr := st.Fetch(ctx, name)
	if firstErr == nil || c.Open == nil || !ValidName(name) {
		return data, firstErr
	}
	list, _, err := r.LoadCopies(ctx)
	if err != nil {
		return nil, firstErr
	}
	primary := replica.NormalizeLocation(r.Backend().Location())
	for _, cp := range list.Sorted() {
		if replica.NormalizeLocation(cp.Location) == primary {
			continue
		}
		be, err := c.Open(ctx, cp.Location)
		if err != nil {
			continue
		}
		data, err := st.FetchFrom(ctx, be, name)
		_ = be.Close()
		if err == nil {
			if !errors.Is(firstErr, ErrMissing) {
				c.warnf("warning: wal-fetch %s: %v; served by copy %q\n", name, firstErr, cp.Name)
			}
			return data, nil
		}
	}
	return nil, firstErr
}
