package replica

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/einvault/einvault/internal/backend"
)

// Streamer sends the packs a backup writes to the primary on to the
// copies while the backup is still running, so that the sync afterwards
// only has the index, the snapshot and what refers to them left to copy.
// Only packs are streamed: a copy never gets a file that refers to data
// before the data (the sync, which runs after Finish, writes the rest in
// SyncOrder). Every pack is read back from the primary after it is
// durable there and verified on arrival (BLAKE3 of the bytes being sent,
// computed while they stream), exactly as the sync does. A failure is no
// error of the backup: that copy gets nothing more streamed, and the sync
// afterwards copies what is missing (and reports the copy if it still
// fails).
//
// Use the backend Backend returns in place of the primary's while the
// backup runs, then call Finish before syncing.
type Streamer struct {
	self    Member
	dsts    []*streamDst
	ctx     context.Context
	cancel  context.CancelFunc
	log     *slog.Logger
	wg      sync.WaitGroup
	mu      sync.Mutex
	stopped bool
}

type streamDst struct {
	m   Member
	sem chan struct{}

	mu     sync.Mutex
	failed error // first failure; nothing more is sent once set
	stats  StreamStats
}

// StreamStats counts what was streamed to one copy.
type StreamStats struct {
	Copy   string `json:"copy"`
	Files  int    `json:"files"`
	Bytes  int64  `json:"bytes"`
	Failed string `json:"failed,omitempty"`
}

// NewStreamer streams what is written through Backend to dsts, with at
// most workers transfers in flight per copy (default 2). self's backend
// must be able to read back what it stored (it is the primary).
func NewStreamer(ctx context.Context, self Member, dsts []Member, workers int, log *slog.Logger) *Streamer {
	if workers <= 0 {
		workers = 2
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Streamer{self: self, ctx: ctx, cancel: cancel, log: log}
	for _, m := range dsts {
		s.dsts = append(s.dsts, &streamDst{m: m, sem: make(chan struct{}, workers)})
	}
	return s
}

// Backend returns the primary's backend with streaming: a decorator that
// also forwards backend.TempFiler when the primary implements it (so a
// local primary keeps committing packs with a rename).
func (s *Streamer) Backend() backend.Backend {
	sb := &streamBackend{Backend: s.self.Backend, s: s}
	if tf, ok := s.self.Backend.(backend.TempFiler); ok {
		return &streamTempFiler{streamBackend: sb, tf: tf}
	}
	return sb
}

// Finish stops streaming, waits for the transfers under way and returns
// what each copy received.
func (s *Streamer) Finish() []StreamStats {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.wg.Wait()
	s.cancel()
	out := make([]StreamStats, 0, len(s.dsts))
	for _, d := range s.dsts {
		d.mu.Lock()
		st := d.stats
		st.Copy = d.m.Name
		if d.failed != nil {
			st.Failed = oneLine(d.failed)
		}
		d.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// Abort stops streaming at once: transfers under way are cancelled (a
// copy keeps no partial file: backends store atomically) and waited for.
func (s *Streamer) Abort() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// sent queues h (stored in the primary, size bytes) for every copy.
func (s *Streamer) sent(h backend.Handle, size int64) {
	if h.Type != backend.PackFile {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	for _, d := range s.dsts {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.send(d, h, size)
		}()
	}
}

func (s *Streamer) send(d *streamDst, h backend.Handle, size int64) {
	select {
	case d.sem <- struct{}{}:
	case <-s.ctx.Done():
		return
	}
	defer func() { <-d.sem }()
	d.mu.Lock()
	failed := d.failed != nil
	d.mu.Unlock()
	if failed || s.ctx.Err() != nil {
		return
	}
	t0 := time.Now()
	err := s.copy(d.m, h, size)
	s.log.Debug("streamed", "copy", d.m.Name, "file", h.String(), "bytes", size, "took", time.Since(t0), "err", err)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		if d.failed == nil {
			d.failed = err
			s.log.Info("stream to copy stopped; the sync after the backup catches it up", "copy", d.m.Name, "file", h.String(), "err", err)
		}
		return
	}
	d.stats.Files++
	d.stats.Bytes += size
}

func (s *Streamer) copy(dst Member, h backend.Handle, size int64) error {
	rd, err := s.self.Backend.Load(s.ctx, h, 0, 0)
	if err != nil {
		return err
	}
	defer rd.Close()
	vr := newVerifyingReader(rd, h.Name, size)
	if err := dst.Backend.Save(s.ctx, h, vr.reader(), size); err != nil {
		if vr.err != nil {
			return errors.Join(errors.New("read back from the primary"), vr.err)
		}
		return err
	}
	return nil
}

// streamBackend is the primary's backend; each pack saved is queued for
// the copies once Save returned.
type streamBackend struct {
	backend.Backend
	s *Streamer
}

// Unwrap returns the primary's backend (for FreeSpace and friends).
func (b *streamBackend) Unwrap() backend.Backend { return b.Backend }

func (b *streamBackend) Save(ctx context.Context, h backend.Handle, rd io.Reader, size int64) error {
	if err := b.Backend.Save(ctx, h, rd, size); err != nil {
		return err
	}
	b.s.sent(h, size)
	return nil
}

// streamTempFiler adds the primary's backend.TempFiler.
type streamTempFiler struct {
	*streamBackend
	tf backend.TempFiler
}

func (b *streamTempFiler) TempFile(t backend.FileType) (*os.File, error) { return b.tf.TempFile(t) }

func (b *streamTempFiler) CommitTemp(ctx context.Context, h backend.Handle, f *os.File) error {
	fi, serr := f.Stat()
	if err := b.tf.CommitTemp(ctx, h, f); err != nil {
		return err
	}
	if serr == nil {
		b.s.sent(h, fi.Size())
	}
	return nil
}
