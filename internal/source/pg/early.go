package pg

import (
	"io"
	"sync"
)

// earlyReader reads src ahead into memory, up to max bytes, until its
// first Read; from then on it serves what it gathered and then src
// itself (no extra copy, no goroutine, for the rest of the stream). It
// lets a dump run while the repository it goes to is still being
// opened.
type earlyReader struct {
	src  io.Reader
	stop chan struct{}
	done chan struct{} // closed when the read-ahead goroutine has ended
	once sync.Once

	// Owned by the goroutine until done, then by Read.
	bufs [][]byte
	err  error
}

func newEarlyReader(src io.Reader, max int) *earlyReader {
	e := &earlyReader{src: src, stop: make(chan struct{}), done: make(chan struct{})}
	go e.readAhead(max)
	return e
}

func (e *earlyReader) readAhead(max int) {
	defer close(e.done)
	const piece = 1 << 20
	total := 0
	for total < max {
		select {
		case <-e.stop:
			return
		default:
		}
		b := make([]byte, piece)
		n, err := io.ReadAtLeast(e.src, b, 1)
		if n > 0 {
			e.bufs = append(e.bufs, b[:n])
			total += n
		}
		if err != nil {
			if err != io.ErrUnexpectedEOF {
				e.err = err
			}
			return
		}
	}
}

func (e *earlyReader) Read(p []byte) (int, error) {
	e.once.Do(func() { close(e.stop) })
	<-e.done
	for len(e.bufs) > 0 {
		if len(e.bufs[0]) == 0 {
			e.bufs[0] = nil
			e.bufs = e.bufs[1:]
			continue
		}
		n := copy(p, e.bufs[0])
		e.bufs[0] = e.bufs[0][n:]
		return n, nil
	}
	if e.err != nil {
		return 0, e.err
	}
	return e.src.Read(p)
}

// Close stops the read-ahead without waiting for it: the caller has
// killed the writer, so the pending read ends.
func (e *earlyReader) Close() {
	e.once.Do(func() { close(e.stop) })
}
