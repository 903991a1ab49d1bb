package e2e

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestCrash kills "einvault backup" and "einvault prune" with SIGKILL at
// random moments on a real corpus. After every kill:
//
//   - check --read-data passes: no snapshot references missing or
//     damaged data, whatever the moment of the kill;
//   - a new backup runs to completion;
//   - the latest snapshot and one random earlier one restore byte for
//     byte equal to the source state they were taken from.
//
// The corpus is mutated between rounds so that every backup writes new
// packs. EINVAULT_CRASH_POINTS sets the number of kills (default 10; the
// long run uses 60), EINVAULT_CRASH_SEED replays a run, and
// EINVAULT_CRASH_FILES sets the corpus size (default 1000 invoices).
func TestCrash(t *testing.T) {
	points := envInt(t, "EINVAULT_CRASH_POINTS", 10)
	files := envInt(t, "EINVAULT_CRASH_FILES", 1000)
	if points == 0 {
		t.Skip("EINVAULT_CRASH_POINTS=0")
	}
	rng := newRand(t, "EINVAULT_CRASH_SEED")
	e := newRepo(t)
	src := filepath.Join(e.dir, "corpus")
	e.generate(src, files, "--seed", strconv.Itoa(1+rng.IntN(1000)))

	// manifests of the source for every snapshot that exists.
	known := map[string]manifest{}
	var order []string // snapshot IDs in creation order
	record := func(id string, m manifest) {
		if _, ok := known[id]; !ok {
			order = append(order, id)
		}
		known[id] = m
	}
	// syncSnaps forgets snapshots that no longer exist and records snapshots
	// written by a process that was killed after saving them (the source
	// did not change while it ran, so cur describes them).
	syncSnaps := func(cur manifest) {
		exists := map[string]bool{}
		for _, s := range e.snapshots() {
			exists[s.ID] = true
			if _, ok := known[s.ID]; !ok {
				t.Logf("  a killed process had saved snapshot %.8s", s.ID)
				record(s.ID, cur)
			}
		}
		var kept []string
		for _, id := range order {
			if exists[id] {
				kept = append(kept, id)
			} else {
				delete(known, id)
			}
		}
		order = kept
	}

	cur := takeManifest(t, src)
	start := time.Now()
	first := e.backup(src)
	backupTime := time.Since(start)
	record(first.SnapshotID, cur)
	// Kill moments are drawn uniformly from [0, estimated duration); an
	// operation that finished before its kill updates the estimate.
	backupEst, pruneEst := backupTime, 300*time.Millisecond
	t.Logf("corpus of %d files, first backup took %s", len(cur), backupTime.Round(time.Millisecond))

	kills := map[string]int{}
	for i := 0; i < points; i++ {
		if i%3 == 2 {
			// Kill a prune after a forget; with --grace 0 every other time
			// so that both marking and deleting are interrupted.
			e.mustRun("forget", "--keep-last", "2")
			syncSnaps(cur)
			args := []string{"prune", "--max-unused", "0%"}
			if rng.IntN(2) == 0 {
				args = append(args, "--grace", "0")
			}
			delay := time.Duration(rng.Int64N(int64(pruneEst) + 1))
			k := e.runKilled(delay, args...)
			t.Logf("round %d: %v killed after %s (finished first: %v, exit %d)", i, args, delay.Round(time.Millisecond), k.finished, k.code)
			if k.finished {
				kills["prune finished first"]++
				if k.code != 0 {
					t.Fatalf("prune failed:\n%s", k.result)
				}
				pruneEst = k.dur
			} else {
				kills["prune"]++
			}
		} else {
			e.mustRun("corpus", "mutate", src, "--seed", strconv.Itoa(100+i), "--change", "0.1", "--add", "0.05")
			cur = takeManifest(t, src)
			args := []string{"backup", "--json", src}
			switch rng.IntN(3) {
			case 0:
				args = append(args, "--full")
			case 1:
				args = append(args, "--differential")
			}
			delay := time.Duration(rng.Int64N(int64(backupEst) + 1))
			k := e.runKilled(delay, args...)
			t.Logf("round %d: %v killed after %s (finished first: %v, exit %d)", i, append([]string{"backup"}, args[3:]...), delay.Round(time.Millisecond), k.finished, k.code)
			if k.finished {
				kills["backup finished first"]++
				if k.code != 0 {
					t.Fatalf("backup failed:\n%s", k.result)
				}
				backupEst = k.dur
			} else {
				kills["backup"]++
			}
		}
		syncSnaps(cur)

		res := e.run("check", "--read-data")
		if res.code != 0 {
			t.Fatalf("round %d: check --read-data after the kill:\n%s", i, res)
		}
		sum := e.backup(src)
		record(sum.SnapshotID, cur)
		syncSnaps(cur)

		e.restoreAndCompare("latest", src, known[sum.SnapshotID])
		if len(order) > 1 {
			id := order[rng.IntN(len(order)-1)]
			e.restoreAndCompare(id, src, known[id])
		}
	}
	// A final prune that runs to completion leaves a clean repository.
	e.mustRun("prune", "--grace", "0", "--max-unused", "0%")
	e.mustRun("check", "--read-data")
	for _, id := range order {
		e.restoreAndCompare(id, src, known[id])
	}
	t.Logf("%d rounds: %v; %d snapshots restored at the end", points, kills, len(order))
}
