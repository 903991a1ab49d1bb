package repo

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// walLike returns a 16 MiB WAL-like segment: 8 KiB pages, a third zero,
// a third text-like records, a third half random.
func walLike() []byte {
	seg := make([]byte, 16<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	rec := []byte("INSERT INTO invoices VALUES (1234,'VN-INV-00001234',now());")
	for p := 0; p < len(seg); p += 8192 {
		switch (p / 8192) % 3 {
		case 1:
			for i := p; i < p+8192; i += len(rec) {
				copy(seg[i:min(i+len(rec), p+8192)], rec)
			}
		case 2:
			for i := p; i < p+4096; i += 8 {
				v := rng.Uint64()
				for j := range 8 {
					seg[i+j] = byte(v >> (8 * j))
				}
			}
		}
	}
	return seg
}

func BenchmarkSealWAL(b *testing.B) {
	r, _ := newTestRepo(b)
	seg := walLike()
	b.SetBytes(int64(len(seg)))
	for b.Loop() {
		if _, err := r.SealWAL("000000010000000000000003", seg); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSealWALRoundTrip(t *testing.T) {
	r, _ := newTestRepo(t)
	random := make([]byte, 3<<20+17)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for _, tc := range []struct {
		name    string
		content []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0}},
		{"wal-like 16 MiB", walLike()},
		{"incompressible", random},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const name = "0000000100000000000000A1"
			sealed, err := r.SealWAL(name, tc.content)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.OpenWAL(name, sealed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.content) {
				t.Fatalf("round trip: got %d bytes, want %d", len(got), len(tc.content))
			}
			if len(tc.content) > 1<<20 && tc.name == "wal-like 16 MiB" && len(sealed) > len(tc.content)/2 {
				t.Errorf("sealed %d bytes of %d: WAL-like data should compress", len(sealed), len(tc.content))
			}
		})
	}
}

// TestSealWALFormat: new WAL files are S2-compressed (flagS2), and the S2
// flag is accepted on WAL files only.
func TestSealWALFormat(t *testing.T) {
	r, _ := newTestRepo(t)
	const name = "0000000100000000000000A2"
	sealed, err := r.SealWAL(name, walLike())
	if err != nil {
		t.Fatal(err)
	}
	if sealed[4] != byte(KindWAL) || sealed[5] != flagS2 {
		t.Fatalf("header kind %d flags %#x, want WAL file with flagS2", sealed[4], sealed[5])
	}
	if _, err := r.OpenWAL("0000000100000000000000A3", sealed); err == nil {
		t.Fatal("WAL file opened under another name")
	}
	// An index file claiming S2 compression is refused before decryption.
	idx, err := r.sealFile(KindIndex, []byte("{}"))
	if err != nil {
		t.Fatal(err)
	}
	idx[5] = flagS2
	if _, err := r.openFile(KindIndex, idx); err == nil {
		t.Fatal("index file with flagS2 accepted")
	}
	// Tampering with the flag of a WAL file is detected (the header is
	// authenticated).
	sealed[5] = flagCompressed
	if _, err := r.OpenWAL(name, sealed); err == nil {
		t.Fatal("WAL file with an altered flag opened")
	}
}

// TestSealWALWithDirtyMemory seals into memory that is not zeroed (an
// arena reused, or huge pages handed out in any state): every byte of
// the output must be written by SealWALWith.
func TestSealWALWithDirtyMemory(t *testing.T) {
	r, _ := newTestRepo(t)
	seg := walLike()
	calls := 0
	dirty := func(n int) []byte {
		calls++
		b := make([]byte, n+100)
		for i := range b {
			b[i] = 0xa5
		}
		return b[:n]
	}
	for _, content := range [][]byte{nil, seg[:1], seg} {
		sealed, err := r.SealWALWith("000000010000000000000007", content, dirty)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.OpenWAL("000000010000000000000007", sealed)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("round trip of %d bytes: %v", len(content), err)
		}
	}
	if calls == 0 {
		t.Error("the allocator was never used")
	}
}

type failingReaderAt struct{ after int64 }

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.after {
		return 0, errors.New("disk on fire")
	}
	return len(p), nil
}

// TestSealWALFrom seals content read from a file-like source block by
// block: the same file as from memory, and read errors and short
// sources fail the seal instead of sealing something else.
func TestSealWALFrom(t *testing.T) {
	r, _ := newTestRepo(t)
	seg := walLike()
	const name = "000000010000000000000009"
	for _, n := range []int{0, 1, walBlockSize - 1, walBlockSize, walBlockSize + 1, 3*walBlockSize + 77, len(seg)} {
		sealed, err := r.SealWALFrom(name, bytes.NewReader(seg[:n]), int64(n), nil)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		got, err := r.OpenWAL(name, sealed)
		if err != nil || !bytes.Equal(got, seg[:n]) {
			t.Fatalf("%d bytes: round trip: %v", n, err)
		}
	}
	for _, tc := range []struct {
		name string
		src  io.ReaderAt
		size int64
		want string
	}{
		{"short", bytes.NewReader(seg[:5*walBlockSize+3]), 6 * walBlockSize, "shrank"},
		{"read error", failingReaderAt{after: 7 * walBlockSize}, 16 * walBlockSize, "disk on fire"},
		{"too large", bytes.NewReader(nil), 2 << 30, "largest WAL segment"},
	} {
		_, err := r.SealWALFrom(name, tc.src, tc.size, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
