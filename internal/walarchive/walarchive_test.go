package walarchive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/fault"
	"github.com/einvault/einvault/internal/backend/local"
	"github.com/einvault/einvault/internal/backend/mem"
	"github.com/einvault/einvault/internal/crypto"
	"github.com/einvault/einvault/internal/replica"
	"github.com/einvault/einvault/internal/repo"
)

var fastKDF = crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1}

// walRE is the definition ValidName implements by hand.
var walRE = regexp.MustCompile(`^([0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$`)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"000000010000000000000001", true},
		{"00000001000000000000000A", true},
		{"00000001000000000000000a", false},
		{"00000001000000000000001", false},
		{"0000000100000000000000011", false},
		{"000000010000000000000001.partial", true},
		{"000000010000000000000001.partia", false},
		{"000000010000000000000001.00000028.backup", true},
		{"000000010000000000000001.0000002G.backup", false},
		{"000000010000000000000001.00000028.backuq", false},
		{"00000002.history", true},
		{"0000000G.history", false},
		{"00000002.histor", false},
		{"", false},
		{"../000000010000000000000001", false},
		{"000000010000000000000001/", false},
	} {
		if got := ValidName(tc.name); got != tc.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
		if got := walRE.MatchString(tc.name); got != tc.ok {
			t.Errorf("regexp disagrees on %q", tc.name)
		}
	}
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"000000010000000000000001", "000000010000000000000001.partial", "000000010000000000000001.00000028.backup", "00000002.history", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidName(s) != walRE.MatchString(s) {
			t.Fatalf("ValidName(%q) = %v, regexp says %v", s, ValidName(s), walRE.MatchString(s))
		}
	})
}

func newRepo(t *testing.T, be backend.Backend) *repo.Repository {
	t.Helper()
	r, err := repo.Init(context.Background(), be, []byte("pw"), repo.Options{KDF: fastKDF})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func segment(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/97) ^ seed
	}
	return b
}

func TestPushIdempotentAndConflict(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t, mem.New())
	st := NewStore(r)
	const name = "000000010000000000000003"
	seg := segment(1, 1<<20)
	res, err := st.Push(ctx, name, seg)
	if err != nil || res.AlreadyArchived || res.Stored == 0 {
		t.Fatalf("first push: %+v, %v", res, err)
	}
	stored, err := backend.LoadAll(ctx, r.Backend(), backend.Handle{Type: backend.WALFile, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	// PostgreSQL may call archive_command again for a file it archived
	// (a crash before it recorded success): that must succeed.
	res, err = st.Push(ctx, name, seg)
	if err != nil || !res.AlreadyArchived || res.Stored != 0 {
		t.Fatalf("second push: %+v, %v", res, err)
	}
	// Same name, other content: refused, archived file untouched.
	other := segment(2, 1<<20)
	if _, err := st.Push(ctx, name, other); !errors.Is(err, ErrConflict) {
		t.Fatalf("conflicting push: %v, want ErrConflict", err)
	}
	after, err := backend.LoadAll(ctx, r.Backend(), backend.Handle{Type: backend.WALFile, Name: name})
	if err != nil || !bytes.Equal(after, stored) {
		t.Fatalf("archived file changed by a refused push (err %v)", err)
	}
	got, err := st.Fetch(ctx, name)
	if err != nil || !bytes.Equal(got, seg) {
		t.Fatalf("fetch: %v", err)
	}
	if _, err := st.Fetch(ctx, "000000010000000000000004"); !errors.Is(err, ErrMissing) {
		t.Fatalf("fetch of a missing file: %v, want ErrMissing", err)
	}
	if _, err := st.Push(ctx, "../etc/passwd", seg); err == nil {
		t.Fatal("push under an invalid name succeeded")
	}
	names, err := st.List(ctx)
	if err != nil || len(names) != 1 || names[0] != name {
		t.Fatalf("list: %v, %v", names, err)
	}
}

// TestPushDurability: a push whose write fails reports the failure and
// leaves nothing that looks archived, so PostgreSQL retries; the retry
// stores the file.
func TestPushDurability(t *testing.T) {
	ctx := context.Background()
	fb := fault.New(mem.New())
	r := newRepo(t, fb)
	st := NewStore(r)
	const name = "000000010000000000000009"
	seg := segment(3, 3<<20)
	fb.InterruptSave(1, backend.WALFile, 1000, nil)
	if _, err := st.Push(ctx, name, seg); err == nil {
		t.Fatal("push succeeded although the write was interrupted")
	}
	if _, err := st.Fetch(ctx, name); !errors.Is(err, ErrMissing) {
		t.Fatalf("after a failed push: %v, want ErrMissing", err)
	}
	if _, err := st.Push(ctx, name, seg); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if got, err := st.Fetch(ctx, name); err != nil || !bytes.Equal(got, seg) {
		t.Fatalf("fetch after retry: %v", err)
	}
}

// copySetup is a repository with two copies, each storage behind a fault
// injector.
type copySetup struct {
	r       *repo.Repository
	primary *fault.Backend
	copies  map[string]*fault.Backend // by location
	warns   []string
}

func newCopySetup(t *testing.T) *copySetup {
	t.Helper()
	ctx := context.Background()
	s := &copySetup{primary: fault.New(mem.New()), copies: map[string]*fault.Backend{}}
	s.r = newRepo(t, s.primary)
	l := replica.List{Copies: []replica.Copy{{Name: "main", Location: s.primary.Location(), Kind: replica.KindDisk, Order: 0}}}
	for i, n := range []string{"nas", "cloud"} {
		be := fault.New(mem.New())
		s.copies[be.Location()] = be
		l.Copies = append(l.Copies, replica.Copy{Name: n, Location: be.Location(), Kind: replica.KindNAS, Order: i + 1})
	}
	if _, err := s.r.SaveCopies(ctx, l, nil); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *copySetup) opts() Copies {
	return Copies{
		Open: func(_ context.Context, loc string) (backend.Backend, error) {
			be, ok := s.copies[loc]
			if !ok {
				return nil, fmt.Errorf("no storage at %s", loc)
			}
			return be, nil
		},
		Warnf: func(format string, args ...any) { s.warns = append(s.warns, fmt.Sprintf(format, args...)) },
	}
}

func (s *copySetup) has(t *testing.T, be backend.Backend, name string) bool {
	t.Helper()
	_, err := be.Stat(context.Background(), backend.Handle{Type: backend.WALFile, Name: name})
	return err == nil
}

func TestPushToCopies(t *testing.T) {
	t.Run("from memory", func(t *testing.T) { testPushToCopies(t, PushToCopies) })
	// From the file, as einvault-wal does.
	t.Run("from file", func(t *testing.T) {
		dir := t.TempDir()
		testPushToCopies(t, func(ctx context.Context, r *repo.Repository, name string, content []byte, c Copies) (PushResult, error) {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			f, size, err := OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			return PushFileToCopies(ctx, r, name, f, size, c)
		})
	})
}

func testPushToCopies(t *testing.T, push func(context.Context, *repo.Repository, string, []byte, Copies) (PushResult, error)) {
	ctx := context.Background()
	seg := segment(4, 2<<20+5)
	t.Run("all up", func(t *testing.T) {
		s := newCopySetup(t)
		const name = "000000010000000000000010"
		if _, err := push(ctx, s.r, name, seg, s.opts()); err != nil {
			t.Fatal(err)
		}
		if !s.has(t, s.primary, name) || len(s.warns) != 0 {
			t.Fatalf("primary missing the file or warnings %q", s.warns)
		}
		for loc, be := range s.copies {
			if !s.has(t, be, name) {
				t.Errorf("copy %s misses the file", loc)
			}
		}
		// Again: idempotent everywhere.
		res, err := push(ctx, s.r, name, seg, s.opts())
		if err != nil || !res.AlreadyArchived {
			t.Fatalf("second push: %+v, %v", res, err)
		}
		if _, err := push(ctx, s.r, name, segment(5, 2<<20), s.opts()); !errors.Is(err, ErrConflict) {
			t.Fatalf("conflict: %v", err)
		}
	})
	t.Run("one copy down", func(t *testing.T) {
		s := newCopySetup(t)
		const name = "000000010000000000000011"
		var down string
		for loc, be := range s.copies {
			down = loc
			be.FailSave(0, "", nil)
			break
		}
		if _, err := push(ctx, s.r, name, seg, s.opts()); err != nil {
			t.Fatalf("push with one copy down: %v", err)
		}
		if len(s.warns) != 1 || !strings.Contains(s.warns[0], "NOT stored") {
			t.Fatalf("warnings %q, want one about the down copy", s.warns)
		}
		if s.has(t, s.copies[down], name) || !s.has(t, s.primary, name) {
			t.Fatal("file in the wrong places")
		}
	})
	t.Run("primary down, copies up", func(t *testing.T) {
		s := newCopySetup(t)
		const name = "000000010000000000000012"
		s.primary.FailSave(0, backend.WALFile, nil)
		res, err := push(ctx, s.r, name, seg, s.opts())
		if err != nil || res.Stored == 0 {
			t.Fatalf("push with the primary down: %+v, %v", res, err)
		}
		got, err := FetchFromCopies(ctx, s.r, name, s.opts())
		if err != nil || !bytes.Equal(got, seg) {
			t.Fatalf("fetch from a copy: %v", err)
		}
	})
	t.Run("all down", func(t *testing.T) {
		s := newCopySetup(t)
		const name = "000000010000000000000013"
		s.primary.FailSave(0, backend.WALFile, nil)
		for _, be := range s.copies {
			be.FailSave(0, "", nil)
		}
		_, err := push(ctx, s.r, name, seg, s.opts())
		if err == nil || !strings.Contains(err.Error(), "no copy could store it") {
			t.Fatalf("push with every place down: %v, want an error", err)
		}
		if _, err := FetchFromCopies(ctx, s.r, name, s.opts()); !errors.Is(err, ErrMissing) {
			t.Fatalf("fetch: %v, want ErrMissing", err)
		}
	})
	t.Run("copy unreachable", func(t *testing.T) {
		s := newCopySetup(t)
		const name = "000000010000000000000014"
		o := s.opts()
		o.Open = func(context.Context, string) (backend.Backend, error) { return nil, errors.New("connection refused") }
		if _, err := push(ctx, s.r, name, seg, o); err != nil {
			t.Fatal(err)
		}
		if len(s.warns) != 2 {
			t.Fatalf("warnings %q, want two", s.warns)
		}
	})
}

// TestFetchOldFormat reads a WAL file sealed by einvault before WAL files
// were compressed with S2 (zstd, two frames): testdata/wal-v1 holds the
// repository (config, key file with password "golden") and its key cache.
func TestFetchOldFormat(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	if err := os.CopyFS(dir, os.DirFS("testdata/wal-v1/repo")); err != nil {
		t.Fatal(err)
	}
	be, err := local.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	cache, err := os.ReadFile("testdata/wal-v1/keycache")
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.OpenWithKeyCache(ctx, be, cache, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const name = "000000010000000000000042"
	want := goldenContent()
	got, err := NewStore(r).Fetch(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("old-format WAL file: got %d bytes, want %d (content differs)", len(got), len(want))
	}
	// Pushing the same content again is recognised as already archived;
	// other content under the same name is a conflict.
	res, err := NewStore(r).Push(ctx, name, want)
	if err != nil || !res.AlreadyArchived {
		t.Fatalf("push over the old-format file: %+v, %v", res, err)
	}
	if _, err := NewStore(r).Push(ctx, name, want[1:]); !errors.Is(err, ErrConflict) {
		t.Fatalf("conflicting push over the old-format file: %v", err)
	}
	// A new-format file next to it.
	const name2 = "000000010000000000000043"
	if _, err := NewStore(r).Push(ctx, name2, want); err != nil {
		t.Fatal(err)
	}
	if got, err := NewStore(r).Fetch(ctx, name2); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("new-format round trip: %v", err)
	}
}

// goldenContent is the content of testdata/wal-v1's WAL file.
func goldenContent() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 5<<20; i++ {
		fmt.Fprintf(&b, "rec %08d INSERT INTO invoices VALUES (%d,'VN-%06d');\n", i, i*7, i%999983)
	}
	return b.Bytes()[:5<<20]
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 1, 4095, 4096, 1<<20 + 3} {
		p := filepath.Join(dir, fmt.Sprint(n))
		want := segment(byte(n), n)
		if err := os.WriteFile(p, want, 0o600); err != nil {
			t.Fatal(err)
		}
		got, release, err := ReadFile(p)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%d bytes: content differs", n)
		}
		release()
	}
	if _, _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, _, err := ReadFile(dir); err == nil {
		t.Error("a directory was read as a WAL file")
	}
}

func TestReadKeyCache(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "keys")
	if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyCache(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable key cache: %v", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadKeyCache(p); err != nil || string(b) != "{}" {
		t.Fatalf("%q, %v", b, err)
	}
	if _, err := ReadKeyCache(filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "einvault key cache") {
		t.Fatalf("missing key cache: %v", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "RECOVERYXLOG")
	if err := WriteFileAtomic(p, "000000010000000000000001", []byte("wal")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "wal" {
		t.Fatalf("%q, %v", b, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

// TestPushFileShrunk pushes a file that is shorter than announced (it
// changed after it was opened): the push fails and stores nothing.
func TestPushFileShrunk(t *testing.T) {
	ctx := context.Background()
	s := newCopySetup(t)
	const name = "000000010000000000000015"
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, segment(6, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	f, size, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Truncate(path, 2<<20+7); err != nil {
		t.Fatal(err)
	}
	_, err = PushFileToCopies(ctx, s.r, name, f, size, s.opts())
	if err == nil || !strings.Contains(err.Error(), "shrank") {
		t.Fatalf("push of a shrunk file: %v, want an error", err)
	}
	if s.has(t, s.primary, name) {
		t.Fatal("a shrunk file was stored")
	}
}
