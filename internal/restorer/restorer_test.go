package restorer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/archiver"
	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/mem"
	"github.com/einvault/einvault/internal/crypto"
	"github.com/einvault/einvault/internal/repo"
	"golang.org/x/sys/unix"
)

var testKDF = crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1}

func testRepo(t testing.TB) *repo.Repository {
	t.Helper()
	r, err := repo.Init(context.Background(), mem.New(), []byte("pw"), repo.Options{KDF: testKDF, PackSize: 1 << 20,
		Chunker: repo.ChunkerParams{Algorithm: "fastcdc-v1.0.0", Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func writeFile(t testing.TB, p string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

var oldTime = time.Date(2021, 3, 4, 5, 6, 7, 123456789, time.UTC)

// makeSource builds a varied tree and returns its path.
func makeSource(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	rng := rand.New(rand.NewPCG(7, 8))
	for y := 2023; y <= 2024; y++ {
		for m := 1; m <= 3; m++ {
			for i := 0; i < 5; i++ {
				p := filepath.Join(src, "invoices", itoa(y), itoa(m), "inv"+itoa(i)+".xml")
				writeFile(t, p, []byte(strings.Repeat("<HDon>"+itoa(y*100+m*10+i)+"</HDon>", 100+rng.IntN(300))), 0o644)
			}
		}
	}
	writeFile(t, filepath.Join(src, "big.bin"), randBytes(rng, 1_500_000), 0o640)
	// A file whose content repeats one chunk (the same blob at many offsets).
	chunk := randBytes(rng, 300_000)
	writeFile(t, filepath.Join(src, "repeat.bin"), bytes.Repeat(chunk, 4), 0o600)
	writeFile(t, filepath.Join(src, "readonly.txt"), []byte("read only"), 0o444)
	writeFile(t, filepath.Join(src, "script.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	writeFile(t, filepath.Join(src, "empty"), nil, 0o644)
	if err := os.MkdirAll(filepath.Join(src, "emptydir", "nested-empty"), 0o750); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "links", "a"), []byte("hard linked content"), 0o644)
	if err := os.Link(filepath.Join(src, "links", "a"), filepath.Join(src, "links", "b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(src, "links", "a"), filepath.Join(src, "invoices", "c-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../big.bin", filepath.Join(src, "links", "rel")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent/abs/target", filepath.Join(src, "links", "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o620); err != nil {
		t.Fatal(err)
	}
	// Fixed, old times everywhere, deepest first.
	var all []string
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		all = append(all, p)
		return err
	})
	for i := len(all) - 1; i >= 0; i-- {
		tm := oldTime.Add(time.Duration(i) * time.Hour)
		if err := lchtimes(all[i], tm); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(src, "emptydir"), 0o700); err != nil {
		t.Fatal(err)
	}
	lchtimes(filepath.Join(src, "emptydir"), oldTime)
	return src
}

func lchtimes(p string, tm time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(tm.UnixNano()), unix.NsecToTimespec(tm.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func tarNames(rd io.Reader) (map[string]bool, error) {
	names := map[string]bool{}
	tr := tar.NewReader(rd)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names, nil
		}
		if err != nil {
			return nil, err
		}
		names[h.Name] = true
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func backup(t testing.TB, r *repo.Repository, paths ...string) *repo.Snapshot {
	t.Helper()
	res, err := archiver.New(r, archiver.Options{Host: "test"}).Backup(context.Background(), paths)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Unreadable) > 0 {
		t.Fatalf("unreadable: %+v", res.Unreadable)
	}
	return res.Snapshot
}

// compareTrees checks that got has exactly the entries, contents and
// metadata of want (the roots' own metadata excepted).
func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	inodes := map[uint64]string{} // source inode -> first relative path
	gotInodes := map[string]uint64{}
	seen := map[string]bool{}
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		seen[rel] = true
		if rel == "." {
			return nil
		}
		g := filepath.Join(got, rel)
		wi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		gi, err := os.Lstat(g)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if wi.Mode() != gi.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, gi.Mode(), wi.Mode())
		}
		if !wi.ModTime().Equal(gi.ModTime()) {
			t.Errorf("%s: mtime %v, want %v", rel, gi.ModTime(), wi.ModTime())
		}
		ws, gs := wi.Sys().(*syscall.Stat_t), gi.Sys().(*syscall.Stat_t)
		if ws.Uid != gs.Uid || ws.Gid != gs.Gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, gs.Uid, gs.Gid, ws.Uid, ws.Gid)
		}
		switch {
		case wi.Mode().IsRegular():
			wb, _ := os.ReadFile(p)
			gb, err := os.ReadFile(g)
			if err != nil || !bytes.Equal(wb, gb) {
				t.Errorf("%s: content differs (%d vs %d bytes, %v)", rel, len(gb), len(wb), err)
			}
			if ws.Nlink > 1 {
				if first, ok := inodes[ws.Ino]; ok {
					if gotInodes[first] != gs.Ino {
						t.Errorf("%s: not a hard link to %s", rel, first)
					}
				} else {
					inodes[ws.Ino] = rel
					gotInodes[rel] = gs.Ino
				}
				if gs.Nlink != ws.Nlink {
					t.Errorf("%s: %d links, want %d", rel, gs.Nlink, ws.Nlink)
				}
			}
		case wi.Mode()&fs.ModeSymlink != 0:
			wl, _ := os.Readlink(p)
			gl, _ := os.Readlink(g)
			if wl != gl {
				t.Errorf("%s: link %q, want %q", rel, gl, wl)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(got, p)
		if !seen[rel] {
			t.Errorf("unexpected entry %s in the target", rel)
		}
		return nil
	})
}

func restore(t *testing.T, r *repo.Repository, snap *repo.Snapshot, sub, target string, opts Options) (*Report, error) {
	t.Helper()
	rep, err := New(r, opts).Restore(context.Background(), snap, sub, target)
	if rep != nil {
		assertNoTemp(t, target)
	}
	return rep, err
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d != nil && strings.HasPrefix(d.Name(), ".einvault-restore-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

func TestRoundTrip(t *testing.T) {
	src := makeSource(t)
	r := testRepo(t)
	snap := backup(t, r, src)

	t.Run("full", func(t *testing.T) {
		target := t.TempDir()
		var calls int
		var last Progress
		rep, err := restore(t, r, snap, "", target, Options{VerifyAfter: true, Progress: func(p Progress) { calls++; last = p }})
		if err != nil {
			t.Fatal(err)
		}
		// A snapshot of /x/y/src restores to TARGET/x/y/src.
		compareTrees(t, src, filepath.Join(target, src))
		if rep.Files != rep.TotalFiles || rep.Files == 0 || rep.HardLinks != 2 || rep.Symlinks != 2 || rep.Special != 1 {
			t.Errorf("report: %+v", rep)
		}
		if rep.Verified == 0 || len(rep.VerifyFailed) > 0 || len(rep.Damaged) > 0 || len(rep.Errors) > 0 {
			t.Errorf("report: %+v", rep)
		}
		if calls == 0 || last.Files != last.TotalFiles || last.Bytes != last.TotalBytes || last.TotalBytes == 0 {
			t.Errorf("progress: %d calls, last %+v", calls, last)
		}
	})
	t.Run("subpath", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "new", "target")
		if _, err := restore(t, r, snap, src, target, Options{Workers: 1}); err != nil {
			t.Fatal(err)
		}
		compareTrees(t, src, target)
	})
	t.Run("subdir", func(t *testing.T) {
		target := t.TempDir()
		if _, err := restore(t, r, snap, src+"/invoices/2024", target, Options{}); err != nil {
			t.Fatal(err)
		}
		compareTrees(t, filepath.Join(src, "invoices", "2024"), target)
	})
	t.Run("single file", func(t *testing.T) {
		target := t.TempDir()
		if _, err := restore(t, r, snap, src+"/big.bin", target, Options{}); err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(filepath.Join(src, "big.bin"))
		got, err := os.ReadFile(filepath.Join(target, "big.bin"))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("single file: %v", err)
		}
	})
	t.Run("missing subpath", func(t *testing.T) {
		_, err := restore(t, r, snap, src+"/nope", t.TempDir(), Options{})
		if err == nil || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("err = %v", err)
		}
	})
}

func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func TestIncludeExclude(t *testing.T) {
	src := filepath.Join(t.TempDir(), "data")
	for _, p := range []string{"a/x.xml", "a/y.pdf", "b/x.xml", "b/c/z.xml", "b/c/w.pdf", "top.xml"} {
		writeFile(t, filepath.Join(src, p), []byte(p), 0o644)
	}
	r := testRepo(t)
	snap := backup(t, r, src)
	tests := []struct {
		name             string
		include, exclude []string
		want             string
	}{
		{"all", nil, nil, "a/x.xml a/y.pdf b/c/w.pdf b/c/z.xml b/x.xml top.xml"},
		{"include base name", []string{"*.xml"}, nil, "a/x.xml b/c/z.xml b/x.xml top.xml"},
		{"include dir selects subtree", []string{"b"}, nil, "b/c/w.pdf b/c/z.xml b/x.xml"},
		{"include absolute", []string{src + "/b/c"}, nil, "b/c/w.pdf b/c/z.xml"},
		{"include relative path", []string{"c/*.pdf"}, nil, "b/c/w.pdf"},
		{"exclude base name", nil, []string{"*.pdf"}, "a/x.xml b/c/z.xml b/x.xml top.xml"},
		{"exclude dir skips subtree", nil, []string{"c"}, "a/x.xml a/y.pdf b/x.xml top.xml"},
		{"exclude wins", []string{"b"}, []string{"*.pdf"}, "b/c/z.xml b/x.xml"},
		{"nothing", []string{"*.doc"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := t.TempDir()
			rep, err := restore(t, r, snap, src, target, Options{Include: tt.include, Exclude: tt.exclude})
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(listFiles(t, target), " ")
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if int(rep.Files) != len(strings.Fields(tt.want)) {
				t.Fatalf("report files %d", rep.Files)
			}
			if tt.want == "" {
				if ents, _ := os.ReadDir(target); len(ents) != 0 {
					t.Fatalf("empty restore created %v", ents)
				}
			}
		})
	}
	if _, err := New(r, Options{Include: []string{"[bad"}}).Restore(context.Background(), snap, "", t.TempDir()); err == nil {
		t.Fatal("bad pattern accepted")
	}
}

func TestOverwrite(t *testing.T) {
	src := filepath.Join(t.TempDir(), "data")
	writeFile(t, filepath.Join(src, "a.xml"), []byte("original a"), 0o644)
	writeFile(t, filepath.Join(src, "d", "b.xml"), []byte("original b"), 0o644)
	r := testRepo(t)
	snap := backup(t, r, src)

	target := t.TempDir()
	outside := filepath.Join(t.TempDir(), "outside.txt")
	writeFile(t, outside, []byte("outside"), 0o644)
	writeFile(t, filepath.Join(target, "a.xml"), []byte("local change"), 0o644)
	if err := os.Mkdir(filepath.Join(target, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A symlink where the snapshot has a file: never written through.
	if err := os.Symlink(outside, filepath.Join(target, "d", "b.xml")); err != nil {
		t.Fatal(err)
	}

	rep, err := restore(t, r, snap, src, target, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.SkippedExisting != 2 || rep.Files != 0 || len(rep.Skipped) != 2 || rep.Skipped[0].Reason != "exists, not overwritten" {
		t.Fatalf("report: %+v", rep)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "a.xml")); string(b) != "local change" {
		t.Fatalf("a.xml overwritten without --overwrite: %q", b)
	}

	rep, err = restore(t, r, snap, src, target, Options{Overwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Files != 2 || rep.SkippedExisting != 0 {
		t.Fatalf("report: %+v", rep)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "a.xml")); string(b) != "original a" {
		t.Fatalf("a.xml = %q", b)
	}
	fi, err := os.Lstat(filepath.Join(target, "d", "b.xml"))
	if err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("symlink not replaced by the file: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "outside" {
		t.Fatalf("wrote through a symlink: outside = %q", b)
	}
}

// damage flips one byte of the sealed blob holding the first blob of the
// file at snapshot path p, or removes its pack.
func damage(t *testing.T, r *repo.Repository, snap *repo.Snapshot, p string, remove bool) repo.ID {
	t.Helper()
	ctx := context.Background()
	rs := &run{r: New(r, Options{}), ctx: ctx}
	n, err := findNode(rs, snap.Tree, p)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := r.Index().Lookup(n.Content[0])
	if !ok {
		t.Fatal("blob not indexed")
	}
	pack := r.Index().PackOf(e).ID
	h := backend.Handle{Type: backend.PackFile, Name: pack.String()}
	if remove {
		if err := r.Backend().Remove(ctx, h); err != nil {
			t.Fatal(err)
		}
		return pack
	}
	data, err := backend.LoadAll(ctx, r.Backend(), h)
	if err != nil {
		t.Fatal(err)
	}
	data[e.Offset+e.Length/2] ^= 0x40
	if err := r.Backend().Save(ctx, h, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	return pack
}

func TestDamagedData(t *testing.T) {
	for _, remove := range []bool{false, true} {
		name := "flipped byte"
		if remove {
			name = "missing pack"
		}
		t.Run(name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "data")
			rng := rand.New(rand.NewPCG(1, 1))
			for i := 0; i < 300; i++ {
				writeFile(t, filepath.Join(src, "d"+itoa(i%7), "f"+itoa(i)), randBytes(rng, 3000+rng.IntN(9000)), 0o644)
			}
			writeFile(t, filepath.Join(src, "big"), randBytes(rng, 2_000_000), 0o644)
			r := testRepo(t)
			snap := backup(t, r, src)
			victim := src + "/d3/f10"
			damage(t, r, snap, victim, remove)

			target := t.TempDir()
			rep, err := restore(t, r, snap, src, target, Options{})
			if !errors.Is(err, repo.ErrDamaged) {
				t.Fatalf("err = %v, want ErrDamaged", err)
			}
			if len(rep.Damaged) == 0 || (!remove && len(rep.Damaged) != 1) {
				t.Fatalf("damaged: %+v", rep.Damaged)
			}
			damaged := map[string]bool{}
			for _, d := range rep.Damaged {
				damaged[d.Path] = true
			}
			if !damaged[victim] {
				t.Fatalf("victim not reported: %+v", rep.Damaged)
			}
			if remove && !strings.Contains(rep.Damaged[0].Reason, "missing") {
				t.Fatalf("reason: %s", rep.Damaged[0].Reason)
			}
			// Every other file is intact; damaged ones are absent.
			n := 0
			filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
				if d.IsDir() {
					return nil
				}
				rel, _ := filepath.Rel(src, p)
				got, gerr := os.ReadFile(filepath.Join(target, rel))
				if damaged[p] {
					if !errors.Is(gerr, fs.ErrNotExist) {
						t.Errorf("damaged file %s present in the target", rel)
					}
					return nil
				}
				want, _ := os.ReadFile(p)
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs: %v", rel, gerr)
				}
				n++
				return nil
			})
			if uint64(n) != rep.Files {
				t.Fatalf("report says %d files, %d intact", rep.Files, n)
			}
		})
	}
}

func TestDump(t *testing.T) {
	src := makeSource(t)
	r := testRepo(t)
	snap := backup(t, r, src)
	var buf bytes.Buffer
	if err := New(r, Options{}).Dump(context.Background(), snap, src+"/big.bin", &buf); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(src, "big.bin"))
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatal("dump differs")
	}
	buf.Reset()
	if err := New(r, Options{}).Dump(context.Background(), snap, src+"/invoices", &buf); err != nil {
		t.Fatal(err)
	}
	names, err := tarNames(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !names["2024/3/inv4.xml"] || !names["2023/"] || !names["c-link"] {
		t.Fatalf("tar names: %v", names)
	}
	if err := New(r, Options{}).Dump(context.Background(), snap, src+"/links/rel", io.Discard); err == nil {
		t.Fatal("dump of a symlink accepted")
	}
}

func TestOwnersInSetgidTarget(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owners are restored only as root")
	}
	r := testRepo(t)
	f := fileNode(t, r, "f", "data")
	g := fileNode(t, r, "g", "data2")
	g.UID, g.GID = 4321, 8765
	snap := snapshotOf(t, r, dirNode(t, r, "d", f), g)
	target := t.TempDir()
	if err := os.Chown(target, 0, 5555); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(target, 0o755|fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	if _, err := restore(t, r, snap, "", target, Options{}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string][2]uint32{"d/f": {0, 0}, "g": {4321, 8765}, "d": {0, 0}} {
		fi, err := os.Lstat(filepath.Join(target, p))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != want[0] || st.Gid != want[1] {
			t.Errorf("%s: owner %d:%d, want %d:%d", p, st.Uid, st.Gid, want[0], want[1])
		}
	}
}
