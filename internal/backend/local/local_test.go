package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/backendtest"
)

func newTestBackend(t *testing.T) *Backend {
	t.Helper()
	b, err := Create(context.Background(), filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return b
}

func TestConformance(t *testing.T) {
	backendtest.RunConformance(t, func(t *testing.T) backend.Backend {
		b := newTestBackend(t)
		t.Cleanup(func() { assertNoTempFiles(t, b.root) })
		return b
	})
}

// assertNoTempFiles fails if any ".tmp-" file is left anywhere below root.
func assertNoTempFiles(t *testing.T, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), TempPrefix) {
			t.Errorf("temporary file left behind: %s", path)
		}
		return nil
	})
	if err != nil {
		t.Errorf("walk %s: %v", root, err)
	}
}

func TestCreateLayout(t *testing.T) {
	b := newTestBackend(t)
	want := []string{"keys", "data", "index", "snapshots", "locks", "pending", "data/00", "data/7f", "data/ff"}
	for _, d := range want {
		fi, err := os.Stat(filepath.Join(b.root, d))
		if err != nil {
			t.Errorf("%s: %v", d, err)
			continue
		}
		if !fi.IsDir() || fi.Mode().Perm() != dirMode {
			t.Errorf("%s: mode %v, want directory %v", d, fi.Mode(), fs.FileMode(dirMode))
		}
	}
	entries, err := os.ReadDir(filepath.Join(b.root, "data"))
	if err != nil || len(entries) != 256 {
		t.Errorf("data/ holds %d entries (%v), want 256", len(entries), err)
	}
}

func TestCreateRefusesExisting(t *testing.T) {
	ctx := context.Background()
	b := newTestBackend(t)
	// A second Create before a config exists is fine (an interrupted init).
	if _, err := Create(ctx, b.root); err != nil {
		t.Fatalf("Create over a layout without config: %v", err)
	}
	if err := b.Save(ctx, backend.Handle{Type: backend.ConfigFile}, strings.NewReader("cfg"), 3); err != nil {
		t.Fatal(err)
	}
	_, err := Create(ctx, b.root)
	if !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("Create over a repository: %v, want ErrAlreadyExists", err)
	}
	if !strings.Contains(err.Error(), b.root) {
		t.Errorf("error %q does not name the path", err)
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	file := filepath.Join(tmp, "afile")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	b := newTestBackend(t)

	tests := []struct {
		name    string
		path    string
		wantMsg string
	}{
		{"missing directory", filepath.Join(tmp, "nope"), "directory does not exist"},
		{"not a directory", file, "not a directory"},
		{"no config", b.root, "no config file (run 'einvault init' first)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(ctx, tc.path)
			if !errors.Is(err, backend.ErrNotExist) {
				t.Fatalf("Open: %v, want ErrNotExist", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "repository not found at "+tc.path) || !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("Open: message %q, want it to name the path and say %q", msg, tc.wantMsg)
			}
		})
	}

	if err := b.Save(ctx, backend.Handle{Type: backend.ConfigFile}, strings.NewReader("cfg"), 3); err != nil {
		t.Fatal(err)
	}
	ob, err := Open(ctx, b.root)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if ob.Location() != b.root {
		t.Errorf("Location %q, want %q", ob.Location(), b.root)
	}
}

func TestFileModes(t *testing.T) {
	b := newTestBackend(t)
	h := backend.Handle{Type: backend.PackFile, Name: "abcdef"}
	if err := b.Save(context.Background(), h, strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(b.root, "data", "ab", "abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != fileMode {
		t.Errorf("mode %v, want %v", fi.Mode().Perm(), fs.FileMode(fileMode))
	}
}

func TestListReportsTempFiles(t *testing.T) {
	b := newTestBackend(t)
	leftovers := []string{
		filepath.Join(b.root, "data", "3c", TempPrefix+"3c99-123"),
		filepath.Join(b.root, "snapshots", TempPrefix+"456"),
	}
	for _, p := range leftovers {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		t    backend.FileType
		name string
	}{{backend.PackFile, TempPrefix + "3c99-123"}, {backend.SnapshotFile, TempPrefix + "456"}} {
		var got []string
		err := b.List(context.Background(), tc.t, func(fi backend.FileInfo) error {
			got = append(got, fi.Name)
			return nil
		})
		if err != nil || len(got) != 1 || got[0] != tc.name {
			t.Errorf("List %v: %v, %v; want [%s]", tc.t, got, err, tc.name)
		}
		// A checker can remove the leftover through the backend.
		if _, err := b.Stat(context.Background(), backend.Handle{Type: tc.t, Name: tc.name}); err != nil {
			t.Errorf("Stat leftover: %v", err)
		}
		if err := b.Remove(context.Background(), backend.Handle{Type: tc.t, Name: tc.name}); err != nil {
			t.Errorf("Remove leftover: %v", err)
		}
	}
}

func TestListMissingDirIsError(t *testing.T) {
	b := newTestBackend(t)
	if err := os.RemoveAll(filepath.Join(b.root, "index")); err != nil {
		t.Fatal(err)
	}
	err := b.List(context.Background(), backend.IndexFile, func(backend.FileInfo) error { return nil })
	if err == nil {
		t.Fatal("List of a missing directory succeeded; an unmounted NAS would look empty")
	}
}

func TestSaveRecreatesMissingDataDir(t *testing.T) {
	b := newTestBackend(t)
	if err := os.Remove(filepath.Join(b.root, "data", "ab")); err != nil {
		t.Fatal(err)
	}
	h := backend.Handle{Type: backend.PackFile, Name: "ab01"}
	if err := b.Save(context.Background(), h, strings.NewReader("x"), 1); err != nil {
		t.Fatalf("Save into missing data/ab: %v", err)
	}
}

func TestSaveIntoVanishedRoot(t *testing.T) {
	b := newTestBackend(t)
	if err := os.RemoveAll(b.root); err != nil {
		t.Fatal(err)
	}
	h := backend.Handle{Type: backend.PackFile, Name: "ab01"}
	err := b.Save(context.Background(), h, strings.NewReader("x"), 1)
	if err == nil {
		t.Fatal("Save recreated a repository whose root vanished (unmounted NAS?)")
	}
	if _, serr := os.Stat(b.root); !errors.Is(serr, fs.ErrNotExist) {
		t.Errorf("Save recreated %s", b.root)
	}
}

func TestShortPackName(t *testing.T) {
	b := newTestBackend(t)
	err := b.Save(context.Background(), backend.Handle{Type: backend.PackFile, Name: "a"}, strings.NewReader("x"), 1)
	if err == nil {
		t.Fatal("Save accepted a one-character pack name")
	}
}

func TestFreeSpace(t *testing.T) {
	b := newTestBackend(t)
	n, err := b.FreeSpace(context.Background())
	if err != nil || n <= 0 {
		t.Errorf("FreeSpace: %d, %v", n, err)
	}
	if err := os.RemoveAll(b.root); err != nil {
		t.Fatal(err)
	}
	if _, err := b.FreeSpace(context.Background()); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("FreeSpace of a vanished directory: %v, want ErrNotExist", err)
	}
}

func TestClassify(t *testing.T) {
	pathErr := func(errno syscall.Errno) error {
		return &fs.PathError{Op: "write", Path: "/repo/data/ab/.tmp-1", Err: errno}
	}
	tests := []struct {
		name          string
		err           error
		wantTransient bool
		wantNotExist  bool
		wantMsg       string
	}{
		{"enospc", pathErr(syscall.ENOSPC), false, false, "disk full at /repo/x: free space and run again"},
		{"edquot", pathErr(syscall.EDQUOT), false, false, "quota exceeded"},
		{"eio", pathErr(syscall.EIO), false, false, "I/O error at /repo/x"},
		{"erofs", pathErr(syscall.EROFS), false, false, "read-only file system"},
		{"eacces", pathErr(syscall.EACCES), false, false, "permission denied"},
		{"enoent", pathErr(syscall.ENOENT), false, true, ""},
		{"etimedout", pathErr(syscall.ETIMEDOUT), true, false, "temporarily unavailable"},
		{"estale", pathErr(syscall.ESTALE), true, false, "temporarily unavailable"},
		{"other", errors.New("weird"), false, false, "weird"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := classify("save data/ab", "/repo/x", tc.err)
			if got := backend.IsTransient(err); got != tc.wantTransient {
				t.Errorf("IsTransient = %v, want %v (%v)", got, tc.wantTransient, err)
			}
			if got := errors.Is(err, backend.ErrNotExist); got != tc.wantNotExist {
				t.Errorf("Is(ErrNotExist) = %v, want %v", got, tc.wantNotExist)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("%v does not wrap the original error", err)
			}
			if tc.wantNotExist && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%v does not match fs.ErrNotExist", err)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) || !strings.HasPrefix(err.Error(), "save data/ab") {
				t.Errorf("message %q, want it to contain %q", err, tc.wantMsg)
			}
		})
	}
}

// TestSaveFailureRemovesTemp makes Save fail at each step it can fail at
// from the outside and checks that no temporary file survives.
func TestSaveFailureRemovesTemp(t *testing.T) {
	b := newTestBackend(t)
	ctx := context.Background()
	h := backend.Handle{Type: backend.IndexFile, Name: "idx"}
	cases := []struct {
		name string
		data []byte
		size int64
	}{
		{"short", []byte("abc"), 4},
		{"long", []byte("abcde"), 4},
	}
	for _, tc := range cases {
		if err := b.Save(ctx, h, bytes.NewReader(tc.data), tc.size); err == nil {
			t.Errorf("%s: Save succeeded", tc.name)
		}
	}
	// Rename onto a directory fails after the file was written and synced.
	if err := os.Mkdir(filepath.Join(b.root, "index", "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.root, "index", "adir", "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := b.Save(ctx, backend.Handle{Type: backend.IndexFile, Name: "adir"}, strings.NewReader("x"), 1)
	if err == nil {
		t.Error("Save over a non-empty directory succeeded")
	}
	assertNoTempFiles(t, b.root)
}

func ExampleCreate() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "einvault-example")
	defer os.RemoveAll(dir)

	be, err := Create(ctx, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = be.Save(ctx, backend.Handle{Type: backend.ConfigFile}, strings.NewReader("v1"), 2)
	_, err = Create(ctx, dir)
	fmt.Println(errors.Is(err, ErrAlreadyExists))
	// Output: true
}

// TestSaveReaders saves from readers whose bytes are in memory (one
// write) and from a plain reader (copied in pieces): the same files,
// and the same refusal of a source whose length is not the one announced.
func TestSaveReaders(t *testing.T) {
	b := newTestBackend(t)
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 70000) // > 1 MiB
	for _, tc := range []struct {
		name string
		rd   func([]byte) io.Reader
	}{
		{"bytes.Reader", func(p []byte) io.Reader { return bytes.NewReader(p) }},
		{"bytes.Buffer", func(p []byte) io.Reader { return bytes.NewBuffer(slices.Clone(p)) }},
		{"strings.Reader", func(p []byte) io.Reader { return strings.NewReader(string(p)) }},
		{"plain reader", func(p []byte) io.Reader { return io.MultiReader(bytes.NewReader(p)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := backend.Handle{Type: backend.WALFile, Name: "000000010000000000000001"}
			for _, size := range []int{0, 1, len(data)} {
				if err := b.Save(ctx, h, tc.rd(data[:size]), int64(size)); err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				got, err := backend.LoadAll(ctx, b, h)
				if err != nil || !bytes.Equal(got, data[:size]) {
					t.Fatalf("size %d: read back %d bytes, %v", size, len(got), err)
				}
				if err := b.Remove(ctx, h); err != nil {
					t.Fatal(err)
				}
			}
			// A partly read reader saves what is left.
			rd := tc.rd(data[:100])
			if _, err := io.ReadFull(rd, make([]byte, 40)); err != nil {
				t.Fatal(err)
			}
			if err := b.Save(ctx, h, rd, 60); err != nil {
				t.Fatal(err)
			}
			if got, _ := backend.LoadAll(ctx, b, h); !bytes.Equal(got, data[40:100]) {
				t.Fatalf("partly read reader: got %q", got)
			}
			_ = b.Remove(ctx, h)
			for _, announced := range []int64{99, 101} {
				if err := b.Save(ctx, h, tc.rd(data[:100]), announced); err == nil {
					t.Errorf("100 bytes saved as %d", announced)
				}
				if _, err := b.Stat(ctx, h); !errors.Is(err, backend.ErrNotExist) {
					t.Errorf("a failed save left the file: %v", err)
				}
			}
			assertNoTempFiles(t, b.root)
		})
	}
}
