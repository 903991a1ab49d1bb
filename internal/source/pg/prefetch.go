package pg

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/einvault/einvault/internal/walarchive"
)

// A Prefetcher fetches the WAL segments a recovery will ask for ahead of
// PostgreSQL into a spool directory, so that restore_command ('wal-fetch
// --spool DIR') only copies a file that is already there instead of
// reading, decrypting and decompressing it while recovery waits. It stays
// at most Ahead segments ahead of what restore_command consumed, which
// bounds the spool to Ahead × 16 MiB. A segment it cannot fetch is
// simply not spooled: wal-fetch then reads it from the repository and
// reports the real error.
type Prefetcher struct {
	Dir      string                                                 // spool directory, readable and writable by the server's OS user
	Fetch    func(ctx context.Context, name string) ([]byte, error) // the content of an archived WAL file
	Ahead    int                                                    // segments spooled but not yet consumed (default 8)
	Workers  int                                                    // parallel fetches (default 2)
	Chown    func(path string) error                                // gives a spooled file to the server's OS user; nil: none
	Logger   *slog.Logger
	Interval time.Duration // how often consumption is polled (default 20 ms)
}

// SpoolSegments lists the segments recovery from base within r replays,
// in order: from the one holding the base backup's start to the last
// archived one of the range.
func SpoolSegments(r Range, base BaseBackup) []string {
	first := SegmentOf(base.Timeline, base.StartLSN)
	if r.lastSeg == (Segment{}) || first.Timeline != r.lastSeg.Timeline {
		return nil
	}
	var out []string
	for n := first.Number(); n <= r.lastSeg.Number(); n++ {
		out = append(out, SegmentOf(first.Timeline, LSN(n*SegmentSize)).String())
	}
	return out
}

// Run spools segs in order until all are spooled or ctx ends.
func (p *Prefetcher) Run(ctx context.Context, segs []string) {
	ahead, workers, every := p.Ahead, p.Workers, p.Interval
	if ahead <= 0 {
		ahead = 8
	}
	if workers <= 0 {
		workers = 2
	}
	if every <= 0 {
		every = 20 * time.Millisecond
	}
	log := p.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range jobs {
				if err := p.spool(ctx, name); err != nil && ctx.Err() == nil {
					log.Debug("WAL prefetch failed; wal-fetch will read the repository", "segment", name, "err", err)
				}
			}
		}()
	}
	defer func() { close(jobs); wg.Wait() }()
	t := time.NewTicker(every)
	defer t.Stop()
	for i, name := range segs {
		// Wait until restore_command consumed the segment Ahead places
		// back (wal-fetch removes spooled segments older than the one
		// it serves).
		for i >= ahead && p.spooled(segs[i-ahead]) {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		select {
		case <-ctx.Done():
			return
		case jobs <- name:
		}
	}
}

func (p *Prefetcher) spooled(name string) bool {
	_, err := os.Lstat(filepath.Join(p.Dir, name))
	return err == nil
}

// spool writes one segment into the spool directory atomically (a
// temporary name, then rename), so wal-fetch never sees a partial file.
func (p *Prefetcher) spool(ctx context.Context, name string) error {
	data, err := p.Fetch(ctx, name)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(p.Dir, ".prefetch-"+name+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && p.Chown != nil {
		err = p.Chown(f.Name())
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(p.Dir, name))
}

// Absent lists WAL files recovery within r will ask for although the
// archive did not hold them when the window was computed: the segment
// after the range's last one (where replay ends) and the timeline
// history files PostgreSQL probes before it picks a new timeline. The
// spool marks them, so restore_command answers "not in the archive"
// without opening the repository; recovery to the latest point thus
// ends exactly at the window shown before the restore.
func (w *Window) Absent(r Range) []string {
	var out []string
	if r.lastSeg != (Segment{}) {
		next := SegmentOf(r.lastSeg.Timeline, r.lastSeg.EndLSN()).String()
		if !w.archived[next] {
			out = append(out, next)
		}
	}
	maxTLI := r.Timeline
	for n := range w.archived {
		if s, ok := ParseSegment(n); ok && s.Timeline > maxTLI {
			maxTLI = s.Timeline
		}
	}
	for tli := uint32(1); tli <= maxTLI+1; tli++ {
		if h := fmt.Sprintf("%08X.history", tli); !w.archived[h] {
			out = append(out, h)
		}
	}
	return out
}

// MarkAbsent writes the spool's markers for names (see Window.Absent).
func (p *Prefetcher) MarkAbsent(names []string) error {
	for _, n := range names {
		path := filepath.Join(p.Dir, n+walarchive.AbsentSuffix)
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			return fmt.Errorf("mark %s absent: %w", n, err)
		}
		if p.Chown != nil {
			if err := p.Chown(path); err != nil {
				return err
			}
		}
	}
	return nil
}
