package repo

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/mem"
	"github.com/einvault/einvault/internal/crypto"
)

// Fuzz tests for every decoder of repository files. None may panic or
// allocate without bound on any input. Seeds are real encoded values; the
// interesting ones are committed under testdata/fuzz/<FuzzName>/ and can
// be regenerated with
//
//	EINVAULT_WRITE_FUZZ_CORPUS=1 go test -run '^TestWriteFuzzCorpus$' ./internal/repo/

var fuzzKDF = crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1}

// fuzzRepo is a small repository with one pack, one index file and one
// snapshot, built once per process.
type fuzzFixture struct {
	r        *Repository
	config   []byte
	keyFile  []byte
	keyring  []byte
	pack     []byte
	packHdr  []byte
	packData int64
	index    []byte // plaintext
	indexF   []byte // sealed file
	snapshot []byte // plaintext
	snapF    []byte // sealed file
	tree     []byte
}

var fuzzFix *fuzzFixture

func fuzzSetup(tb testing.TB) *fuzzFixture {
	tb.Helper()
	if fuzzFix != nil {
		return fuzzFix
	}
	ctx := context.Background()
	be := mem.New()
	r, err := Init(ctx, be, []byte("pw"), Options{KDF: fuzzKDF, PackSize: 1 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	f := &fuzzFixture{r: r}
	mtime := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	var content []ID
	for _, s := range []string{"<HDon><DLHDon><TTChung><KHHDon>C24TAA</KHHDon><SHDon>42</SHDon></TTChung></DLHDon></HDon>", strings.Repeat("compressible ", 200)} {
		id := r.BlobID([]byte(s))
		if _, _, err := r.SaveBlob(ctx, DataBlob, id, []byte(s)); err != nil {
			tb.Fatal(err)
		}
		content = append(content, id)
	}
	tree := &Tree{Nodes: []*Node{
		{Name: "x.xml", Type: NodeFile, Mode: 0o644, ModTime: mtime, Size: 300, Content: content},
		{Name: "link", Type: NodeSymlink, Mode: 0o777, ModTime: mtime, LinkTarget: "x.xml"},
	}}
	if f.tree, err = tree.Encode(); err != nil {
		tb.Fatal(err)
	}
	sub, err := r.SaveTree(ctx, tree)
	if err != nil {
		tb.Fatal(err)
	}
	root := &Tree{Nodes: []*Node{{Name: "2024", Type: NodeDir, Mode: 0o755, ModTime: mtime, Subtree: &sub}}}
	rootID, err := r.SaveTree(ctx, root)
	if err != nil {
		tb.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	parent := RandomID()
	snap := &Snapshot{Time: mtime, Host: "h", Paths: []string{"/srv/invoices"}, Tags: []string{"invoices"}, Source: "files", Kind: KindIncremental, Tree: rootID, Parent: &parent, Program: "einvault test"}
	if f.snapshot, err = json.Marshal(snap); err != nil {
		tb.Fatal(err)
	}
	snapID, err := r.SaveSnapshot(ctx, snap)
	if err != nil {
		tb.Fatal(err)
	}
	load := func(t backend.FileType, name string) []byte {
		b, err := backend.LoadAll(ctx, be, backend.Handle{Type: t, Name: name})
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	f.config = load(backend.ConfigFile, "config")
	f.snapF = load(backend.SnapshotFile, snapID.String())
	err = be.List(ctx, backend.KeyFile, func(fi backend.FileInfo) error {
		f.keyFile = load(backend.KeyFile, fi.Name)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if f.keyring, err = r.keys.marshal(r.cfg.ID); err != nil {
		tb.Fatal(err)
	}
	err = be.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error {
		f.indexF = load(backend.IndexFile, fi.Name)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if f.index, err = r.openFile(KindIndex, f.indexF); err != nil {
		tb.Fatal(err)
	}
	idx, err := DecodeIndexFile(f.index)
	if err != nil {
		tb.Fatal(err)
	}
	// The data pack (the tree pack has one blob type only; either works).
	for _, p := range idx.Packs {
		if len(p.Blobs) >= 2 {
			f.pack = load(backend.PackFile, p.ID.String())
			f.packHdr = encodePackHeader(p.Blobs)
			f.packData = PackFileSize(p.Blobs) - int64(len(f.packHdr)) - crypto.Overhead - packTrailerSize
		}
	}
	if f.pack == nil {
		tb.Fatal("no pack with two blobs")
	}
	fuzzFix = f
	return f
}

func FuzzDecodeConfig(f *testing.F) {
	fx := fuzzSetup(f)
	f.Add(fx.config)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"id":"` + strings.Repeat("ab", 32) + `","chunker":{"algorithm":"fastcdc-v1.0.0","min":64,"avg":128,"max":256},"pack_size":1048576,"small_file":64}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeConfig(data)
		if err == nil {
			if err := c.Validate(); err != nil {
				t.Fatalf("decoded config does not validate: %v", err)
			}
		}
	})
}

func FuzzDecodeKeyFile(f *testing.F) {
	fx := fuzzSetup(f)
	f.Add(fx.keyFile)
	f.Add([]byte(`{"version":1,"kdf":{"time":1,"memory":1024,"threads":1},"salt":"AAAAAAAAAAAAAAAAAAAAAA==","data":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := DecodeKeyFile(data)
		if err != nil {
			return
		}
		if err := kf.KDF.Validate(); err != nil {
			t.Fatalf("decoded key file has invalid KDF: %v", err)
		}
		if len(kf.Salt) < 16 || len(kf.Data) < crypto.Overhead {
			t.Fatal("decoded key file is too short")
		}
	})
}

// FuzzDecodeKeyring fuzzes the plaintext inside a key file (reached only
// with the password, but a decoder all the same).
func FuzzDecodeKeyring(f *testing.F) {
	fx := fuzzSetup(f)
	f.Add(fx.keyring)
	f.Add([]byte(`{"repository":"` + fx.r.cfg.ID.String() + `","epochs":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		kr, err := unmarshalKeyring(data, fx.r.cfg.ID)
		if err == nil && kr.current() == nil {
			t.Fatal("keyring without a current key")
		}
	})
}

func FuzzDecodePackHeader(f *testing.F) {
	fx := fuzzSetup(f)
	f.Add(fx.packHdr, fx.packData)
	f.Add(encodePackHeader(nil), int64(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, int64(1<<40))
	f.Fuzz(func(t *testing.T, buf []byte, dataLen int64) {
		blobs, err := DecodePackHeader(buf, dataLen)
		if err != nil {
			return
		}
		var off int64
		for _, b := range blobs {
			if int64(b.Offset) != off {
				t.Fatalf("blob at %d, want %d", b.Offset, off)
			}
			off += int64(b.Length)
		}
		if off != dataLen {
			t.Fatalf("blobs cover %d of %d bytes", off, dataLen)
		}
		// Varints may be written non-minimally (the header is
		// authenticated, so that is no malleability): compare values.
		again, err := DecodePackHeader(encodePackHeader(blobs), dataLen)
		if err != nil || !slices.Equal(again, blobs) {
			t.Fatalf("re-encoded header decodes differently: %v", err)
		}
	})
}

func FuzzDecodeIndexFile(f *testing.F) {
	fx := fuzzSetup(f)
	f.Add(fx.index)
	f.Add((&IndexFile{Supersedes: IDs{RandomID()}}).Encode())
	f.Add([]byte(indexMagic + "\x00\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, buf []byte) {
		idx, err := DecodeIndexFile(buf)
		if err != nil {
			return
		}
		if _, err := DecodeIndexFile(idx.Encode()); err != nil {
			t.Fatalf("re-encoded index does not decode: %v", err)
		}
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	fx := fuzzSetup(f)
	f.Add(fx.snapshot)
	f.Add([]byte(`{"tree":"` + strings.Repeat("00", 32) + `","kind":"full"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSnapshot(data)
		if err == nil && s.Tree.IsNull() {
			t.Fatal("snapshot without a tree decoded")
		}
	})
}

func FuzzDecodeTree(f *testing.F) {
	fx := fuzzSetup(f)
	f.Add(fx.tree)
	f.Add([]byte(`{"nodes":[{"name":"..","type":"file"}]}`))
	f.Add([]byte(`{"nodes":[{"name":"a","type":"dir"}]}`))
	f.Add([]byte(`{"nodes":[null]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := DecodeTree(data)
		if err != nil {
			return
		}
		for _, n := range tr.Nodes {
			if !ValidName(n.Name) {
				t.Fatalf("hostile name %q decoded", n.Name)
			}
			if n.Type == NodeDir && n.Subtree == nil {
				t.Fatal("directory without subtree decoded")
			}
		}
	})
}

// FuzzOpenSealed fuzzes, with a real key, the whole open path of sealed
// files (index, snapshot, any kind byte), of packs (trailer, sealed
// header, header decoding) and of the blobs the header locates.
func FuzzOpenSealed(f *testing.F) {
	fx := fuzzSetup(f)
	f.Add(fx.indexF)
	f.Add(fx.snapF)
	f.Add(fx.pack)
	f.Add(fx.pack[len(fx.pack)-packTrailerSize:])
	f.Add([]byte(fileMagic + "\x01\x01\x01\x00\x00\x00"))
	r := fx.r
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, kind := range []FileKind{KindIndex, KindSnapshot, KindLock, KindPending, KindCatalog} {
			plain, err := r.openFile(kind, data)
			if err != nil {
				continue
			}
			switch kind {
			case KindIndex:
				_, _ = DecodeIndexFile(plain)
			case KindSnapshot:
				_, _ = DecodeSnapshot(plain)
			}
		}
		p, blobs, err := r.DecodePack(data)
		if err != nil {
			return
		}
		for _, b := range blobs {
			end := int64(b.Offset) + int64(b.Length)
			if end > int64(len(data)) {
				t.Fatalf("decoded blob %s extends past the pack", b.ID.Short())
			}
			plain, err := r.OpenBlob(p, b.Type, b.Flags, b.ID, data[b.Offset:end], nil)
			if err == nil && b.Type == TreeBlob {
				_, _ = DecodeTree(plain)
			}
		}
	})
}

// TestFuzzSeedsDecode makes sure the real seeds decode, so the fuzzers
// start from valid inputs.
func TestFuzzSeedsDecode(t *testing.T) {
	fx := fuzzSetup(t)
	if _, err := DecodeConfig(fx.config); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeKeyFile(fx.keyFile); err != nil {
		t.Fatal(err)
	}
	if _, err := unmarshalKeyring(fx.keyring, fx.r.cfg.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodePackHeader(fx.packHdr, fx.packData); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeIndexFile(fx.index); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeSnapshot(fx.snapshot); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeTree(fx.tree); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.r.openFile(KindSnapshot, fx.snapF); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fx.r.DecodePack(fx.pack); err != nil {
		t.Fatal(err)
	}
}

// TestPackHeaderCountIsBounded feeds a header that announces far more
// blobs than it can hold: it must fail without allocating for them.
func TestPackHeaderCountIsBounded(t *testing.T) {
	buf := binary.AppendUvarint(nil, 1<<20-8)
	buf = append(buf, make([]byte, 1<<20-len(buf))...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := DecodePackHeader(buf, 1<<40)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("impossible header decoded")
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 4<<20 {
		t.Fatalf("decoding a %d-byte header allocated %d bytes", len(buf), grown)
	}
}

// TestWriteFuzzCorpus (re)writes the committed seed corpus from real
// encoded values. It runs only when EINVAULT_WRITE_FUZZ_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("EINVAULT_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set EINVAULT_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz")
	}
	fx := fuzzSetup(t)
	write := func(fuzzer, name string, args ...any) {
		var b strings.Builder
		b.WriteString("go test fuzz v1\n")
		for _, a := range args {
			switch v := a.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
			case int64:
				fmt.Fprintf(&b, "int64(%d)\n", v)
			}
		}
		dir := filepath.Join("testdata", "fuzz", fuzzer)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("FuzzDecodeConfig", "real", fx.config)
	write("FuzzDecodeKeyFile", "real", fx.keyFile)
	write("FuzzDecodeKeyring", "real", fx.keyring)
	write("FuzzDecodePackHeader", "real", fx.packHdr, fx.packData)
	write("FuzzDecodePackHeader", "huge-count", []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, int64(1<<40))
	write("FuzzDecodeIndexFile", "real", fx.index)
	write("FuzzDecodeIndexFile", "huge-count", []byte(indexMagic+"\x00\xff\xff\xff\xff\x0f"))
	write("FuzzDecodeSnapshot", "real", fx.snapshot)
	write("FuzzDecodeTree", "real", fx.tree)
	write("FuzzDecodeTree", "dotdot", []byte(`{"nodes":[{"name":"..","type":"file"}]}`))
	write("FuzzDecodeTree", "dir-without-subtree", []byte(`{"nodes":[{"name":"a","type":"dir"}]}`))
	// Sealed files depend on the key of the repository the fuzzer builds,
	// which is random per run: only the unkeyed prefixes are worth keeping.
	write("FuzzOpenSealed", "trailer-only", fx.pack[len(fx.pack)-packTrailerSize:])
	write("FuzzOpenSealed", "file-header-only", []byte(fileMagic+"\x01\x01\x01\x00\x00\x00"))
}
