// Package backendtest owns the conformance suite that every
// backend.Backend implementation (and every decorator) must pass.
//
// A backend's test calls RunConformance with a constructor that returns a
// fresh, empty backend for each subtest:
//
//	func TestConformance(t *testing.T) {
//		backendtest.RunConformance(t, func(t *testing.T) backend.Backend {
//			return mem.New()
//		})
//	}
//
// The suite checks the contract documented on backend.Backend. Names that
// start with TempPrefix (leftovers of interrupted saves) are ignored in
// listings, as the contract allows backends to report them.
package backendtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/einvault/einvault/internal/backend"
)

// TempPrefix is the prefix of temporary file names that List may report.
const TempPrefix = ".tmp-"

// LargeFileSize is the size of the file streamed by the large-file test.
const LargeFileSize = 20 << 20

// RunConformance runs the whole suite. newBackend must return a new, empty
// backend; the suite closes it when the subtest ends.
func RunConformance(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, be backend.Backend)
	}{
		{"RoundTrip", testRoundTrip},
		{"EmptyFile", testEmptyFile},
		{"ConfigName", testConfigName},
		{"RangedLoad", testRangedLoad},
		{"List", testList},
		{"ListCallbackError", testListCallbackError},
		{"Remove", testRemove},
		{"Missing", testMissing},
		{"SizeMismatch", testSizeMismatch},
		{"ReaderError", testReaderError},
		{"Overwrite", testOverwrite},
		{"InvalidHandles", testInvalidHandles},
		{"Concurrent", testConcurrent},
		{"ConcurrentOverwrite", testConcurrentOverwrite},
		{"ContextCanceled", testContextCanceled},
		{"ContextCanceledDuringSave", testContextCanceledDuringSave},
		{"LargeFile", testLargeFile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be := newBackend(t)
			t.Cleanup(func() {
				if err := be.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, be)
		})
	}
}

// randomID returns a name shaped like a repository ID (64 hex digits).
func randomID() string {
	var b [32]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return hex.EncodeToString(b[:])
}

func randomData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return b
}

func handle(t backend.FileType) backend.Handle {
	if t == backend.ConfigFile {
		return backend.Handle{Type: backend.ConfigFile, Name: "config"}
	}
	return backend.Handle{Type: t, Name: randomID()}
}

func save(t *testing.T, be backend.Backend, h backend.Handle, data []byte) {
	t.Helper()
	if err := be.Save(context.Background(), h, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Save %v: %v", h, err)
	}
}

func load(t *testing.T, be backend.Backend, h backend.Handle, offset, length int64) []byte {
	t.Helper()
	rd, err := be.Load(context.Background(), h, offset, length)
	if err != nil {
		t.Fatalf("Load %v at %d+%d: %v", h, offset, length, err)
	}
	buf, err := io.ReadAll(rd)
	if cerr := rd.Close(); cerr != nil {
		t.Errorf("Close reader of %v: %v", h, cerr)
	}
	if err != nil {
		t.Fatalf("read %v at %d+%d: %v", h, offset, length, err)
	}
	return buf
}

// list returns the names and sizes of the files of type ft, leaving out
// temporary files.
func list(t *testing.T, be backend.Backend, ft backend.FileType) map[string]int64 {
	t.Helper()
	m := make(map[string]int64)
	err := be.List(context.Background(), ft, func(fi backend.FileInfo) error {
		if strings.HasPrefix(fi.Name, TempPrefix) {
			return nil
		}
		if _, dup := m[fi.Name]; dup {
			t.Errorf("List %v reported %q twice", ft, fi.Name)
		}
		m[fi.Name] = fi.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List %v: %v", ft, err)
	}
	return m
}

func assertNotExist(t *testing.T, be backend.Backend, h backend.Handle) {
	t.Helper()
	ctx := context.Background()
	if _, err := be.Stat(ctx, h); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("Stat %v: got %v, want an error matching ErrNotExist", h, err)
	}
	rd, err := be.Load(ctx, h, 0, 0)
	if err == nil {
		rd.Close()
	}
	if !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("Load %v: got %v, want an error matching ErrNotExist", h, err)
	}
	name := h.Name
	if h.Type == backend.ConfigFile {
		name = "config"
	}
	if _, ok := list(t, be, h.Type)[name]; ok {
		t.Errorf("List %v reports %q, which should not exist", h.Type, name)
	}
}

func testRoundTrip(t *testing.T, be backend.Backend) {
	ctx := context.Background()
	for i, ft := range backend.AllFileTypes {
		h := handle(ft)
		data := randomData(1 + 1000*i + rand.IntN(1000))
		save(t, be, h, data)
		if got := load(t, be, h, 0, 0); !bytes.Equal(got, data) {
			t.Errorf("Load %v: got %d bytes, want the %d saved", h, len(got), len(data))
		}
		got, err := backend.LoadAll(ctx, be, h)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("LoadAll %v: %d bytes, err %v; want %d bytes", h, len(got), err, len(data))
		}
		fi, err := be.Stat(ctx, h)
		if err != nil {
			t.Fatalf("Stat %v: %v", h, err)
		}
		if fi.Size != int64(len(data)) {
			t.Errorf("Stat %v: size %d, want %d", h, fi.Size, len(data))
		}
		wantName := h.Name
		if fi.Name != wantName {
			t.Errorf("Stat %v: name %q, want %q", h, fi.Name, wantName)
		}
	}
}

func testEmptyFile(t *testing.T, be backend.Backend) {
	h := handle(backend.SnapshotFile)
	save(t, be, h, nil)
	if got := load(t, be, h, 0, 0); len(got) != 0 {
		t.Errorf("Load of empty file returned %d bytes", len(got))
	}
	fi, err := be.Stat(context.Background(), h)
	if err != nil || fi.Size != 0 {
		t.Errorf("Stat of empty file: %+v, %v; want size 0", fi, err)
	}
	if got := list(t, be, h.Type); len(got) != 1 || got[h.Name] != 0 {
		t.Errorf("List: %v, want only %s with size 0", got, h.Name)
	}
}

// testConfigName checks that the config file ignores the handle's name:
// Handle.String and Handle.Valid treat every name of the config type as
// the one config file.
func testConfigName(t *testing.T, be backend.Backend) {
	data := []byte("config v1")
	save(t, be, backend.Handle{Type: backend.ConfigFile}, data)
	h := backend.Handle{Type: backend.ConfigFile, Name: "config"}
	if got := load(t, be, h, 0, 0); !bytes.Equal(got, data) {
		t.Errorf("Load %v: %q, want %q", h, got, data)
	}
	if got := list(t, be, backend.ConfigFile); len(got) != 1 || got["config"] != int64(len(data)) {
		t.Errorf("List config: %v, want one file named config", got)
	}
}

func testRangedLoad(t *testing.T, be backend.Backend) {
	const size = 3000
	data := randomData(size)
	h := handle(backend.PackFile)
	save(t, be, h, data)

	tests := []struct {
		name           string
		offset, length int64
		want           []byte
	}{
		{"whole", 0, 0, data},
		{"prefix", 0, 100, data[:100]},
		{"middle", 1000, 500, data[1000:1500]},
		{"one byte", 1234, 1, data[1234:1235]},
		{"offset to end", 2500, 0, data[2500:]},
		{"exact end", size - 10, 10, data[size-10:]},
		{"length past end", size - 10, 100, data[size-10:]},
		{"last byte to end", size - 1, 0, data[size-1:]},
		{"length = size", 0, size, data},
		{"length > size", 0, size * 2, data},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := load(t, be, h, tc.offset, tc.length)
			if !bytes.Equal(got, tc.want) {
				t.Errorf("Load(%d, %d): got %d bytes, want %d (first differing data would come from elsewhere)",
					tc.offset, tc.length, len(got), len(tc.want))
			}
			if tc.length > 0 && int64(len(tc.want)) == tc.length {
				buf, err := backend.LoadRange(context.Background(), be, h, tc.offset, tc.length, nil)
				if err != nil || !bytes.Equal(buf, tc.want) {
					t.Errorf("LoadRange(%d, %d): %d bytes, %v", tc.offset, tc.length, len(buf), err)
				}
			}
		})
	}

	// An offset at or beyond the end may be refused or yield nothing, but
	// must never yield data.
	for _, off := range []int64{size, size + 1, size * 10} {
		for _, length := range []int64{0, 10} {
			rd, err := be.Load(context.Background(), h, off, length)
			if err != nil {
				continue
			}
			got, err := io.ReadAll(rd)
			rd.Close()
			if len(got) != 0 {
				t.Errorf("Load(%d, %d) beyond end of %d-byte file returned %d bytes (err %v)", off, length, size, len(got), err)
			}
		}
	}

	// Negative offsets and lengths are errors.
	for _, r := range [][2]int64{{-1, 0}, {0, -1}} {
		rd, err := be.Load(context.Background(), h, r[0], r[1])
		if err == nil {
			rd.Close()
			t.Errorf("Load(%d, %d) succeeded, want an error", r[0], r[1])
		}
	}
}

func testList(t *testing.T, be backend.Backend) {
	want := make(map[backend.FileType]map[string]int64)
	for _, ft := range backend.AllFileTypes {
		want[ft] = make(map[string]int64)
		n := 20
		if ft == backend.ConfigFile {
			n = 1
		}
		if ft == backend.PackFile {
			n = 100 // spread over many data/xx directories
		}
		for range n {
			h := handle(ft)
			data := randomData(rand.IntN(200))
			save(t, be, h, data)
			want[ft][h.Name] = int64(len(data))
		}
	}
	for _, ft := range backend.AllFileTypes {
		got := list(t, be, ft)
		if len(got) != len(want[ft]) {
			t.Errorf("List %v: %d files, want %d", ft, len(got), len(want[ft]))
		}
		for name, size := range want[ft] {
			gs, ok := got[name]
			switch {
			case !ok:
				t.Errorf("List %v: %s missing", ft, name)
			case gs != size:
				t.Errorf("List %v: %s has size %d, want %d", ft, name, gs, size)
			}
		}
		for name := range got {
			if _, ok := want[ft][name]; !ok {
				t.Errorf("List %v: unexpected %s (from another type?)", ft, name)
			}
		}
	}
}

func testListCallbackError(t *testing.T, be backend.Backend) {
	for range 5 {
		save(t, be, handle(backend.IndexFile), []byte("x"))
	}
	stop := errors.New("stop here")
	calls := 0
	err := be.List(context.Background(), backend.IndexFile, func(backend.FileInfo) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Errorf("List returned %v, want the callback's error", err)
	}
	if calls != 1 {
		t.Errorf("List called the callback %d times after it failed, want 1", calls)
	}
}

func testRemove(t *testing.T, be backend.Backend) {
	ctx := context.Background()
	for _, ft := range backend.AllFileTypes {
		h := handle(ft)
		keep := handle(ft)
		if ft == backend.ConfigFile {
			keep = backend.Handle{}
		}
		save(t, be, h, []byte("remove me"))
		if keep.Type != "" {
			save(t, be, keep, []byte("keep me"))
		}
		if err := be.Remove(ctx, h); err != nil {
			t.Fatalf("Remove %v: %v", h, err)
		}
		assertNotExist(t, be, h)
		if err := be.Remove(ctx, h); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("second Remove %v: got %v, want ErrNotExist", h, err)
		}
		if keep.Type != "" {
			if got := load(t, be, keep, 0, 0); string(got) != "keep me" {
				t.Errorf("Remove %v damaged %v: %q", h, keep, got)
			}
		}
	}
}

func testMissing(t *testing.T, be backend.Backend) {
	for _, ft := range backend.AllFileTypes {
		h := handle(ft)
		assertNotExist(t, be, h)
		if err := be.Remove(context.Background(), h); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("Remove missing %v: got %v, want ErrNotExist", h, err)
		}
	}
	// A missing ranged load is a missing file too.
	h := handle(backend.PackFile)
	rd, err := be.Load(context.Background(), h, 10, 10)
	if err == nil {
		rd.Close()
	}
	if !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("ranged Load of missing %v: %v, want ErrNotExist", h, err)
	}
}

func testSizeMismatch(t *testing.T, be backend.Backend) {
	ctx := context.Background()
	data := randomData(1000)
	tests := []struct {
		name string
		size int64
	}{
		{"reader shorter", 1001},
		{"reader longer", 999},
		{"size zero", 0},
		{"negative size", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := handle(backend.PackFile)
			err := be.Save(ctx, h, bytes.NewReader(data), tc.size)
			if err == nil {
				t.Fatalf("Save of %d bytes declared as %d succeeded", len(data), tc.size)
			}
			if backend.IsTransient(err) {
				t.Errorf("size mismatch reported as transient: %v", err)
			}
			assertNotExist(t, be, h)
		})
	}
	if got := list(t, be, backend.PackFile); len(got) != 0 {
		t.Errorf("failed saves left files behind: %v", got)
	}
}

// errReader yields n bytes and then fails.
type errReader struct {
	n   int
	err error
}

func (r *errReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

func testReaderError(t *testing.T, be backend.Backend) {
	boom := errors.New("source broke")
	h := handle(backend.PackFile)
	err := be.Save(context.Background(), h, &errReader{n: 100000, err: boom}, 200000)
	if !errors.Is(err, boom) {
		t.Errorf("Save with failing reader: %v, want an error wrapping the reader's error", err)
	}
	assertNotExist(t, be, h)
	if got := list(t, be, backend.PackFile); len(got) != 0 {
		t.Errorf("failed save left files behind: %v", got)
	}
}

func testOverwrite(t *testing.T, be backend.Backend) {
	h := handle(backend.LockFile)
	first := []byte("first version, longer than the second")
	second := []byte("second version")
	save(t, be, h, first)
	save(t, be, h, second)
	if got := load(t, be, h, 0, 0); !bytes.Equal(got, second) {
		t.Errorf("after overwrite: %q, want %q", got, second)
	}
	if got := list(t, be, h.Type); len(got) != 1 || got[h.Name] != int64(len(second)) {
		t.Errorf("after overwrite List: %v", got)
	}

	// A failed replacement must not leave a partial file: the name holds
	// the old content or nothing.
	err := be.Save(context.Background(), h, &errReader{n: 5, err: errors.New("broken")}, 50)
	if err == nil {
		t.Fatal("Save with failing reader succeeded")
	}
	rd, err := be.Load(context.Background(), h, 0, 0)
	if err != nil {
		if !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("Load after failed overwrite: %v", err)
		}
		return
	}
	got, _ := io.ReadAll(rd)
	rd.Close()
	if !bytes.Equal(got, second) {
		t.Errorf("after failed overwrite: %q, want the previous content %q or no file", got, second)
	}
}

func testInvalidHandles(t *testing.T, be backend.Backend) {
	ctx := context.Background()
	tests := []backend.Handle{
		{Type: "", Name: "abcd"},
		{Type: backend.PackFile, Name: ""},
		{Type: backend.PackFile, Name: "."},
		{Type: backend.PackFile, Name: ".."},
		{Type: backend.SnapshotFile, Name: "a/b"},
		{Type: backend.SnapshotFile, Name: "../config"},
		{Type: backend.SnapshotFile, Name: `a\b`},
		{Type: backend.KeyFile, Name: "a\x00b"},
		{Type: "../../etc", Name: "passwd"},
		{Type: "nosuchtype", Name: "abcd"},
	}
	for _, h := range tests {
		t.Run(fmt.Sprintf("%q/%q", h.Type, h.Name), func(t *testing.T) {
			if err := be.Save(ctx, h, strings.NewReader("x"), 1); err == nil {
				t.Errorf("Save accepted invalid handle")
			}
			rd, err := be.Load(ctx, h, 0, 0)
			if err == nil {
				rd.Close()
				t.Errorf("Load accepted invalid handle")
			}
			if _, err := be.Stat(ctx, h); err == nil {
				t.Errorf("Stat accepted invalid handle")
			}
			if err := be.Remove(ctx, h); err == nil {
				t.Errorf("Remove accepted invalid handle")
			}
		})
	}
	for _, ft := range []backend.FileType{"", "nosuchtype", "../x"} {
		if err := be.List(ctx, ft, func(backend.FileInfo) error { return nil }); err == nil {
			t.Errorf("List accepted invalid type %q", ft)
		}
	}
}

func testConcurrent(t *testing.T, be backend.Backend) {
	ctx := context.Background()
	const workers, perWorker = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			types := []backend.FileType{backend.PackFile, backend.IndexFile, backend.SnapshotFile}
			for i := range perWorker {
				h := handle(types[(w+i)%len(types)])
				data := randomData(100 + rand.IntN(5000))
				if err := be.Save(ctx, h, bytes.NewReader(data), int64(len(data))); err != nil {
					errs <- fmt.Errorf("save %v: %w", h, err)
					continue
				}
				got, err := backend.LoadAll(ctx, be, h)
				if err != nil || !bytes.Equal(got, data) {
					errs <- fmt.Errorf("load %v: %d bytes (want %d), %v", h, len(got), len(data), err)
					continue
				}
				if fi, err := be.Stat(ctx, h); err != nil || fi.Size != int64(len(data)) {
					errs <- fmt.Errorf("stat %v: %+v, %v", h, fi, err)
				}
				if err := be.List(ctx, h.Type, func(backend.FileInfo) error { return nil }); err != nil {
					errs <- fmt.Errorf("list %v: %w", h.Type, err)
				}
				if i%3 == 0 {
					if err := be.Remove(ctx, h); err != nil {
						errs <- fmt.Errorf("remove %v: %w", h, err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// testConcurrentOverwrite saves two versions of one name over and over
// while readers load it: a reader must always see one whole version.
func testConcurrentOverwrite(t *testing.T, be backend.Backend) {
	ctx := context.Background()
	h := handle(backend.LockFile)
	versions := [][]byte{bytes.Repeat([]byte("A"), 64<<10), bytes.Repeat([]byte("B"), 64<<10)}
	save(t, be, h, versions[0])

	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 100)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := range 40 {
			v := versions[i%2]
			if err := be.Save(ctx, h, bytes.NewReader(v), int64(len(v))); err != nil {
				errs <- fmt.Errorf("save: %w", err)
				return
			}
		}
	}()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := backend.LoadAll(ctx, be, h)
				if err != nil {
					errs <- fmt.Errorf("load during overwrite: %w", err)
					return
				}
				if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
					errs <- fmt.Errorf("load during overwrite saw a mixed or partial file of %d bytes", len(got))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testContextCanceled(t *testing.T, be backend.Backend) {
	existing := handle(backend.IndexFile)
	save(t, be, existing, []byte("existing"))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	h := handle(backend.IndexFile)
	if err := be.Save(ctx, h, strings.NewReader("data"), 4); !errors.Is(err, context.Canceled) {
		t.Errorf("Save with canceled context: %v, want context.Canceled", err)
	}
	assertNotExist(t, be, h)

	rd, err := be.Load(ctx, existing, 0, 0)
	if err == nil {
		rd.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Load with canceled context: %v, want context.Canceled", err)
	}
	if _, err := be.Stat(ctx, existing); !errors.Is(err, context.Canceled) {
		t.Errorf("Stat with canceled context: %v, want context.Canceled", err)
	}
	err = be.List(ctx, backend.IndexFile, func(backend.FileInfo) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("List with canceled context: %v, want context.Canceled", err)
	}
	if err := be.Remove(ctx, existing); !errors.Is(err, context.Canceled) {
		t.Errorf("Remove with canceled context: %v, want context.Canceled", err)
	}
	if got := load(t, be, existing, 0, 0); string(got) != "existing" {
		t.Errorf("canceled Remove changed the file: %q", got)
	}
}

// cancelReader cancels its context after the first read and keeps
// yielding data.
type cancelReader struct {
	cancel func()
	n      int
}

func (r *cancelReader) Read(p []byte) (int, error) {
	r.cancel()
	if r.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n, 1024)
	clear(p[:k])
	r.n -= k
	return k, nil
}

func testContextCanceledDuringSave(t *testing.T, be backend.Backend) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := handle(backend.PackFile)
	const size = 1 << 20
	err := be.Save(ctx, h, &cancelReader{cancel: cancel, n: size}, size)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Save canceled midway: %v, want context.Canceled", err)
	}
	assertNotExist(t, be, h)
}

// streamReader yields a deterministic pseudo-random stream in uneven
// pieces; it is deliberately not an io.Seeker nor an io.WriterTo.
type streamReader struct {
	rng  *rand.ChaCha8
	left int64
	step int
}

func (r *streamReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	r.step = r.step%7919 + 1237
	n := int(min(int64(len(p)), r.left, int64(r.step)))
	_, _ = r.rng.Read(p[:n])
	r.left -= int64(n)
	return n, nil
}

func testLargeFile(t *testing.T, be backend.Backend) {
	seed := [32]byte{1, 2, 3}
	h := handle(backend.PackFile)
	if err := be.Save(context.Background(), h, &streamReader{rng: rand.NewChaCha8(seed), left: LargeFileSize}, LargeFileSize); err != nil {
		t.Fatalf("Save of %d bytes: %v", LargeFileSize, err)
	}
	want := sha256.New()
	if _, err := io.Copy(want, &streamReader{rng: rand.NewChaCha8(seed), left: LargeFileSize}); err != nil {
		t.Fatal(err)
	}

	rd, err := be.Load(context.Background(), h, 0, 0)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	got := sha256.New()
	n, err := io.Copy(got, rd)
	rd.Close()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if n != LargeFileSize || !slices.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Errorf("large file: read %d bytes with a different hash, want %d identical bytes", n, LargeFileSize)
	}

	fi, err := be.Stat(context.Background(), h)
	if err != nil || fi.Size != LargeFileSize {
		t.Errorf("Stat: %+v, %v", fi, err)
	}

	// A range in the middle of the large file.
	const off, length = 13<<20 + 17, 1 << 20
	all := make([]byte, off+length)
	if _, err := io.ReadFull(&streamReader{rng: rand.NewChaCha8(seed), left: LargeFileSize}, all); err != nil {
		t.Fatal(err)
	}
	if part := load(t, be, h, off, length); !bytes.Equal(part, all[off:]) {
		t.Errorf("ranged load of large file differs")
	}
}
