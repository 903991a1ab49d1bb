package archiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/einvault/einvault/internal/backend/mem"
	"github.com/einvault/einvault/internal/crypto"
	"github.com/einvault/einvault/internal/repo"
)

var testKDF = crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1}

func testRepo(t *testing.T) *repo.Repository {
	t.Helper()
	r, err := repo.Init(context.Background(), mem.New(), []byte("pw"), repo.Options{KDF: testKDF, PackSize: 1 << 20,
		Chunker: repo.ChunkerParams{Algorithm: "fastcdc-v1.0.0", Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readBack returns path -> content of every file in a snapshot.
func readBack(t *testing.T, r *repo.Repository, tree repo.ID, prefix string, out map[string][]byte) {
	t.Helper()
	tr, err := r.LoadTree(context.Background(), tree)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tr.Nodes {
		p := prefix + "/" + n.Name
		switch n.Type {
		case repo.NodeDir:
			readBack(t, r, *n.Subtree, p, out)
		case repo.NodeFile:
			var buf bytes.Buffer
			for _, id := range n.Content {
				b, err := r.LoadBlob(context.Background(), repo.DataBlob, id, nil)
				if err != nil {
					t.Fatal(err)
				}
				buf.Write(b)
			}
			out[p] = buf.Bytes()
		}
	}
}

func TestBackupRoundTripAndIncremental(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string][]byte{}
	for i := 0; i < 50; i++ {
		size := rng.IntN(3000)
		if i%10 == 0 {
			size = 200_000 + rng.IntN(800_000)
		}
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(rng.IntN(7))
		}
		p := filepath.Join(dir, "sub", string(rune('a'+i%5)), "f"+string(rune('0'+i%10))+string(rune('a'+i/10)))
		writeFile(t, p, data)
		want[p] = data
	}
	writeFile(t, filepath.Join(dir, "empty"), nil)
	want[filepath.Join(dir, "empty")] = nil
	if err := os.Symlink("sub", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	r := testRepo(t)
	res, err := New(r, Options{Host: "h"}).Backup(ctx, []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Snapshot
	if s.Kind != repo.KindFull || s.Summary.FilesNew != 51 || s.Summary.BytesAdded == 0 {
		t.Fatalf("summary: %+v kind %s", s.Summary, s.Kind)
	}
	got := map[string][]byte{}
	readBack(t, r, s.Tree, "", got)
	if len(got) != len(want) {
		t.Fatalf("got %d files, want %d", len(got), len(want))
	}
	for p, w := range want {
		if !bytes.Equal(got[p], w) {
			t.Fatalf("%s differs", p)
		}
	}

	// Reopen (fresh index from storage) and back up again: nothing read.
	r2, err := repo.Open(ctx, r.Backend(), []byte("pw"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	res2, err := New(r2, Options{Host: "h", Parent: s}).Backup(ctx, []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Snapshot.Summary.FilesUnchanged != 51 || res2.Snapshot.Summary.BytesRead != 0 || res2.Snapshot.Kind != repo.KindIncremental {
		t.Fatalf("incremental summary: %+v", res2.Snapshot.Summary)
	}
	// Ancestors such as /tmp may change meanwhile; the source itself not.
	n1, err := repo.FindNode(ctx, r2, s.Tree, dir)
	if err != nil {
		t.Fatal(err)
	}
	n2, err := repo.FindNode(ctx, r2, res2.Snapshot.Tree, dir)
	if err != nil {
		t.Fatal(err)
	}
	if *n1.Subtree != *n2.Subtree {
		t.Fatal("unchanged data gave a different tree")
	}
}

func TestUnreadableFileIsReported(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ok"), []byte("ok"))
	writeFile(t, filepath.Join(dir, "secret"), []byte("no"))
	os.Chmod(filepath.Join(dir, "secret"), 0)
	sources := []string{dir}
	if os.Geteuid() == 0 {
		// root reads every file; /proc/self/mem is a regular file whose
		// read at offset 0 fails with EIO.
		sources = append(sources, "/proc/self/mem")
	}
	res, err := New(testRepo(t), Options{}).Backup(context.Background(), sources)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Unreadable) != 1 {
		t.Fatalf("unreadable: %+v", res.Unreadable)
	}
}

func TestExcluder(t *testing.T) {
	e, err := NewExcluder([]string{"*.tmp", "/srv/cache", "**/node_modules", "logs/*.log"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want bool
	}{
		{"/a/b.tmp", true},
		{"/a/b.xml", false},
		{"/srv/cache", true},
		{"/srv/cache/x", true},
		{"/srv/cachex", false},
		{"/x/y/node_modules/z", true},
		{"/app/logs/a.log", true},
		{"/app/logs/a.txt", false},
	}
	for _, tt := range tests {
		if got := e.Excluded(tt.path); got != tt.want {
			t.Errorf("Excluded(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
	if _, err := NewExcluder([]string{"[bad"}); err == nil {
		t.Fatal("bad pattern accepted")
	}
}

func TestBackupReader(t *testing.T) {
	r := testRepo(t)
	data := bytes.Repeat([]byte("INSERT INTO hoadon VALUES (1);\n"), 50000)
	res, err := New(r, Options{}).BackupReader(context.Background(), bytes.NewReader(data), "dump.sql")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	readBack(t, r, res.Snapshot.Tree, "", got)
	if !bytes.Equal(got["/dump.sql"], data) {
		t.Fatal("stream differs")
	}
}

func TestBackupStreams(t *testing.T) {
	dump := bytes.Repeat([]byte("COPY hoadon FROM stdin;\n"), 20000)
	globals := []byte("CREATE ROLE app;\n")
	ok := func(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error) {
		if err := emit("db.dump", bytes.NewReader(dump)); err != nil {
			return nil, err
		}
		if err := emit("globals.sql", bytes.NewReader(globals)); err != nil {
			return nil, err
		}
		return map[string]json.RawMessage{"source": json.RawMessage(`{"engine":"postgresql"}`)}, nil
	}
	failing := func(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error) {
		if err := emit("db.dump", bytes.NewReader(dump[:1000])); err != nil {
			return nil, err
		}
		return nil, errors.New("pg_dump exited with status 1")
	}
	tests := []struct {
		name    string
		produce StreamFunc
		wantErr bool
	}{
		{"two streams", ok, false},
		{"producer fails halfway", failing, true},
		{"bad name", func(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error) {
			return nil, emit("a/b", bytes.NewReader(nil))
		}, true},
		{"no streams", func(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error) {
			return nil, nil
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRepo(t)
			res, err := New(r, Options{}).BackupStreams(context.Background(), Streams{Source: "postgresql", Paths: []string{"pg://localhost/inv"}, Produce: tt.produce})
			snaps, lerr := r.Snapshots(context.Background())
			if lerr != nil {
				t.Fatal(lerr)
			}
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				if len(snaps) != 0 {
					t.Fatalf("a failed stream backup left %d snapshots", len(snaps))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(snaps) != 1 || string(res.Snapshot.Meta["source"]) != `{"engine":"postgresql"}` || res.Snapshot.Paths[0] != "pg://localhost/inv" {
				t.Fatalf("snapshot: %+v", res.Snapshot)
			}
			got := map[string][]byte{}
			readBack(t, r, res.Snapshot.Tree, "", got)
			if !bytes.Equal(got["/db.dump"], dump) || !bytes.Equal(got["/globals.sql"], globals) {
				t.Fatal("streams differ")
			}
		})
	}
}
