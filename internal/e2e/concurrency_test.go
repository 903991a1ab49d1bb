package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestConcurrentBackups runs two backups into one repository at the same
// time: both succeed, and together they add far less than two copies of
// the data (they deduplicate against what the repository holds).
func TestConcurrentBackups(t *testing.T) {
	t.Parallel()
	e := newRepo(t)
	src1 := filepath.Join(e.dir, "site1")
	src2 := filepath.Join(e.dir, "site2")
	e.generate(src1, 600)
	e.backup(src1)
	before := e.repoSize()
	copyDir(t, src1, src2)
	e.mustRun("corpus", "mutate", src1, "--seed", "11")
	e.mustRun("corpus", "mutate", src2, "--seed", "12")
	want1, want2 := takeManifest(t, src1), takeManifest(t, src2)

	var wg sync.WaitGroup
	results := make([]result, 2)
	for i, src := range []string{src1, src2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.run("backup", "--json", "--full", src)
		}()
	}
	wg.Wait()
	var ids []string
	for _, res := range results {
		if res.code != 0 {
			t.Fatalf("concurrent backup failed:\n%s", res)
		}
		ids = append(ids, parseSummary(t, res).SnapshotID)
	}
	grown := e.repoSize() - before
	t.Logf("repository %d bytes after the first backup; the two concurrent backups added %d bytes", before, grown)
	if grown > before/2 {
		t.Errorf("two concurrent backups of mostly known data added %d bytes to a repository of %d: they did not deduplicate", grown, before)
	}
	e.mustRun("check", "--read-data")
	e.restoreAndCompare(ids[0], src1, want1)
	e.restoreAndCompare(ids[1], src2, want2)
}

// TestPruneBesideBackups runs prune (marking and deleting in one run)
// while two backups run, several rounds over changing data: neither
// blocks the other, and prune deletes nothing a snapshot references.
func TestPruneBesideBackups(t *testing.T) {
	t.Parallel()
	e := newRepo(t)
	src1 := filepath.Join(e.dir, "site1")
	src2 := filepath.Join(e.dir, "site2")
	e.generate(src1, 400, "--seed", "1")
	e.generate(src2, 400, "--seed", "2")
	known := map[string]manifest{}
	srcOf := map[string]string{}
	for _, src := range []string{src1, src2} {
		id := e.backup(src).SnapshotID
		known[id], srcOf[id] = takeManifest(t, src), src
	}
	for round := 0; round < 4; round++ {
		e.mustRun("corpus", "mutate", src1, "--seed", strconv.Itoa(20+round), "--change", "0.2")
		e.mustRun("corpus", "mutate", src2, "--seed", strconv.Itoa(40+round), "--change", "0.2")
		m1, m2 := takeManifest(t, src1), takeManifest(t, src2)
		// Make garbage for prune: keep only the last snapshot of each path.
		e.mustRun("forget", "--keep-last", "1")

		var wg sync.WaitGroup
		var b1, b2, p result
		wg.Add(3)
		go func() { defer wg.Done(); b1 = e.run("backup", "--json", src1) }()
		go func() { defer wg.Done(); b2 = e.run("backup", "--json", src2) }()
		go func() { defer wg.Done(); p = e.run("prune", "--grace", "0", "--max-unused", "0%") }()
		wg.Wait()
		for _, res := range []result{b1, b2} {
			if res.code != 0 {
				t.Fatalf("round %d: backup beside prune failed:\n%s", round, res)
			}
			if res.dur > time.Minute {
				t.Errorf("round %d: backup beside prune took %s", round, res.dur)
			}
		}
		if p.code != 0 {
			t.Fatalf("round %d: prune beside backups failed:\n%s", round, p)
		}
		id1, id2 := parseSummary(t, b1).SnapshotID, parseSummary(t, b2).SnapshotID
		known[id1], srcOf[id1] = m1, src1
		known[id2], srcOf[id2] = m2, src2

		res := e.run("check", "--read-data")
		if res.code != 0 {
			t.Fatalf("round %d: check after prune beside backups:\n%s\nprune:\n%s", round, res, p)
		}
		for _, s := range e.snapshots() {
			m, ok := known[s.ID]
			if !ok {
				t.Fatalf("round %d: unknown snapshot %s", round, s.ID)
			}
			e.restoreAndCompare(s.ID, srcOf[s.ID], m)
		}
	}
	// Data marked while a backup ran is deleted by a later prune.
	e.mustRun("prune", "--grace", "0")
	e.mustRun("check", "--read-data")
}

// startStopped starts "einvault prune" and stops it (SIGSTOP) as soon as
// its lock file exists, so that it holds a live lock. It returns nil if
// the prune finished before its lock could be seen.
func startStopped(t *testing.T, e *env, args ...string) (*exec.Cmd, chan error, *bytes.Buffer) {
	t.Helper()
	locks := filepath.Join(e.repo, "locks")
	before := map[string]bool{}
	if ents, err := os.ReadDir(locks); err == nil {
		for _, en := range ents {
			before[en.Name()] = true
		}
	}
	cmd := e.command(context.Background(), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("prune failed: %v\n%s", err, out.String())
			}
			return nil, nil, nil
		default:
		}
		ents, _ := os.ReadDir(locks)
		for _, en := range ents {
			if !before[en.Name()] && len(en.Name()) == 64 {
				_ = cmd.Process.Signal(syscall.SIGSTOP)
				return cmd, done, &out
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// TestLocks checks the prune lock: a second prune beside a running one
// exits 11, and a lock left by a killed prune blocks neither a backup nor
// a later prune.
func TestLocks(t *testing.T) {
	t.Parallel()
	e := newRepo(t)
	src := filepath.Join(e.dir, "corpus")
	e.generate(src, 800)
	for i := 0; i < 3; i++ {
		e.mustRun("corpus", "mutate", src, "--seed", strconv.Itoa(60+i), "--change", "0.3")
		e.backup(src)
	}
	e.mustRun("forget", "--keep-last", "1")

	// Two prunes at once: the second exits 11 while the first holds the
	// lock. The first is stopped while it holds it, so the test is not a
	// race; the stopped process is alive, so its lock is not stale.
	var first *exec.Cmd
	var firstDone chan error
	var firstOut *bytes.Buffer
	for try := 0; try < 20 && first == nil; try++ {
		first, firstDone, firstOut = startStopped(t, e, "prune", "--grace", "0")
	}
	if first == nil {
		t.Fatal("could not catch a prune holding its lock in 20 tries")
	}
	res := e.run("prune", "--grace", "0")
	if res.code != exitLocked {
		_ = first.Process.Signal(syscall.SIGCONT)
		t.Fatalf("second prune beside a running one: want exit %d:\n%s", exitLocked, res)
	}
	// A backup is never blocked by a prune.
	e.mustRun("corpus", "mutate", src, "--seed", "70")
	e.backup(src)
	_ = first.Process.Signal(syscall.SIGCONT)
	if err := <-firstDone; err != nil {
		t.Fatalf("first prune: %v\n%s", err, firstOut)
	}
	// Once the first is done, the next prune runs.
	e.mustRun("prune", "--grace", "0")

	// A prune killed while it holds the lock leaves the lock file behind;
	// it blocks neither backups nor the next prune (its process is gone).
	e.mustRun("corpus", "mutate", src, "--seed", "71", "--change", "0.3")
	e.backup(src)
	e.mustRun("forget", "--keep-last", "1")
	var victim *exec.Cmd
	var victimDone chan error
	for try := 0; try < 20 && victim == nil; try++ {
		victim, victimDone, _ = startStopped(t, e, "prune", "--grace", "0")
	}
	if victim == nil {
		t.Fatal("could not catch a prune holding its lock in 20 tries")
	}
	_ = victim.Process.Signal(syscall.SIGKILL)
	<-victimDone
	ents, _ := os.ReadDir(filepath.Join(e.repo, "locks"))
	if len(ents) == 0 {
		t.Fatal("the killed prune left no lock file; the test proves nothing")
	}
	e.mustRun("corpus", "mutate", src, "--seed", "72")
	start := time.Now()
	sum := e.backup(src)
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("backup after a killed prune took %s", d)
	}
	e.mustRun("prune", "--grace", "0")
	e.mustRun("check", "--read-data")
	e.restoreAndCompare(sum.SnapshotID, src, takeManifest(t, src))
}
