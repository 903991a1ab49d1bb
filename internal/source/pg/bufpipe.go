package pg

import (
	"context"
	"io"
	"sync"
)

// bufPipe is an in-memory pipe that lets the writer run up to a few
// writes ahead of the reader (io.Pipe hands each write over only when
// the reader took all of it, which serialises the two). Base backup
// extraction uses it so that loading, decrypting and decompressing the
// next chunk overlaps with writing the previous one to disk.
type bufPipe struct {
	ch      chan []byte
	free    chan []byte // buffers the reader has emptied, for reuse
	cur     []byte
	full    []byte        // the buffer cur is the rest of
	done    chan struct{} // closed when the reader gives up
	once    sync.Once
	mu      sync.Mutex
	werr    error // the writer's close error, read once ch is drained
	closeMu sync.Once
}

func newBufPipe(depth int) *bufPipe {
	return &bufPipe{ch: make(chan []byte, depth), free: make(chan []byte, depth+1), done: make(chan struct{})}
}

// Write copies p (the caller may reuse it) and queues it.
func (b *bufPipe) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var c []byte
	select {
	case c = <-b.free:
	default:
	}
	if cap(c) < len(p) {
		c = make([]byte, len(p))
	}
	c = c[:len(p)]
	copy(c, p)
	select {
	case b.ch <- c:
		return len(p), nil
	case <-b.done:
		return 0, io.ErrClosedPipe
	}
}

// CloseWithError ends the stream; the reader sees err (io.EOF when nil)
// after the queued data.
func (b *bufPipe) CloseWithError(err error) {
	b.closeMu.Do(func() {
		b.mu.Lock()
		b.werr = err
		b.mu.Unlock()
		close(b.ch)
	})
}

func (b *bufPipe) Read(p []byte) (int, error) {
	for len(b.cur) == 0 {
		if b.full != nil {
			select {
			case b.free <- b.full[:0]:
			default:
			}
			b.full = nil
		}
		c, ok := <-b.ch
		if !ok {
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.werr != nil {
				return 0, b.werr
			}
			return 0, io.EOF
		}
		b.cur, b.full = c, c
	}
	n := copy(p, b.cur)
	b.cur = b.cur[n:]
	return n, nil
}

// Close is the reader giving up: pending and later writes fail.
func (b *bufPipe) Close() error {
	b.once.Do(func() { close(b.done) })
	return nil
}

// producePiped runs produce into a bufPipe and returns its read end.
func producePiped(ctx context.Context, depth int, produce func(context.Context, io.Writer) error) *bufPipe {
	bp := newBufPipe(depth)
	go func() { bp.CloseWithError(produce(ctx, bp)) }()
	return bp
}
