package repo

// Locks and prune marks.
//
// A lock file is an announcement, not a mutex for backups: a backup
// writes a "backup" lock so that prune knows a writer may still reference
// data it saw in the index, and nothing ever refuses a backup because of a
// lock. Only "prune" and "exclusive" locks exclude each other. Every lock
// carries a heartbeat that its owner refreshes; a lock whose process is
// gone (same host, PID no longer exists) or whose heartbeat is older than
// the staleness limit is stale and ignored.
//
// Pending files record the packs a prune marked for deletion and when; a
// later sweep deletes them once the grace window has passed (see package
// pruner).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/einvault/einvault/internal/backend"
)

// Lock kinds.
const (
	// LockBackup announces a writer; it is shared and never blocks.
	LockBackup = "backup"
	// LockPrune and LockExclusive exclude each other (and themselves).
	LockPrune     = "prune"
	LockExclusive = "exclusive"
)

// Defaults for lock heartbeats.
const (
	DefaultLockRefresh    = 5 * time.Minute
	DefaultLockStaleAfter = 30 * time.Minute
)

// LockInfo is the content of a lock file.
type LockInfo struct {
	Host      string    `json:"host"`
	Username  string    `json:"username,omitempty"`
	PID       int       `json:"pid"`
	Kind      string    `json:"kind"`
	Start     time.Time `json:"start"`
	Heartbeat time.Time `json:"heartbeat"`

	// ID is the lock file's name; not stored.
	ID ID `json:"-"`
	// Stale is set by Locks: the owner is gone or has stopped refreshing.
	Stale bool `json:"-"`
	// StaleReason says why a lock is stale.
	StaleReason string `json:"-"`
	// Err is set by Locks for a lock file that cannot be read (damaged or
	// sealed under an unknown key); such a lock counts as stale.
	Err error `json:"-"`
}

// Exclusive reports whether the lock kind excludes other exclusive locks.
func (l LockInfo) Exclusive() bool { return l.Kind == LockPrune || l.Kind == LockExclusive }

// Describe is a one-line description for messages.
func (l LockInfo) Describe(now time.Time) string {
	who := l.Host
	if l.Username != "" {
		who = l.Username + "@" + l.Host
	}
	return fmt.Sprintf("%s lock %s held by %s (PID %d), started %s ago, heartbeat %s ago",
		l.Kind, l.ID.Short(), who, l.PID, roundAge(now.Sub(l.Start)), roundAge(now.Sub(l.Heartbeat)))
}

func roundAge(d time.Duration) time.Duration {
	if d < 0 {
		d = 0
	}
	return d.Round(time.Second)
}

// LockOption adjusts how a lock is taken or how staleness is judged.
type LockOption func(*lockOptions)

type lockOptions struct {
	refresh    time.Duration
	staleAfter time.Duration
	host       string // written into the lock
	thisHost   string // whose PIDs can be checked
	pid        int
	username   string
	alive      func(pid int) bool
}

// WithRefresh sets the heartbeat interval (default DefaultLockRefresh);
// zero or negative disables the background refresh (Refresh can still be
// called by hand).
func WithRefresh(d time.Duration) LockOption { return func(o *lockOptions) { o.refresh = d } }

// WithStaleAfter sets the staleness limit for heartbeats (default
// DefaultLockStaleAfter).
func WithStaleAfter(d time.Duration) LockOption { return func(o *lockOptions) { o.staleAfter = d } }

// WithOwner overrides the host and PID written into the lock (tests, or a
// daemon locking on behalf of a job). Staleness is still judged against
// the real host name.
func WithOwner(host string, pid int) LockOption {
	return func(o *lockOptions) { o.host, o.pid = host, pid }
}

// WithProcessCheck replaces the check for whether a local PID is alive.
func WithProcessCheck(alive func(pid int) bool) LockOption {
	return func(o *lockOptions) { o.alive = alive }
}

func newLockOptions(opts []LockOption) lockOptions {
	o := lockOptions{refresh: DefaultLockRefresh, staleAfter: DefaultLockStaleAfter, pid: os.Getpid(), alive: processAlive}
	o.host, _ = os.Hostname()
	o.thisHost = o.host
	if u, err := user.Current(); err == nil {
		o.username = u.Username
	}
	for _, fn := range opts {
		fn(&o)
	}
	if o.staleAfter <= 0 {
		o.staleAfter = DefaultLockStaleAfter
	}
	return o
}

// processAlive reports whether a process with this PID exists on this
// host. Only ESRCH counts as gone: EPERM means it exists under another
// user.
func processAlive(pid int) bool {
	if pid <= 0 {
		return true // never signal groups; rely on the heartbeat
	}
	err := syscall.Kill(pid, 0)
	return !errors.Is(err, syscall.ESRCH)
}

// Lock is a lock held by this process. Its heartbeat is refreshed in the
// background until Unlock.
type Lock struct {
	r    *Repository
	opts lockOptions

	mu   sync.Mutex
	info LockInfo
	err  error // last refresh error

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Lock announces this process as a writer of the given kind ("backup",
// "prune" or "exclusive"). A backup lock is never refused. An exclusive
// kind is refused with an error matching ErrLocked while another live
// (non-stale) prune or exclusive lock exists.
//
// Take a backup lock before loading the index, and keep it until the
// snapshot is saved: prune's sweep waits for every live backup lock older
// than its mark.
func (r *Repository) Lock(ctx context.Context, kind string, opts ...LockOption) (*Lock, error) {
	switch kind {
	case LockBackup, LockPrune, LockExclusive:
	default:
		return nil, fmt.Errorf("unknown lock kind %q", kind)
	}
	o := newLockOptions(opts)
	now := r.now()
	l := &Lock{r: r, opts: o, info: LockInfo{Host: o.host, Username: o.username, PID: o.pid, Kind: kind, Start: now, Heartbeat: now}}
	id, err := r.saveLockFile(ctx, l.info)
	if err != nil {
		return nil, fmt.Errorf("create lock: %w", err)
	}
	l.info.ID = id
	if l.info.Exclusive() {
		locks, err := r.Locks(ctx, opts...)
		if err != nil {
			r.removeLockFile(context.WithoutCancel(ctx), id)
			return nil, err
		}
		for _, other := range locks {
			if other.ID == id || other.Stale || !other.Exclusive() {
				continue
			}
			r.removeLockFile(context.WithoutCancel(ctx), id)
			return nil, lockedError(other, r.now())
		}
	}
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	if o.refresh > 0 {
		go l.refresher()
	} else {
		close(l.done)
	}
	return l, nil
}

func lockedError(other LockInfo, now time.Time) error {
	return fmt.Errorf("%w: %s; wait for it to finish, or if that process is gone (it is treated as stale after its heartbeat stops), remove it with 'einvault unlock'",
		ErrLocked, other.Describe(now))
}

// Info returns the lock's current content.
func (l *Lock) Info() LockInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// Err returns the last heartbeat error, if any.
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

func (l *Lock) refresher() {
	defer close(l.done)
	t := time.NewTicker(l.opts.refresh)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), max(l.opts.refresh, time.Minute))
			if err := l.Refresh(ctx); err != nil {
				l.r.log.Warn("lock heartbeat failed", "lock", l.Info().ID.Short(), "err", err)
			}
			cancel()
		}
	}
}

// Refresh writes a new lock file with the current heartbeat and removes
// the previous one.
func (l *Lock) Refresh(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	info := l.info
	info.Heartbeat = l.r.now()
	id, err := l.r.saveLockFile(ctx, info)
	if err != nil {
		l.err = fmt.Errorf("refresh lock: %w", err)
		return l.err
	}
	old := l.info.ID
	info.ID = id
	l.info = info
	l.err = nil
	if old != id {
		if err := l.r.removeLockFile(ctx, old); err != nil && !errors.Is(err, backend.ErrNotExist) {
			l.r.log.Warn("remove old lock file", "lock", old.Short(), "err", err)
		}
	}
	return nil
}

// Unlock stops the heartbeat and removes the lock file. It may be called
// more than once.
func (l *Lock) Unlock(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		l.mu.Lock()
		id := l.info.ID
		l.mu.Unlock()
		err = l.r.removeLockFile(ctx, id)
		if errors.Is(err, backend.ErrNotExist) {
			err = nil // removed by 'einvault unlock --remove-all'
		}
	})
	return err
}

func (r *Repository) saveLockFile(ctx context.Context, info LockInfo) (ID, error) {
	data, err := json.Marshal(info)
	if err != nil {
		return ID{}, err
	}
	return r.saveFile(ctx, backend.LockFile, KindLock, data)
}

func (r *Repository) removeLockFile(ctx context.Context, id ID) error {
	return r.be.Remove(ctx, backend.Handle{Type: backend.LockFile, Name: id.String()})
}

// Locks lists every lock file, oldest first, with Stale set for locks
// whose owner is gone: same host and the PID no longer exists, or a
// heartbeat older than the staleness limit per the repository clock. A
// lock file that cannot be read is returned with Err set and counts as
// stale.
func (r *Repository) Locks(ctx context.Context, opts ...LockOption) ([]LockInfo, error) {
	o := newLockOptions(opts)
	var ids IDs
	err := r.be.List(ctx, backend.LockFile, func(fi backend.FileInfo) error {
		if id, err := ParseID(fi.Name); err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	now := r.now()
	out := make([]LockInfo, 0, len(ids))
	for _, id := range ids {
		plain, err := r.loadFile(ctx, backend.Handle{Type: backend.LockFile, Name: id.String()}, KindLock)
		if errors.Is(err, backend.ErrNotExist) {
			continue // refreshed or removed meanwhile
		}
		var info LockInfo
		if err == nil {
			if jerr := json.Unmarshal(plain, &info); jerr != nil {
				err = fmt.Errorf("%w: lock file: %v", ErrDamaged, jerr)
			}
		}
		if err != nil {
			out = append(out, LockInfo{ID: id, Err: err, Stale: true, StaleReason: "unreadable: " + err.Error()})
			continue
		}
		info.ID = id
		switch {
		case info.Host == o.thisHost && !o.alive(info.PID):
			info.Stale, info.StaleReason = true, fmt.Sprintf("process %d no longer exists on this host", info.PID)
		case now.Sub(info.Heartbeat) > o.staleAfter:
			info.Stale, info.StaleReason = true, fmt.Sprintf("no heartbeat for %s (limit %s)", roundAge(now.Sub(info.Heartbeat)), o.staleAfter)
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out, nil
}

// RemoveStaleLocks removes every stale lock and returns what it removed.
func (r *Repository) RemoveStaleLocks(ctx context.Context, opts ...LockOption) ([]LockInfo, error) {
	locks, err := r.Locks(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return r.removeLocks(ctx, locks, func(l LockInfo) bool { return l.Stale })
}

// RemoveAllLocks removes every lock, live or not. Only for when the user
// knows no other einvault process is running.
func (r *Repository) RemoveAllLocks(ctx context.Context) ([]LockInfo, error) {
	locks, err := r.Locks(ctx)
	if err != nil {
		return nil, err
	}
	return r.removeLocks(ctx, locks, func(LockInfo) bool { return true })
}

func (r *Repository) removeLocks(ctx context.Context, locks []LockInfo, pick func(LockInfo) bool) ([]LockInfo, error) {
	var removed []LockInfo
	var errs []error
	for _, l := range locks {
		if !pick(l) {
			continue
		}
		if err := r.removeLockFile(ctx, l.ID); err != nil && !errors.Is(err, backend.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove lock %s: %w", l.ID.Short(), err))
			continue
		}
		removed = append(removed, l)
	}
	return removed, errors.Join(errs...)
}

// Pending is a prune mark: packs that no index references any more and
// that a sweep deletes once the grace window after Created has passed,
// unless a snapshot still needs them.
type Pending struct {
	Created time.Time `json:"created"`
	Host    string    `json:"host,omitempty"`
	Packs   IDs       `json:"packs"`
	// Catalogs are invoice catalogs (catalogs/) of forgotten snapshots,
	// deleted by the same sweep unless a snapshot names them again.
	Catalogs IDs `json:"catalogs,omitempty"`

	// ID is the pending file's name; not stored.
	ID ID `json:"-"`
}

// SavePending writes a pending file.
func (r *Repository) SavePending(ctx context.Context, p *Pending) (ID, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return ID{}, err
	}
	id, err := r.saveFile(ctx, backend.PendingFile, KindPending, data)
	if err != nil {
		return ID{}, fmt.Errorf("save pending: %w", err)
	}
	p.ID = id
	return id, nil
}

// PendingFiles loads every pending file, oldest first.
func (r *Repository) PendingFiles(ctx context.Context) ([]*Pending, error) {
	var ids IDs
	err := r.be.List(ctx, backend.PendingFile, func(fi backend.FileInfo) error {
		if id, err := ParseID(fi.Name); err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list pending: %w", err)
	}
	var out []*Pending
	for _, id := range ids {
		plain, err := r.loadFile(ctx, backend.Handle{Type: backend.PendingFile, Name: id.String()}, KindPending)
		if errors.Is(err, backend.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var p Pending
		if err := json.Unmarshal(plain, &p); err != nil {
			return nil, fmt.Errorf("pending/%s: %w: %v", id.Short(), ErrDamaged, err)
		}
		p.ID = id
		out = append(out, &p)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out, nil
}

// RemovePending deletes a pending file.
func (r *Repository) RemovePending(ctx context.Context, id ID) error {
	err := r.be.Remove(ctx, backend.Handle{Type: backend.PendingFile, Name: id.String()})
	if errors.Is(err, backend.ErrNotExist) {
		return nil
	}
	return err
}
