package archiver

import (
	"context"
	"io/fs"
	"path/filepath"
	"time"
)

// scan walks the sources ahead of the backup to estimate totals for the
// progress display (ETA). It only stats; errors are left to the backup.
func (a *Archiver) scan(ctx context.Context, paths []string) {
	defer a.scanDone.Store(true)
	for _, root := range paths {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				return nil
			}
			if p != root && a.opts.Excluder.Excluded(p) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					a.totalFiles.Add(1)
					a.totalBytes.Add(uint64(fi.Size()))
				}
			}
			return nil
		})
	}
}

// runProgress reports counters every 200 ms until stopped.
func (a *Archiver) runProgress(ctx context.Context) (stop func()) {
	if a.opts.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				a.opts.Progress.Update(a.counters())
			case <-done:
				a.opts.Progress.Update(a.counters())
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}
