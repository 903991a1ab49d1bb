// Package limit owns the decorators that bound how much of a machine and
// its network a backend may use: the number of concurrent operations and
// the upload and download bandwidth (token buckets, streaming, context
// aware). They wrap any backend.Backend.
//
// A connection slot is held for the whole operation: a Save until the
// upload ends, a Load until its reader is closed, a List until it
// returns. Bandwidth is charged as bytes pass: uploads as the backend
// reads the source, downloads as the caller reads the result.
package limit

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/einvault/einvault/internal/backend"
)

// Options are the limits; zero fields mean "unlimited".
type Options struct {
	Connections int   // concurrent operations
	UploadBPS   int64 // bytes per second written to the backend
	DownloadBPS int64 // bytes per second read from it
	// Clock provides time and waits; nil means the real clock.
	Clock Clock
}

// Any reports whether o limits anything.
func (o Options) Any() bool {
	return o.Connections > 0 || o.UploadBPS > 0 || o.DownloadBPS > 0
}

// Clock is the time source of the token buckets.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done (returning its error).
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Bucket is a token bucket holding up to one second of its rate. Wait
// reserves tokens and sleeps until they are earned, so callers sharing a
// bucket share its rate fairly in the order they asked.
type Bucket struct {
	clock Clock
	rate  float64 // tokens per second
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// NewBucket returns a bucket of rate bytes per second (which must be
// positive), starting full. A nil clock means the real one.
func NewBucket(rate int64, clock Clock) *Bucket {
	if clock == nil {
		clock = realClock{}
	}
	return &Bucket{clock: clock, rate: float64(rate), burst: float64(rate), tokens: float64(rate), last: clock.Now()}
}

// Chunk is the most a reader takes from a bucket at once, so that a
// transfer is spread over time instead of paid for in one big wait.
func (b *Bucket) Chunk() int {
	return int(min(max(b.burst/8, 1), 64<<10))
}

// Wait takes n tokens, waiting until they are there or ctx is done. On
// cancellation the tokens are given back.
func (b *Bucket) Wait(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	b.mu.Lock()
	now := b.clock.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens -= float64(n)
	deficit := -b.tokens
	b.mu.Unlock()
	if deficit <= 0 {
		return nil
	}
	d := time.Duration(deficit / b.rate * float64(time.Second))
	if err := b.clock.Sleep(ctx, d); err != nil {
		b.mu.Lock()
		b.tokens += float64(n)
		b.mu.Unlock()
		return err
	}
	return nil
}

// Reader limits reads from r to the bucket's rate.
type Reader struct {
	ctx context.Context
	r   io.Reader
	b   *Bucket
}

// NewReader returns a reader that takes tokens from b for every byte
// read from r, failing when ctx is done.
func NewReader(ctx context.Context, r io.Reader, b *Bucket) *Reader {
	return &Reader{ctx: ctx, r: r, b: b}
}

func (l *Reader) Read(p []byte) (int, error) {
	if err := l.ctx.Err(); err != nil {
		return 0, err
	}
	if c := l.b.Chunk(); len(p) > c {
		p = p[:c]
	}
	n, err := l.r.Read(p)
	if werr := l.b.Wait(l.ctx, n); werr != nil {
		return n, werr
	}
	return n, err
}

// Backend applies the limits to a wrapped backend. It is safe for
// concurrent use when the wrapped backend is.
type Backend struct {
	be       backend.Backend
	slots    chan struct{} // nil: no connection limit
	up, down *Bucket       // nil: unlimited
}

var _ backend.Backend = (*Backend)(nil)

// New wraps be with the limits of o.
func New(be backend.Backend, o Options) *Backend {
	b := &Backend{be: be}
	if o.Connections > 0 {
		b.slots = make(chan struct{}, o.Connections)
	}
	if o.UploadBPS > 0 {
		b.up = NewBucket(o.UploadBPS, o.Clock)
	}
	if o.DownloadBPS > 0 {
		b.down = NewBucket(o.DownloadBPS, o.Clock)
	}
	return b
}

// Unwrap returns the wrapped backend, for reaching optional methods such
// as FreeSpace.
func (b *Backend) Unwrap() backend.Backend { return b.be }

func (b *Backend) acquire(ctx context.Context, op string, h fmt.Stringer) error {
	if b.slots == nil {
		return nil
	}
	select {
	case b.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %v: waiting for a free connection: %w", op, h, ctx.Err())
	}
}

func (b *Backend) release() {
	if b.slots != nil {
		<-b.slots
	}
}

// Location is that of the wrapped backend.
func (b *Backend) Location() string { return b.be.Location() }

// Save uploads at most at the upload rate, in a connection slot.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd io.Reader, size int64) error {
	if err := b.acquire(ctx, "save", h); err != nil {
		return err
	}
	defer b.release()
	if b.up != nil {
		rd = NewReader(ctx, rd, b.up)
	}
	return b.be.Save(ctx, h, rd, size)
}

// Load holds a connection slot until the returned reader is closed and
// delivers at most at the download rate.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64) (io.ReadCloser, error) {
	if err := b.acquire(ctx, "load", h); err != nil {
		return nil, err
	}
	rc, err := b.be.Load(ctx, h, offset, length)
	if err != nil {
		b.release()
		return nil, err
	}
	lr := &loadReader{rc: rc, r: rc, release: b.release}
	if b.down != nil {
		lr.r = NewReader(ctx, rc, b.down)
	}
	return lr, nil
}

type loadReader struct {
	rc      io.ReadCloser
	r       io.Reader
	release func()
	once    sync.Once
}

func (l *loadReader) Read(p []byte) (int, error) { return l.r.Read(p) }

func (l *loadReader) Close() error {
	err := l.rc.Close()
	l.once.Do(l.release)
	return err
}

// Stat runs in a connection slot.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := b.acquire(ctx, "stat", h); err != nil {
		return backend.FileInfo{}, err
	}
	defer b.release()
	return b.be.Stat(ctx, h)
}

// List runs in a connection slot, which it gives up while fn runs so
// that fn may call into the same backend.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	what := backend.Handle{Type: t, Name: "*"}
	if err := b.acquire(ctx, "list", what); err != nil {
		return err
	}
	held := true
	defer func() {
		if held {
			b.release()
		}
	}()
	return b.be.List(ctx, t, func(fi backend.FileInfo) error {
		b.release()
		held = false
		err := fn(fi)
		if aerr := b.acquire(ctx, "list", what); aerr != nil {
			return aerr
		}
		held = true
		return err
	})
}

// Remove runs in a connection slot.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := b.acquire(ctx, "remove", h); err != nil {
		return err
	}
	defer b.release()
	return b.be.Remove(ctx, h)
}

// Close closes the wrapped backend.
func (b *Backend) Close() error { return b.be.Close() }
