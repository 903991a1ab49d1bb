package checker

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/mem"
	"github.com/einvault/einvault/internal/crypto"
	"github.com/einvault/einvault/internal/repo"
)

var (
	testKDF = crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1}
	testPW  = []byte("pw")
)

// fixture is a small repository with two snapshots sharing a subtree.
type fixture struct {
	be    *mem.Backend
	snaps []*repo.Snapshot
	// blobs maps every file path (as in a snapshot) to its content blobs.
	blobs map[string][]repo.ID
	key2  string // a second key file
}

type dir struct {
	files map[string][]byte
	dirs  map[string]*dir
}

func (d *dir) put(p string, data []byte) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	for _, name := range parts[:len(parts)-1] {
		if d.dirs == nil {
			d.dirs = map[string]*dir{}
		}
		if d.dirs[name] == nil {
			d.dirs[name] = &dir{}
		}
		d = d.dirs[name]
	}
	if d.files == nil {
		d.files = map[string][]byte{}
	}
	d.files[parts[len(parts)-1]] = data
}

func (f *fixture) save(t *testing.T, r *repo.Repository, d *dir, prefix string) repo.ID {
	t.Helper()
	ctx := context.Background()
	tree := &repo.Tree{}
	mtime := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	for name, data := range d.files {
		n := &repo.Node{Name: name, Type: repo.NodeFile, Mode: 0o644, ModTime: mtime, Size: uint64(len(data))}
		for off := 0; off < len(data); off += 48 << 10 {
			chunk := data[off:min(len(data), off+48<<10)]
			id := r.BlobID(chunk)
			if _, _, err := r.SaveBlob(ctx, repo.DataBlob, id, chunk); err != nil {
				t.Fatal(err)
			}
			n.Content = append(n.Content, id)
		}
		f.blobs[prefix+"/"+name] = n.Content
		tree.Nodes = append(tree.Nodes, n)
	}
	for name, sub := range d.dirs {
		id := f.save(t, r, sub, prefix+"/"+name)
		tree.Nodes = append(tree.Nodes, &repo.Node{Name: name, Type: repo.NodeDir, Mode: 0o755 | 1<<31, ModTime: mtime, Subtree: &id})
	}
	id, err := r.SaveTree(ctx, tree)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	be := mem.New()
	r, err := repo.Init(ctx, be, testPW, repo.Options{KDF: testKDF, PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{be: be, blobs: map[string][]repo.ID{}}
	if f.key2, err = r.AddKey(ctx, []byte("second"), "password", "second"); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 8))
	root := &dir{}
	for m := 1; m <= 3; m++ {
		for i := 0; i < 8; i++ {
			root.put(fmt.Sprintf("/srv/invoices/2024/%02d/inv-%d.xml", m, i), randBytes(rng, 3000+rng.IntN(9000)))
		}
		root.put(fmt.Sprintf("/srv/invoices/2024/%02d/render.pdf", m), randBytes(rng, 200_000+rng.IntN(200_000)))
	}
	root.put("/srv/invoices/2024/03/x.xml", randBytes(rng, 5000))
	root.put("/srv/db/dump.sql", randBytes(rng, 900_000))
	times := []time.Time{time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 4, 2, 0, 0, 0, 0, time.UTC)}
	for i, tm := range times {
		if i == 1 {
			root.put("/srv/invoices/2024/04/inv-0.xml", randBytes(rng, 4000))
			root.put("/srv/db/dump.sql", randBytes(rng, 700_000))
		}
		tree := f.save(t, r, root, "")
		if err := r.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		s := &repo.Snapshot{Time: tm, Host: "h", Paths: []string{"/srv"}, Source: "files", Kind: repo.KindFull, Tree: tree}
		if _, err := r.SaveSnapshot(ctx, s); err != nil {
			t.Fatal(err)
		}
		f.snaps = append(f.snaps, s)
	}
	return f
}

// clone returns an independent copy of the fixture's storage.
func (f *fixture) clone(t *testing.T) *mem.Backend {
	t.Helper()
	ctx := context.Background()
	be := mem.New()
	for _, ft := range backend.AllFileTypes {
		err := f.be.List(ctx, ft, func(fi backend.FileInfo) error {
			h := backend.Handle{Type: ft, Name: fi.Name}
			data, err := backend.LoadAll(ctx, f.be, h)
			if err != nil {
				return err
			}
			return be.Save(ctx, h, bytes.NewReader(data), int64(len(data)))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return be
}

func open(t *testing.T, be backend.Backend) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), be, testPW, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func check(t *testing.T, be backend.Backend, opts Options) *Report {
	t.Helper()
	rep, err := Check(context.Background(), open(t, be), opts)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func names(t *testing.T, be backend.Backend, ft backend.FileType) []string {
	t.Helper()
	var out []string
	if err := be.List(context.Background(), ft, func(fi backend.FileInfo) error { out = append(out, fi.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// packOf returns the pack holding blob id and the blob's offset.
func packOf(t *testing.T, be backend.Backend, id repo.ID) (repo.ID, int64) {
	t.Helper()
	r := open(t, be)
	if err := r.LoadIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	e, ok := r.Index().Lookup(id)
	if !ok {
		t.Fatalf("blob %s not indexed", id.Short())
	}
	return r.Index().PackOf(e).ID, int64(e.Offset)
}

// mutation changes one stored file.
type mutation struct {
	name string
	fn   func(data []byte) []byte // nil deletes
}

func flipAt(pos func(n int) int) func([]byte) []byte {
	return func(b []byte) []byte {
		b = bytes.Clone(b)
		b[pos(len(b))] ^= 0xff
		return b
	}
}

func mutate(t *testing.T, be backend.Backend, h backend.Handle, m mutation) {
	t.Helper()
	ctx := context.Background()
	if m.fn == nil {
		if err := be.Remove(ctx, h); err != nil {
			t.Fatal(err)
		}
		return
	}
	data, err := backend.LoadAll(ctx, be, h)
	if err != nil {
		t.Fatal(err)
	}
	data = m.fn(data)
	if err := be.Save(ctx, h, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

func findError(rep *Report, kind, file string) *Problem {
	for _, p := range rep.Errors {
		if (kind == "" || p.Kind == kind) && (file == "" || p.File == file) {
			return p
		}
	}
	return nil
}

func affectedPaths(rep *Report) []string {
	var out []string
	for _, p := range rep.Errors {
		for _, a := range p.Affected {
			out = append(out, a.String())
		}
	}
	return out
}

func dump(rep *Report) string {
	var b strings.Builder
	_ = rep.WriteText(&b)
	return b.String()
}

func TestCleanRepository(t *testing.T) {
	f := newFixture(t)
	packs := len(names(t, f.be, backend.PackFile))
	for _, tc := range []struct {
		name      string
		opts      Options
		wantRead  func(int) bool
		storage   bool
		wantPhase string
	}{
		{name: "structural", wantRead: func(n int) bool { return n == 0 }},
		{name: "read-data", opts: Options{ReadData: true}, wantRead: func(n int) bool { return n == packs }, wantPhase: "read-data"},
		{name: "subset-percent", opts: Options{ReadDataSubset: Subset{Fraction: 0.5}}, wantRead: func(n int) bool { return n == (packs+1)/2 }},
		{name: "subset-bucket", opts: Options{ReadDataSubset: Subset{N: 1, Of: 2}}, wantRead: func(n int) bool { return n <= packs }},
		{name: "one-worker", opts: Options{ReadData: true, Workers: 1}, wantRead: func(n int) bool { return n == packs }},
		{name: "storage-only", opts: Options{StorageOnly: true}, wantRead: func(n int) bool { return n == packs }, storage: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var phases []string
			var calls int
			tc.opts.Phase = func(p string) { phases = append(phases, p) }
			tc.opts.Progress = func(done, total int64) { calls++ }
			rep := check(t, f.be, tc.opts)
			if rep.Damaged() {
				t.Fatalf("clean repository reported damaged:\n%s", dump(rep))
			}
			if len(rep.Info) != 0 {
				t.Fatalf("unexpected information:\n%s", dump(rep))
			}
			if !tc.wantRead(rep.Stats.PacksRead) {
				t.Fatalf("read %d of %d packs", rep.Stats.PacksRead, packs)
			}
			if !tc.storage && (rep.Stats.Snapshots != 2 || rep.Stats.Trees == 0 || rep.Stats.DataBlobRefs == 0) {
				t.Fatalf("stats %+v", rep.Stats)
			}
			if tc.opts.ReadData && rep.Stats.BlobsOpened == 0 {
				t.Fatal("no blob opened")
			}
			if calls == 0 {
				t.Fatal("progress never reported")
			}
			if tc.wantPhase != "" && !strings.Contains(strings.Join(phases, ","), tc.wantPhase) {
				t.Fatalf("phases %v", phases)
			}
			if !strings.Contains(rep.Summary(), "No errors") {
				t.Fatalf("summary: %s", rep.Summary())
			}
		})
	}
}

func TestSubsetBucketsCoverEveryPackOnce(t *testing.T) {
	f := newFixture(t)
	seen := map[int]int{}
	total := 0
	for n := 1; n <= 3; n++ {
		rep := check(t, f.be, Options{ReadDataSubset: Subset{N: n, Of: 3}})
		if rep.Damaged() {
			t.Fatal(dump(rep))
		}
		seen[n] = rep.Stats.PacksRead
		total += rep.Stats.PacksRead
	}
	if want := len(names(t, f.be, backend.PackFile)); total != want {
		t.Fatalf("buckets read %v packs, %d in all, want %d", seen, total, want)
	}
}

func TestParseSubset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Subset
		err  bool
	}{
		{in: "10%", want: Subset{Fraction: 0.1}},
		{in: "2.5%", want: Subset{Fraction: 0.025}},
		{in: "100%", want: Subset{Fraction: 1}},
		{in: "0.5", want: Subset{Fraction: 0.5}},
		{in: "2/7", want: Subset{N: 2, Of: 7}},
		{in: "1/1", want: Subset{N: 1, Of: 1}},
		{in: "0%", err: true},
		{in: "101%", err: true},
		{in: "5", err: true},
		{in: "0/3", err: true},
		{in: "4/3", err: true},
		{in: "a/b", err: true},
		{in: "NaN%", err: true},
		{in: "", err: true},
	} {
		got, err := ParseSubset(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("ParseSubset(%q): err %v", tc.in, err)
			continue
		}
		if !tc.err && got != tc.want {
			t.Errorf("ParseSubset(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	if s := (Subset{N: 2, Of: 7}).String(); s != "2/7" {
		t.Errorf("String %q", s)
	}
	if s := (Subset{Fraction: 0.1}).String(); s != "10%" {
		t.Errorf("String %q", s)
	}
}

var (
	flips = []mutation{
		{"flip-first", flipAt(func(int) int { return 0 })},
		{"flip-middle", flipAt(func(n int) int { return n / 2 })},
		{"flip-last", flipAt(func(n int) int { return n - 1 })},
		{"flip-near-end", flipAt(func(n int) int { return n - 40 })},
	}
	truncations = []mutation{
		{"truncate-half", func(b []byte) []byte { return bytes.Clone(b[:len(b)/2]) }},
		{"truncate-one", func(b []byte) []byte { return bytes.Clone(b[:len(b)-1]) }},
		{"truncate-empty", func(b []byte) []byte { return nil }},
	}
	deletion = mutation{"delete", nil}
)

func allMutations() []mutation {
	return append(append(append([]mutation{}, flips...), truncations...), deletion)
}

// TestDamagedPack damages the pack holding /srv/invoices/2024/03/x.xml
// and expects the check to name the pack, the damaged blob and the path
// in both snapshots.
func TestDamagedPack(t *testing.T) {
	f := newFixture(t)
	const victim = "/srv/invoices/2024/03/x.xml"
	blob := f.blobs[victim][0]
	pack, off := packOf(t, f.be, blob)
	file := "data/" + pack.String()
	muts := allMutations()
	muts = append(muts, mutation{"flip-in-blob", flipAt(func(int) int { return int(off) + 20 })})
	for _, m := range muts {
		for _, readData := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/read-data=%v", m.name, readData), func(t *testing.T) {
				be := f.clone(t)
				mutate(t, be, backend.Handle{Type: backend.PackFile, Name: pack.String()}, m)
				rep := check(t, be, Options{ReadData: readData})
				// A flipped byte leaves the size as it was: only reading
				// the data can see it.
				if !readData && strings.HasPrefix(m.name, "flip") {
					if rep.Damaged() && findError(rep, "", file) == nil {
						t.Fatalf("unexpected errors:\n%s", dump(rep))
					}
					return
				}
				if !rep.Damaged() {
					t.Fatalf("damage not detected:\n%s", dump(rep))
				}
				p := findError(rep, "", file)
				if p == nil {
					t.Fatalf("no error names %s:\n%s", file, dump(rep))
				}
				// Damage inside the blob area loses the victim's blob;
				// damage to the header or trailer alone leaves every blob
				// readable through the index.
				switch m.name {
				case "delete", "flip-in-blob", "truncate-empty", "flip-first", "truncate-half":
				default:
					return
				}
				if m.name == "truncate-half" || m.name == "flip-first" && off != 0 {
					// Another blob is hit; the victim need not be.
					if len(p.Blobs) == 0 || p.AffectedTotal == 0 {
						t.Fatalf("no damaged blob or path:\n%s", dump(rep))
					}
					return
				}
				if !p.blobSet.Has(blob) {
					t.Fatalf("blob %s not listed as damaged:\n%s", blob.Short(), dump(rep))
				}
				paths := strings.Join(affectedPaths(rep), "\n")
				for _, s := range f.snaps {
					want := "snapshot " + s.ID.Short() + " " + victim
					if !strings.Contains(paths, want) {
						t.Fatalf("affected paths lack %q:\n%s", want, dump(rep))
					}
				}
				if !strings.Contains(dump(rep), "DAMAGE FOUND") {
					t.Fatalf("summary: %s", rep.Summary())
				}
			})
		}
	}
}

// TestDamagedTreePack damages a pack of tree blobs: whole directories are
// lost, and the check says which.
func TestDamagedTreePack(t *testing.T) {
	f := newFixture(t)
	pack, _ := packOf(t, f.be, f.snaps[0].Tree)
	be := f.clone(t)
	mutate(t, be, backend.Handle{Type: backend.PackFile, Name: pack.String()}, deletion)
	for _, readData := range []bool{false, true} {
		rep := check(t, be, Options{ReadData: readData})
		p := findError(rep, KindPackMissing, "data/"+pack.String())
		if p == nil || p.AffectedTotal == 0 {
			t.Fatalf("missing tree pack not reported with paths:\n%s", dump(rep))
		}
		var dirs int
		for _, a := range p.Affected {
			if a.Directory {
				dirs++
			}
		}
		if dirs == 0 {
			t.Fatalf("no lost directory reported:\n%s", dump(rep))
		}
	}
}

func TestDamagedIndexFile(t *testing.T) {
	f := newFixture(t)
	for _, idxName := range names(t, f.be, backend.IndexFile) {
		for _, m := range allMutations() {
			t.Run(idxName[:8]+"/"+m.name, func(t *testing.T) {
				be := f.clone(t)
				mutate(t, be, backend.Handle{Type: backend.IndexFile, Name: idxName}, m)
				rep := check(t, be, Options{})
				if !rep.Damaged() {
					t.Fatalf("damage not detected:\n%s", dump(rep))
				}
				if m.fn != nil && findError(rep, KindIndexDamaged, "index/"+idxName) == nil {
					t.Fatalf("no error names index/%s:\n%s", idxName, dump(rep))
				}
				// The blobs that index listed are now unknown: the paths
				// that need them are named, and their packs show up as
				// unreferenced.
				missing := findError(rep, KindBlobMissing, "")
				if missing == nil || missing.AffectedTotal == 0 {
					t.Fatalf("missing blobs not mapped to paths:\n%s", dump(rep))
				}
				if len(rep.Info) == 0 || !strings.Contains(dump(rep), "do not prune") || strings.Contains(dump(rep), "removes it") {
					t.Fatalf("packs of the lost index not reported as worth keeping:\n%s", dump(rep))
				}
			})
		}
	}
}

func TestDamagedSnapshotFile(t *testing.T) {
	f := newFixture(t)
	for _, s := range f.snaps {
		for _, m := range append(append([]mutation{}, flips...), truncations...) {
			t.Run(s.ID.Short()+"/"+m.name, func(t *testing.T) {
				be := f.clone(t)
				mutate(t, be, backend.Handle{Type: backend.SnapshotFile, Name: s.ID.String()}, m)
				rep := check(t, be, Options{})
				if findError(rep, KindSnapshotDamaged, "snapshots/"+s.ID.String()) == nil || !rep.Damaged() {
					t.Fatalf("no error names snapshots/%s:\n%s", s.ID, dump(rep))
				}
				if rep.Stats.Snapshots != 2 {
					t.Fatalf("stats %+v", rep.Stats)
				}
			})
		}
	}
	// A deleted snapshot file cannot be told apart from 'forget': nothing
	// in the repository refers to snapshots. The check passes; the
	// journal is where a vanished snapshot shows.
	be := f.clone(t)
	mutate(t, be, backend.Handle{Type: backend.SnapshotFile, Name: f.snaps[0].ID.String()}, deletion)
	if rep := check(t, be, Options{}); rep.Damaged() || rep.Stats.Snapshots != 1 {
		t.Fatalf("after deleting a snapshot:\n%s", dump(rep))
	}
}

func TestDamagedKeyFile(t *testing.T) {
	f := newFixture(t)
	keys := names(t, f.be, backend.KeyFile)
	if len(keys) != 2 {
		t.Fatalf("keys %v", keys)
	}
	for _, key := range keys {
		for _, m := range append(append([]mutation{}, flips...), truncations...) {
			t.Run(key[:8]+"/"+m.name, func(t *testing.T) {
				be := f.clone(t)
				mutate(t, be, backend.Handle{Type: backend.KeyFile, Name: key}, m)
				// The other key still opens the repository (testPW opens
				// only the first key; use the second password for it).
				pw := testPW
				if key != f.key2 {
					pw = []byte("second")
				}
				r, err := repo.Open(context.Background(), be, pw, repo.Options{})
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				rep, err := Check(context.Background(), r, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if findError(rep, KindKeyDamaged, "keys/"+key) == nil {
					t.Fatalf("no error names keys/%s:\n%s", key, dump(rep))
				}
				srep, err := CheckStorage(context.Background(), be, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if findError(srep, KindKeyDamaged, "keys/"+key) == nil {
					t.Fatalf("storage-only: no error names keys/%s:\n%s", key, dump(srep))
				}
			})
		}
	}
	// With its only key damaged or deleted, a repository cannot be opened.
	for _, m := range allMutations() {
		t.Run("only-key/"+m.name, func(t *testing.T) {
			be := f.clone(t)
			var other string
			for _, k := range keys {
				if k != f.key2 {
					other = k
				}
			}
			mutate(t, be, backend.Handle{Type: backend.KeyFile, Name: f.key2}, deletion)
			mutate(t, be, backend.Handle{Type: backend.KeyFile, Name: other}, m)
			if r, err := repo.Open(context.Background(), be, testPW, repo.Options{}); err == nil {
				r.Close()
				t.Fatal("repository opened with its only key damaged")
			}
		})
	}
}

func TestDamagedConfig(t *testing.T) {
	f := newFixture(t)
	h := backend.Handle{Type: backend.ConfigFile, Name: "config"}
	data, err := backend.LoadAll(context.Background(), f.be, h)
	if err != nil {
		t.Fatal(err)
	}
	idPos := bytes.Index(data, []byte(`"id": "`)) + 10
	muts := allMutations()
	muts = append(muts, mutation{"flip-id", flipAt(func(int) int { return idPos })})
	for _, m := range muts {
		t.Run(m.name, func(t *testing.T) {
			be := f.clone(t)
			mutate(t, be, h, m)
			if r, err := repo.Open(context.Background(), be, testPW, repo.Options{}); err == nil {
				r.Close()
				t.Fatal("repository opened with a damaged config")
			}
			rep, err := CheckStorage(context.Background(), be, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if findError(rep, KindConfigDamaged, "config") == nil {
				t.Fatalf("storage-only check does not name the config:\n%s", dump(rep))
			}
		})
	}
}

func TestInformationIsNotFailure(t *testing.T) {
	f := newFixture(t)
	be := f.clone(t)
	ctx := context.Background()
	extra := bytes.Repeat([]byte("unreferenced pack"), 100)
	extraID := repo.Hash(extra)
	save := func(ft backend.FileType, name string, data []byte) {
		if err := be.Save(ctx, backend.Handle{Type: ft, Name: name}, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	save(backend.PackFile, extraID.String(), extra)
	save(backend.PackFile, ".tmp-"+extraID.String()+"-123", []byte("partial"))
	save(backend.IndexFile, ".tmp-abc", []byte("partial"))
	save(backend.PendingFile, repo.RandomID().String(), []byte("mark"))
	for _, opts := range []Options{{}, {ReadData: true}, {StorageOnly: true}} {
		rep := check(t, be, opts)
		if rep.Damaged() {
			t.Fatalf("information reported as damage:\n%s", dump(rep))
		}
		kinds := map[string]int{}
		for _, p := range rep.Info {
			kinds[p.Kind]++
		}
		want := map[string]int{KindPackUnreferenced: 1, KindTemporaryFile: 2, KindPendingDeletion: 1}
		if opts.StorageOnly {
			delete(want, KindPackUnreferenced)
		}
		for k, n := range want {
			if kinds[k] != n {
				t.Fatalf("%+v: info kinds %v, want %v:\n%s", opts, kinds, want, dump(rep))
			}
		}
		if !strings.Contains(dump(rep), "No errors") {
			t.Fatal(dump(rep))
		}
	}
}

func TestStorageOnlyDetectsFlippedBytes(t *testing.T) {
	f := newFixture(t)
	for _, ft := range []backend.FileType{backend.PackFile, backend.IndexFile, backend.SnapshotFile} {
		name := names(t, f.be, ft)[0]
		for _, m := range append(append([]mutation{}, flips...), truncations...) {
			t.Run(string(ft)+"/"+m.name, func(t *testing.T) {
				be := f.clone(t)
				mutate(t, be, backend.Handle{Type: ft, Name: name}, m)
				rep, err := CheckStorage(context.Background(), be, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if !rep.Damaged() || !rep.StorageOnly {
					t.Fatalf("not detected:\n%s", dump(rep))
				}
				file := path.Join(string(ft), name)
				if findError(rep, "", file) == nil {
					t.Fatalf("no error names %s:\n%s", file, dump(rep))
				}
			})
		}
	}
}

func TestMaxListedCapsAffectedPaths(t *testing.T) {
	f := newFixture(t)
	be := f.clone(t)
	for _, idx := range names(t, be, backend.IndexFile) {
		mutate(t, be, backend.Handle{Type: backend.IndexFile, Name: idx}, deletion)
	}
	// Both snapshots' root trees are now unknown.
	rep := check(t, be, Options{MaxListed: 1})
	p := findError(rep, KindBlobMissing, "")
	if p == nil || len(p.Affected) != 1 || p.AffectedTotal != 2 || len(p.Blobs) != 1 || p.BlobsTotal != 2 {
		t.Fatalf("caps not applied:\n%s", dump(rep))
	}
	var unref int
	for _, i := range rep.Info {
		if i.Kind == KindPackUnreferenced {
			unref++
		}
	}
	more := fmt.Sprintf("%d more of the same kind", len(names(t, be, backend.PackFile))-1)
	if unref != 2 || !strings.Contains(dump(rep), more) { // 1 listed plus "N more"
		t.Fatalf("info not capped: %d\n%s", unref, dump(rep))
	}
}

func TestCancelled(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Check(ctx, open(t, f.be), Options{ReadData: true}); err == nil {
		t.Fatal("cancelled check succeeded")
	}
}

func TestDamagedDictionary(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	base := f.clone(t)
	r := open(t, base)
	rng := rand.New(rand.NewPCG(3, 4))
	if err := r.AddDictionary(ctx, randBytes(rng, repo.DictMinContent*2)); err != nil {
		t.Fatal(err)
	}
	dicts := names(t, base, backend.DictFile)
	if len(dicts) != 1 {
		t.Fatalf("dictionaries %v", dicts)
	}
	file := "dicts/" + dicts[0]
	for _, m := range append(append([]mutation{}, flips...), truncations...) {
		t.Run(m.name, func(t *testing.T) {
			be := mem.New()
			for _, ft := range backend.AllFileTypes {
				for _, n := range names(t, base, ft) {
					h := backend.Handle{Type: ft, Name: n}
					data, err := backend.LoadAll(ctx, base, h)
					if err != nil {
						t.Fatal(err)
					}
					if err := be.Save(ctx, h, bytes.NewReader(data), int64(len(data))); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Damaged after the repository was opened: the check names it.
			r := open(t, be)
			mutate(t, be, backend.Handle{Type: backend.DictFile, Name: dicts[0]}, m)
			rep, err := Check(ctx, r, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if findError(rep, KindFileDamaged, file) == nil {
				t.Fatalf("no error names %s:\n%s", file, dump(rep))
			}
			srep, err := CheckStorage(ctx, be, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if findError(srep, KindFileDamaged, file) == nil {
				t.Fatalf("storage-only: no error names %s:\n%s", file, dump(srep))
			}
			// The next open goes on without it (everything else stays
			// readable) and the check still names it.
			r2, err := repo.Open(ctx, be, testPW, repo.Options{})
			if err != nil {
				t.Fatalf("open with a damaged dictionary: %v", err)
			}
			defer r2.Close()
			rep2, err := Check(ctx, r2, Options{ReadData: true})
			if err != nil {
				t.Fatal(err)
			}
			if findError(rep2, KindFileDamaged, file) == nil {
				t.Fatalf("after reopening, no error names %s:\n%s", file, dump(rep2))
			}
		})
	}
}
