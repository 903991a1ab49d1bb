package pruner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/archiver"
	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/mem"
	"github.com/einvault/einvault/internal/crypto"
	"github.com/einvault/einvault/internal/forget"
	"github.com/einvault/einvault/internal/repo"
)

var testKDF = crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1}

// deadPID is above Linux's pid_max: kill(pid, 0) fails with ESRCH.
const deadPID = 1 << 30

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

// env is one repository in memory, opened afresh for every "process".
type env struct {
	t   *testing.T
	be  backend.Backend
	clk *clock
	dir string
	rng *rand.Rand
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, be: mem.New(), clk: &clock{t: time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)}, dir: t.TempDir(), rng: rand.New(rand.NewPCG(3, 4))}
	r, err := repo.Init(context.Background(), e.be, []byte("pw"), repo.Options{KDF: testKDF, PackSize: 1 << 20, Now: e.clk.Now,
		Chunker: repo.ChunkerParams{Algorithm: "fastcdc-v1.0.0", Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	return e
}

// open opens the repository as a new process would, without the index.
func (e *env) open() *repo.Repository {
	e.t.Helper()
	r, err := repo.Open(context.Background(), e.be, []byte("pw"), repo.Options{Now: e.clk.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { r.Close() })
	return r
}

func (e *env) openIndexed() *repo.Repository {
	e.t.Helper()
	r := e.open()
	if err := r.LoadIndex(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return r
}

// writeFiles writes n random incompressible files of about size bytes
// under dir/name and returns their contents.
func (e *env) writeFiles(name string, n, size int) map[string][]byte {
	e.t.Helper()
	out := map[string][]byte{}
	for i := 0; i < n; i++ {
		data := make([]byte, size/2+e.rng.IntN(size))
		for j := range data {
			data[j] = byte(e.rng.Uint32())
		}
		p := filepath.Join(e.dir, name, fmt.Sprintf("f%03d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			e.t.Fatal(err)
		}
		out["/"+filepath.Base(filepath.Dir(p))+"/"+filepath.Base(p)] = data
	}
	return out
}

// backup stores dir/name with a fresh repository and a backup lock.
func (e *env) backup(name string) *repo.Snapshot {
	e.t.Helper()
	return e.backupPaths(name)
}

// readDir returns the files of dir/name as writeFiles names them.
func (e *env) readDir(name string) map[string][]byte {
	e.t.Helper()
	out := map[string][]byte{}
	ents, err := os.ReadDir(filepath.Join(e.dir, name))
	if err != nil {
		e.t.Fatal(err)
	}
	for _, de := range ents {
		b, err := os.ReadFile(filepath.Join(e.dir, name, de.Name()))
		if err != nil {
			e.t.Fatal(err)
		}
		out["/"+name+"/"+de.Name()] = b
	}
	return out
}

// backupPaths stores dir/name... as one snapshot, announcing itself with
// a backup lock before loading the index, as the CLI does.
func (e *env) backupPaths(names ...string) *repo.Snapshot {
	e.t.Helper()
	ctx := context.Background()
	r := e.open()
	l, err := r.Lock(ctx, repo.LockBackup, repo.WithRefresh(0))
	if err != nil {
		e.t.Fatal(err)
	}
	defer l.Unlock(ctx)
	if err := r.LoadIndex(ctx); err != nil {
		e.t.Fatal(err)
	}
	var paths []string
	for _, n := range names {
		paths = append(paths, filepath.Join(e.dir, n))
	}
	res, err := archiver.New(r, archiver.Options{Host: "erp01"}).Backup(ctx, paths)
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Snapshot
}

func (e *env) prune(o Options) *Report {
	e.t.Helper()
	rep, err := Prune(context.Background(), e.open(), o)
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

func (e *env) forget(ids ...repo.ID) {
	e.t.Helper()
	for _, id := range ids {
		if err := e.be.Remove(context.Background(), backend.Handle{Type: backend.SnapshotFile, Name: id.String()}); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) storage() (packs int, size int64) {
	e.t.Helper()
	err := e.be.List(context.Background(), backend.PackFile, func(fi backend.FileInfo) error {
		packs++
		size += fi.Size
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return packs, size
}

func (e *env) count(t backend.FileType) int {
	n := 0
	if err := e.be.List(context.Background(), t, func(backend.FileInfo) error { n++; return nil }); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// restore reads every file of a snapshot through a freshly loaded index
// (every tree walked, every blob loaded) and returns name -> content,
// names relative to the backed-up directory's parent.
func (e *env) restore(s *repo.Snapshot) map[string][]byte {
	e.t.Helper()
	r := e.openIndexed()
	ctx := context.Background()
	out := map[string][]byte{}
	err := repo.Walk(ctx, r, s.Tree, "/", func(p string, n *repo.Node) error {
		if n.Type != repo.NodeFile {
			return nil
		}
		var buf bytes.Buffer
		for _, id := range n.Content {
			b, err := r.LoadBlob(ctx, repo.DataBlob, id, nil)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			buf.Write(b)
		}
		out["/"+filepath.Base(filepath.Dir(p))+"/"+filepath.Base(p)] = buf.Bytes()
		return nil
	})
	if err != nil {
		e.t.Fatalf("restore %s: %v", s.ID.Short(), err)
	}
	return out
}

func (e *env) checkRestores(s *repo.Snapshot, want map[string][]byte) {
	e.t.Helper()
	got := e.restore(s)
	if len(got) != len(want) {
		e.t.Fatalf("snapshot %s restores %d files, want %d", s.ID.Short(), len(got), len(want))
	}
	for p, w := range want {
		if !bytes.Equal(got[p], w) {
			e.t.Fatalf("snapshot %s: %s differs", s.ID.Short(), p)
		}
	}
}

// checkConsistent verifies that every indexed pack exists and, when
// clean is set, that every stored pack is indexed (no garbage left).
func (e *env) checkConsistent(clean bool) {
	e.t.Helper()
	r := e.openIndexed()
	stored := map[string]bool{}
	e.be.List(context.Background(), backend.PackFile, func(fi backend.FileInfo) error { stored[fi.Name] = true; return nil })
	for _, p := range r.Index().Packs() {
		if !stored[p.ID.String()] {
			e.t.Fatalf("indexed pack %s is missing", p.ID.Short())
		}
		delete(stored, p.ID.String())
	}
	if clean && len(stored) > 0 {
		e.t.Fatalf("%d packs in storage are in no index", len(stored))
	}
}

func TestForgetPruneShrinksAndRestores(t *testing.T) {
	tests := []struct {
		name       string
		maxUnused  float64
		wantRepack bool
	}{
		{"default", 0, true},
		{"repack every pack with garbage", -1, true},
		{"never repack", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			keepA := e.writeFiles("a", 8, 100<<10)
			e.writeFiles("b", 24, 100<<10)
			sAB := e.backupPaths("a", "b") // a's and b's blobs share packs
			e.clk.Add(time.Hour)
			sA := e.backupPaths("a") // deduplicates: a's blobs stay in the mixed packs
			e.clk.Add(time.Hour)
			e.writeFiles("d", 6, 100<<10)
			sD1 := e.backupPaths("d")
			e.clk.Add(time.Hour)
			keepD := e.writeFiles("d", 3, 100<<10) // rewrites f000..f002
			for k, v := range e.readDir("d") {
				keepD[k] = v
			}
			sD2 := e.backupPaths("d")
			e.clk.Add(time.Hour)

			// forget --keep-last 1 (per host and paths) forgets sD1; sAB
			// is forgotten by ID.
			snaps, err := e.open().Snapshots(ctx)
			if err != nil {
				t.Fatal(err)
			}
			keep, remove, _ := forget.Apply(snaps, forget.Policy{Last: 1}, e.clk.Now())
			if len(keep) != 3 || len(remove) != 1 || remove[0].ID != sD1.ID {
				t.Fatalf("keep-last 1: keep %d remove %d", len(keep), len(remove))
			}
			e.forget(sD1.ID, sAB.ID)

			packsBefore, sizeBefore := e.storage()
			rep := e.prune(Options{Grace: -1, MaxUnused: tt.maxUnused})
			packsAfter, sizeAfter := e.storage()
			t.Logf("packs %d -> %d, bytes %d -> %d; report %+v", packsBefore, packsAfter, sizeBefore, sizeAfter, rep)
			if sizeAfter >= sizeBefore || rep.PacksDeleted == 0 || rep.BytesFreed == 0 {
				t.Fatalf("storage did not shrink: %d -> %d bytes", sizeBefore, sizeAfter)
			}
			if (rep.PacksRepacked > 0) != tt.wantRepack {
				t.Fatalf("repacked %d packs, want repack=%v", rep.PacksRepacked, tt.wantRepack)
			}
			if tt.wantRepack && sizeAfter > sizeBefore*6/10 {
				t.Fatalf("with repacking, %d of %d bytes remain", sizeAfter, sizeBefore)
			}
			if n := e.count(backend.PendingFile); n != 0 {
				t.Fatalf("%d pending files remain with no grace window", n)
			}
			e.checkRestores(sA, keepA)
			e.checkRestores(sD2, keepD)
			e.checkConsistent(tt.wantRepack)

			// A second prune finds nothing more to do (never repack: the
			// partly used packs stay).
			rep = e.prune(Options{Grace: -1, MaxUnused: tt.maxUnused})
			if rep.PacksDeleted != 0 || rep.PacksRepacked != 0 || rep.PacksMarked != 0 {
				t.Fatalf("second prune did something: %+v", rep)
			}
			// And a new backup afterwards still works and restores.
			more := e.writeFiles("e", 3, 50<<10)
			s5 := e.backup("e")
			e.checkRestores(s5, more)
			e.checkRestores(sA, keepA)
		})
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	e := newEnv(t)
	e.writeFiles("a", 8, 100<<10)
	s1 := e.backup("a")
	e.forget(s1.ID)
	before := snapshotBackend(t, e.be)
	rep := e.prune(Options{Grace: -1, DryRun: true})
	if rep.PacksMarked == 0 || !rep.DryRun {
		t.Fatalf("dry run reports nothing to do: %+v", rep)
	}
	if after := snapshotBackend(t, e.be); !equalFiles(before, after) {
		t.Fatal("dry run changed the repository")
	}
}

func snapshotBackend(t *testing.T, be backend.Backend) map[backend.Handle]int64 {
	out := map[backend.Handle]int64{}
	for _, ft := range backend.AllFileTypes {
		be.List(context.Background(), ft, func(fi backend.FileInfo) error {
			out[backend.Handle{Type: ft, Name: fi.Name}] = fi.Size
			return nil
		})
	}
	return out
}

func equalFiles(a, b map[backend.Handle]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestGraceWindow(t *testing.T) {
	e := newEnv(t)
	gone := e.writeFiles("a", 10, 100<<10)
	s1 := e.backup("a")
	_ = gone
	e.forget(s1.ID)
	_, size0 := e.storage()

	rep := e.prune(Options{}) // default grace: 30 minutes
	if rep.PacksMarked == 0 || rep.PacksDeleted != 0 {
		t.Fatalf("mark: %+v", rep)
	}
	if _, size := e.storage(); size != size0 {
		t.Fatal("packs deleted before the grace window")
	}
	if e.count(backend.PendingFile) != 1 {
		t.Fatal("no pending file")
	}
	// New backups no longer deduplicate against marked packs: backing up
	// the same content again uploads it anew, and it survives the sweep.
	s2 := e.backup("a")
	if s2.Summary.BytesAdded == 0 {
		t.Fatal("backup after the mark deduplicated against marked packs")
	}

	for _, tc := range []struct {
		advance     time.Duration
		wantDeleted bool
	}{
		{29 * time.Minute, false},
		{2 * time.Minute, true},
	} {
		e.clk.Add(tc.advance)
		rep = e.prune(Options{})
		if (rep.PacksDeleted > 0) != tc.wantDeleted {
			t.Fatalf("after %v more: %+v", tc.advance, rep)
		}
		if !tc.wantDeleted && (len(rep.Waiting) != 1 || rep.Waiting[0].Reason == "") {
			t.Fatalf("waiting marks not reported: %+v", rep.Waiting)
		}
	}
	if e.count(backend.PendingFile) != 0 {
		t.Fatal("pending file not removed after the sweep")
	}
	e.checkRestores(s2, gone)
	e.checkConsistent(true)
}

// A backup that loaded the index before the mark deduplicates against
// marked packs; its snapshot must keep them alive, whether it finished
// before the sweep or is still running when the sweep comes.
func TestBackupStartedBeforeMark(t *testing.T) {
	for _, running := range []bool{false, true} {
		t.Run(fmt.Sprintf("still running at sweep=%v", running), func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			data := e.writeFiles("a", 10, 100<<10)
			s1 := e.backup("a")
			e.forget(s1.ID) // a's data is now unreferenced

			// Backup B announces itself and loads the index (it sees a's packs).
			e.clk.Add(time.Minute)
			rb := e.open()
			lock, err := rb.Lock(ctx, repo.LockBackup, repo.WithRefresh(0))
			if err != nil {
				t.Fatal(err)
			}
			if err := rb.LoadIndex(ctx); err != nil {
				t.Fatal(err)
			}

			// Prune marks a's packs while B runs.
			e.clk.Add(time.Minute)
			rep := e.prune(Options{})
			if rep.PacksMarked == 0 {
				t.Fatalf("nothing marked: %+v", rep)
			}

			// B backs up the same content: everything deduplicates against
			// the marked packs, trees included.
			finishB := func() *repo.Snapshot {
				res, err := archiver.New(rb, archiver.Options{Host: "erp01"}).Backup(ctx, []string{filepath.Join(e.dir, "a")})
				if err != nil {
					t.Fatal(err)
				}
				if res.Snapshot.Summary.BytesAdded != 0 {
					t.Fatalf("B uploaded %d bytes; the test needs it to deduplicate", res.Snapshot.Summary.BytesAdded)
				}
				if err := lock.Unlock(ctx); err != nil {
					t.Fatal(err)
				}
				return res.Snapshot
			}
			var sb *repo.Snapshot
			if !running {
				sb = finishB()
			}

			e.clk.Add(31 * time.Minute)
			if running {
				if err := lock.Refresh(ctx); err != nil { // B is alive and beating
					t.Fatal(err)
				}
				rep = e.prune(Options{})
				if rep.PacksDeleted != 0 || len(rep.Waiting) != 1 {
					t.Fatalf("sweep did not wait for the running backup: %+v", rep)
				}
				sb = finishB()
				e.clk.Add(time.Minute)
			}
			rep = e.prune(Options{})
			if rep.PacksKeptBack == 0 {
				t.Fatalf("no marked pack kept back: %+v", rep)
			}
			if e.count(backend.PendingFile) != 0 {
				t.Fatal("pending file left")
			}
			e.checkRestores(sb, data)
			e.checkConsistent(false)

			// Once B's snapshot is forgotten too, the data goes for good.
			e.forget(sb.ID)
			rep = e.prune(Options{Grace: -1})
			if packs, _ := e.storage(); packs != 0 || rep.PacksDeleted == 0 {
				t.Fatalf("%d packs remain after forgetting everything: %+v", packs, rep)
			}
		})
	}
}

func TestLocksAndPrune(t *testing.T) {
	host, _ := os.Hostname()
	tests := []struct {
		name       string
		kind       string
		owner      repo.LockOption
		wantLocked bool
		wantSwept  bool
	}{
		{"live prune lock blocks a second prune", repo.LockPrune, repo.WithOwner(host, os.Getpid()), true, false},
		{"live exclusive lock on another host blocks prune", repo.LockExclusive, repo.WithOwner("nas02", 1), true, false},
		{"stale prune lock of a dead process does not block", repo.LockPrune, repo.WithOwner(host, deadPID), false, true},
		{"stale backup lock of a dead process does not hold the sweep", repo.LockBackup, repo.WithOwner(host, deadPID), false, true},
		{"live backup lock started before the mark holds the sweep", repo.LockBackup, repo.WithOwner("nas02", 1), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			e.writeFiles("a", 4, 100<<10)
			s1 := e.backup("a")
			e.forget(s1.ID)
			if _, err := e.open().Lock(ctx, tt.kind, tt.owner, repo.WithRefresh(0)); err != nil {
				t.Fatal(err)
			}
			rep, err := Prune(ctx, e.open(), Options{Grace: -1})
			if tt.wantLocked {
				if !errors.Is(err, repo.ErrLocked) {
					t.Fatalf("prune: %v, want ErrLocked", err)
				}
				if e.count(backend.PendingFile) != 0 {
					t.Fatal("locked prune wrote a pending file")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (rep.PacksDeleted > 0) != tt.wantSwept {
				t.Fatalf("swept=%v, want %v: %+v", rep.PacksDeleted > 0, tt.wantSwept, rep)
			}
			if e.count(backend.LockFile) != 1 {
				t.Fatal("prune left its lock behind")
			}
		})
	}
}

func TestTwoPrunesAtOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.writeFiles("a", 4, 100<<10)
	e.backup("a")
	held, err := e.open().Lock(ctx, repo.LockPrune, repo.WithRefresh(0))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Prune(ctx, e.open(), Options{})
	if !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("second prune: %v", err)
	}
	held.Unlock(ctx)
	// Truly concurrent prunes never both run their mark at once: at least
	// one of any overlapping pair is refused, and whatever runs keeps the
	// repository consistent.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Prune(ctx, e.open(), Options{Grace: -1})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, repo.ErrLocked) {
			t.Fatal(err)
		}
	}
	e.checkConsistent(true)
}

// A backup killed after uploading packs but before writing their index
// leaves unreferenced packs; prune removes them after the grace window,
// and the dead backup's lock does not hold it back.
func TestInterruptedBackupLeftovers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	data := e.writeFiles("a", 4, 100<<10)
	s1 := e.backup("a")

	host, _ := os.Hostname()
	r := e.openIndexed()
	if _, err := r.Lock(ctx, repo.LockBackup, repo.WithOwner(host, deadPID), repo.WithRefresh(0)); err != nil {
		t.Fatal(err)
	}
	indexBefore := map[string]bool{}
	e.be.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error { indexBefore[fi.Name] = true; return nil })
	for i := 0; i < 40; i++ {
		b := make([]byte, 50<<10)
		for j := range b {
			b[j] = byte(e.rng.Uint32())
		}
		if _, _, err := r.SaveBlob(ctx, repo.DataBlob, r.BlobID(b), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The kill: the index files written for these packs never happened.
	e.be.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error {
		if !indexBefore[fi.Name] {
			e.be.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: fi.Name})
		}
		return nil
	})
	packs0, _ := e.storage()

	rep := e.prune(Options{})
	if rep.PacksUnindexed == 0 || rep.PacksDeleted != 0 {
		t.Fatalf("mark: %+v", rep)
	}
	e.clk.Add(31 * time.Minute)
	rep = e.prune(Options{})
	packs1, _ := e.storage()
	if rep.PacksDeleted == 0 || packs1 >= packs0 {
		t.Fatalf("leftovers not removed: %d -> %d packs, %+v", packs0, packs1, rep)
	}
	e.checkConsistent(true)
	e.checkRestores(s1, data)
}

func TestPruneRefusesLoadedIndex(t *testing.T) {
	e := newEnv(t)
	e.writeFiles("a", 1, 10<<10)
	e.backup("a")
	if _, err := Prune(context.Background(), e.openIndexed(), Options{}); !errors.Is(err, ErrIndexLoaded) {
		t.Fatalf("got %v", err)
	}
}
