package repo_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/mem"
	"github.com/einvault/einvault/internal/crypto"
	"github.com/einvault/einvault/internal/repo"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func lockRepo(t *testing.T) (*repo.Repository, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)}
	r, err := repo.Init(context.Background(), mem.New(), []byte("pw"), repo.Options{KDF: crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1}, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return r, c
}

// deadPID is above Linux's pid_max, so kill(pid, 0) fails with ESRCH.
const deadPID = 1 << 30

func countLockFiles(t *testing.T, r *repo.Repository) int {
	n := 0
	if err := r.Backend().List(context.Background(), backend.LockFile, func(backend.FileInfo) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestLockKinds(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		first     string
		second    string
		wantBlock bool
	}{
		{"backup beside backup", repo.LockBackup, repo.LockBackup, false},
		{"backup beside prune", repo.LockPrune, repo.LockBackup, false},
		{"prune beside backup", repo.LockBackup, repo.LockPrune, false},
		{"prune beside prune", repo.LockPrune, repo.LockPrune, true},
		{"exclusive beside prune", repo.LockPrune, repo.LockExclusive, true},
		{"prune beside exclusive", repo.LockExclusive, repo.LockPrune, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := lockRepo(t)
			l1, err := r.Lock(ctx, tt.first, repo.WithRefresh(0))
			if err != nil {
				t.Fatal(err)
			}
			l2, err := r.Lock(ctx, tt.second, repo.WithRefresh(0))
			if tt.wantBlock {
				if !errors.Is(err, repo.ErrLocked) {
					t.Fatalf("second lock: %v, want ErrLocked", err)
				}
				host, _ := os.Hostname()
				for _, want := range []string{host, "PID", "ago", "einvault unlock"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not mention %q", err, want)
					}
				}
				if n := countLockFiles(t, r); n != 1 {
					t.Fatalf("refused lock left its file behind: %d lock files", n)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				if err := l2.Unlock(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := l1.Unlock(ctx); err != nil {
				t.Fatal(err)
			}
			if n := countLockFiles(t, r); n != 0 {
				t.Fatalf("%d lock files after unlock", n)
			}
		})
	}
}

func TestStaleLocks(t *testing.T) {
	ctx := context.Background()
	host, _ := os.Hostname()
	tests := []struct {
		name      string
		owner     repo.LockOption
		advance   time.Duration
		wantStale bool
	}{
		{"live local process", repo.WithOwner(host, os.Getpid()), 0, false},
		{"dead local process", repo.WithOwner(host, deadPID), 0, true},
		{"other host, fresh heartbeat", repo.WithOwner("elsewhere", deadPID), 10 * time.Minute, false},
		{"other host, old heartbeat", repo.WithOwner("elsewhere", 1), 31 * time.Minute, true},
		{"live local process, old heartbeat", repo.WithOwner(host, os.Getpid()), 31 * time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, c := lockRepo(t)
			if _, err := r.Lock(ctx, repo.LockPrune, tt.owner, repo.WithRefresh(0)); err != nil {
				t.Fatal(err)
			}
			c.Add(tt.advance)
			locks, err := r.Locks(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(locks) != 1 || locks[0].Stale != tt.wantStale {
				t.Fatalf("locks %+v, want stale=%v", locks, tt.wantStale)
			}
			// A stale prune lock never blocks another prune; a live one does.
			l, err := r.Lock(ctx, repo.LockPrune, repo.WithRefresh(0))
			if tt.wantStale != (err == nil) {
				t.Fatalf("second prune lock: %v (stale=%v)", err, tt.wantStale)
			}
			if err == nil {
				l.Unlock(ctx)
			}
			// A backup lock is never refused.
			b, err := r.Lock(ctx, repo.LockBackup, repo.WithRefresh(0))
			if err != nil {
				t.Fatal(err)
			}
			b.Unlock(ctx)

			removed, err := r.RemoveStaleLocks(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if (len(removed) == 1) != tt.wantStale {
				t.Fatalf("RemoveStaleLocks removed %d", len(removed))
			}
			if _, err := r.RemoveAllLocks(ctx); err != nil {
				t.Fatal(err)
			}
			if n := countLockFiles(t, r); n != 0 {
				t.Fatalf("%d lock files after RemoveAllLocks", n)
			}
		})
	}
}

func TestLockHeartbeat(t *testing.T) {
	ctx := context.Background()
	r, c := lockRepo(t)
	l, err := r.Lock(ctx, repo.LockBackup, repo.WithRefresh(time.Millisecond), repo.WithOwner("elsewhere", 7))
	if err != nil {
		t.Fatal(err)
	}
	start := l.Info()
	// Advance the repository clock by 20 minutes at a time: the
	// background heartbeat keeps the lock fresh past the staleness limit.
	for i := 0; i < 4; i++ {
		c.Add(20 * time.Minute)
		deadline := time.Now().Add(5 * time.Second)
		for l.Info().Heartbeat.Before(c.Now()) {
			if time.Now().After(deadline) {
				t.Fatal("heartbeat not refreshed")
			}
			time.Sleep(time.Millisecond)
		}
	}
	locks, err := r.Locks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(locks) != 1 || locks[0].Stale || !locks[0].Start.Equal(start.Start) || locks[0].ID == start.ID {
		t.Fatalf("after heartbeats: %+v (first %+v)", locks, start)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal("second Unlock:", err)
	}
	if n := countLockFiles(t, r); n != 0 {
		t.Fatalf("%d lock files after unlock", n)
	}
}

func TestPendingFiles(t *testing.T) {
	ctx := context.Background()
	r, c := lockRepo(t)
	p1 := &repo.Pending{Created: c.Now(), Packs: repo.IDs{repo.RandomID(), repo.RandomID()}}
	if _, err := r.SavePending(ctx, p1); err != nil {
		t.Fatal(err)
	}
	c.Add(-time.Hour)
	p0 := &repo.Pending{Created: c.Now(), Packs: repo.IDs{repo.RandomID()}}
	if _, err := r.SavePending(ctx, p0); err != nil {
		t.Fatal(err)
	}
	all, err := r.PendingFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].ID != p0.ID || all[1].ID != p1.ID || len(all[1].Packs) != 2 || all[1].Packs[1] != p1.Packs[1] {
		t.Fatalf("pending files: %+v", all)
	}
	if err := r.RemovePending(ctx, p0.ID); err != nil {
		t.Fatal(err)
	}
	if all, _ := r.PendingFiles(ctx); len(all) != 1 {
		t.Fatalf("%d pending files after remove", len(all))
	}
}
