package schedule

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/jonboulle/clockwork"
)

// Debouncer turns bursts of kicks into one signal, sent once the kicks
// have stopped for the debounce time.
type Debouncer struct {
	clock clockwork.Clock
	d     time.Duration
	mu    sync.Mutex
	timer clockwork.Timer
	done  bool
	// C receives one value per quiet period that followed kicks.
	C chan struct{}
}

// Debounce makes a debouncer that stops when ctx ends.
func Debounce(ctx context.Context, clock clockwork.Clock, quiet time.Duration) *Debouncer {
	db := &Debouncer{clock: clock, d: quiet, C: make(chan struct{}, 1)}
	context.AfterFunc(ctx, func() {
		db.mu.Lock()
		defer db.mu.Unlock()
		db.done = true
		if db.timer != nil {
			db.timer.Stop()
		}
	})
	return db
}

// Kick records activity: the signal waits until quiet has lasted the
// debounce time.
func (db *Debouncer) Kick() {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.done {
		return
	}
	if db.timer == nil {
		db.timer = db.clock.AfterFunc(db.d, db.fire)
		return
	}
	db.timer.Stop()
	db.timer.Reset(db.d)
}

func (db *Debouncer) fire() {
	select {
	case db.C <- struct{}{}:
	default: // a signal is already waiting; one run covers both
	}
}

// Watch watches paths (directories recursively, new directories
// included) and signals on the returned debouncer after every burst of
// changes followed by quiet. It stops when ctx ends.
func Watch(ctx context.Context, clock clockwork.Clock, paths []string, quiet time.Duration, log *slog.Logger) (*Debouncer, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch for changes: %w (raise fs.inotify.max_user_instances, or use a timed schedule)", err)
	}
	add := func(root string) error {
		return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == root {
					return err
				}
				return nil // vanished or unreadable below the root: the backup reports it
			}
			if d.IsDir() || p == root {
				if err := w.Add(p); err != nil {
					return fmt.Errorf("watch %s: %w (raise fs.inotify.max_user_watches)", p, err)
				}
			}
			return nil
		})
	}
	for _, p := range paths {
		if err := add(p); err != nil {
			w.Close()
			return nil, err
		}
	}
	db := Debounce(ctx, clock, quiet)
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Has(fsnotify.Create) {
					if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
						if err := add(ev.Name); err != nil && log != nil {
							log.Warn("watch new directory", "path", ev.Name, "err", err)
						}
					}
				}
				db.Kick()
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				if log != nil {
					log.Warn("file-system notifications", "err", err)
				}
				db.Kick() // an overflow may hide changes: back up to be safe
			}
		}
	}()
	return db, nil
}
