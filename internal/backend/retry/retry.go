// Package retry owns a decorator that retries backend operations which
// fail with transient errors (backend.IsTransient), with exponential
// backoff and jitter, a bounded number of attempts, and respect for
// context cancellation.
//
// Permanent errors, errors matching backend.ErrNotExist and errors after
// the context is done are returned at once.
//
// What is retried, per method:
//   - Save: the whole upload. The source must be read again, so Save needs
//     a re-readable source: an io.Seeker is seeked back to where it was
//     when Save was called; any other reader of at most Options.MaxBuffer
//     bytes is read into memory first and saved from there; a larger
//     non-seekable source gets a single attempt (no retry), because holding
//     it in memory could exhaust RAM. Callers that want retries for large
//     streams pass an *os.File or a bytes.Reader.
//   - Load: opening the reader. Errors while reading from it are returned
//     to the caller unchanged.
//   - Stat: the call.
//   - List: only while fn has not been called yet; once entries have been
//     delivered a retry would deliver them twice, so the error is returned.
//   - Remove: the call. When a retry finds the file gone, the error still
//     matches backend.ErrNotExist, as the contract demands, and says that an
//     earlier attempt may have removed it (a lost response); callers that
//     only want the file gone treat ErrNotExist as success.
package retry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/einvault/einvault/internal/backend"
)

// Defaults for zero Options fields.
const (
	DefaultMaxAttempts = 5
	DefaultBaseDelay   = 500 * time.Millisecond
	DefaultMaxDelay    = 30 * time.Second
	DefaultMaxBuffer   = 64 << 20
)

// Options configures retries. The zero value gives the defaults.
type Options struct {
	// MaxAttempts is the number of attempts per operation, the first one
	// included; 0 means DefaultMaxAttempts, 1 disables retries.
	MaxAttempts int
	// BaseDelay is the nominal wait before the first retry; it doubles with
	// every further retry up to MaxDelay. The actual wait is drawn at random
	// from [d/2, d] so that many clients do not retry in lockstep.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// MaxBuffer is the largest non-seekable Save source that is buffered in
	// memory so it can be retried; 0 means DefaultMaxBuffer, a negative
	// value disables buffering.
	MaxBuffer int64
	// Sleep waits for d or until ctx is done, returning ctx's error then;
	// nil means a real timer. Tests inject a function that does not sleep.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnRetry, if set, is called before each wait, with the failed attempt's
	// number (1 for the first) and error; use it for logging or metrics.
	OnRetry func(op string, h backend.Handle, attempt int, delay time.Duration, err error)
}

// Backend retries the operations of a wrapped backend. It is safe for
// concurrent use when the wrapped backend is.
type Backend struct {
	be   backend.Backend
	opts Options
	// bufs holds emptied Save buffers for reuse: a pack is megabytes,
	// and a fresh buffer per Save costs as much CPU to clear as to fill.
	bufs sync.Pool
}

var _ backend.Backend = (*Backend)(nil)

// New wraps be. Zero fields of opts take the defaults.
func New(be backend.Backend, opts Options) *Backend {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = DefaultBaseDelay
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.MaxDelay < opts.BaseDelay {
		opts.MaxDelay = opts.BaseDelay
	}
	if opts.MaxBuffer == 0 {
		opts.MaxBuffer = DefaultMaxBuffer
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	return &Backend{be: be, opts: opts}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Unwrap returns the wrapped backend, for reaching optional methods such as
// FreeSpace.
func (b *Backend) Unwrap() backend.Backend { return b.be }

// Delay returns the nominal wait after the given failed attempt (1 for the
// first) before jitter: BaseDelay doubled per attempt, capped at MaxDelay.
func (b *Backend) Delay(attempt int) time.Duration {
	d := b.opts.BaseDelay
	for i := 1; i < attempt && d < b.opts.MaxDelay; i++ {
		d *= 2
	}
	return min(d, b.opts.MaxDelay)
}

func jitter(d time.Duration) time.Duration {
	half := d / 2
	return half + rand.N(d-half+1)
}

// retryable reports whether err is worth another attempt.
func retryable(ctx context.Context, err error) bool {
	return backend.IsTransient(err) && !errors.Is(err, backend.ErrNotExist) && ctx.Err() == nil
}

// do runs fn until it succeeds, fails for good, or attempts run out.
// again, if set, is asked before each retry whether one is still possible.
func (b *Backend) do(ctx context.Context, op string, h backend.Handle, again func() bool, fn func(attempt int) error) error {
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s %v: %w", op, h, err)
		}
		err := fn(attempt)
		if err == nil || !retryable(ctx, err) || (again != nil && !again()) {
			return err
		}
		if attempt >= b.opts.MaxAttempts {
			return fmt.Errorf("%s %v: giving up after %d attempts: %w", op, h, attempt, err)
		}
		d := jitter(b.Delay(attempt))
		if b.opts.OnRetry != nil {
			b.opts.OnRetry(op, h, attempt, d, err)
		}
		if serr := b.opts.Sleep(ctx, d); serr != nil {
			return fmt.Errorf("%s %v: %w while waiting to retry (attempt %d failed: %v)", op, h, serr, attempt, err)
		}
	}
}

// Location returns the wrapped backend's location.
func (b *Backend) Location() string { return b.be.Location() }

// Save saves through the wrapped backend, retrying with a re-read source
// as described in the package comment.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd io.Reader, size int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	var rewind func() error
	if s, ok := rd.(io.Seeker); ok {
		if start, err := s.Seek(0, io.SeekCurrent); err == nil {
			rewind = func() error {
				_, err := s.Seek(start, io.SeekStart)
				return err
			}
		}
	}
	if rewind == nil && b.opts.MaxAttempts > 1 && size >= 0 && size <= b.opts.MaxBuffer {
		// Read one byte more than announced so that the wrapped backend
		// still sees, and reports, a source longer than size.
		buf, err := b.readSource(rd, size)
		if err != nil {
			return fmt.Errorf("save %v: read source: %w", h, err)
		}
		defer b.bufs.Put(&buf)
		br := bytes.NewReader(buf)
		rd = br
		rewind = func() error {
			_, err := br.Seek(0, io.SeekStart)
			return err
		}
	}
	var again func() bool
	if rewind == nil {
		again = func() bool { return false }
	}
	return b.do(ctx, "save", h, again, func(attempt int) error {
		if attempt > 1 {
			if err := rewind(); err != nil {
				return fmt.Errorf("save %v: rewind source for retry: %w", h, err)
			}
		}
		return b.be.Save(ctx, h, rd, size)
	})
}

// readSource reads up to size+1 bytes of rd (one more than announced so
// that the wrapped backend still sees, and reports, a longer source) into
// a buffer of the pool, grown to size+1 when it is smaller.
func (b *Backend) readSource(rd io.Reader, size int64) ([]byte, error) {
	var buf []byte
	if p, ok := b.bufs.Get().(*[]byte); ok {
		buf = *p
	}
	if int64(cap(buf)) < size+1 {
		buf = make([]byte, size+1)
	}
	buf = buf[:size+1]
	n, err := io.ReadFull(rd, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return buf[:n], err
}

// Load opens a reader through the wrapped backend, retrying the opening.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := b.do(ctx, "load", h, nil, func(int) error {
		var err error
		rc, err = b.be.Load(ctx, h, offset, length)
		return err
	})
	if err != nil {
		return nil, err
	}
	return rc, nil
}

// Stat stats through the wrapped backend.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	var fi backend.FileInfo
	err := b.do(ctx, "stat", h, nil, func(int) error {
		var err error
		fi, err = b.be.Stat(ctx, h)
		return err
	})
	return fi, err
}

// List lists through the wrapped backend, retrying only while no entry has
// been delivered to fn. Errors of fn are returned as they are.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	delivered := false
	var fnErr error
	err := b.do(ctx, "list", backend.Handle{Type: t}, func() bool { return !delivered }, func(int) error {
		return b.be.List(ctx, t, func(fi backend.FileInfo) error {
			delivered = true
			fnErr = fn(fi)
			return fnErr
		})
	})
	if fnErr != nil && errors.Is(err, fnErr) {
		return fnErr
	}
	return err
}

// Remove removes through the wrapped backend.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	return b.do(ctx, "remove", h, nil, func(attempt int) error {
		err := b.be.Remove(ctx, h)
		if attempt > 1 && errors.Is(err, backend.ErrNotExist) {
			return fmt.Errorf("%w (an earlier attempt that failed with a transient error may have removed it)", err)
		}
		return err
	})
}

// Close closes the wrapped backend.
func (b *Backend) Close() error { return b.be.Close() }
