package repo

import (
	"bytes"
	"math/rand/v2"
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
