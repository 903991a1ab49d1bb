package repo

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestLowEntropy(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	// 128 symbols uniformly: exactly 7 bits per byte.
	seven := make([]byte, 4096)
	for i := range seven {
		seven[i] = byte(i % 128)
	}
	eightish := make([]byte, 4096)
	for i := range eightish {
		eightish[i] = byte(i % 256)
	}
	xml := []byte(strings.Repeat(`<HDon><DLHDon><TTChung><KHHDon>C24TAA</KHHDon><SHDon>42</SHDon></TTChung></DLHDon></HDon>`, 50))[:4096]
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"empty", nil, true},
		{"zeros", make([]byte, 4096), true},
		{"xml", xml, true},
		{"text", bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog "), 100)[:4096], true},
		{"7 bits", seven, true},
		{"256 symbols", eightish, false},
		{"random", random, false},
	} {
		if got := lowEntropy(tc.b); got != tc.want {
			t.Errorf("%s: lowEntropy = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Compressible blobs (the entropy shortcut) are still compressed and
// incompressible ones (the trial compression) stored as they are.
func TestCompressDecision(t *testing.T) {
	r, err := newRepository(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(5, 6))
	random := make([]byte, 64<<10)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	xml := []byte(strings.Repeat(`<HDon><DLHDon><TTChung><KHHDon>C24TAA</KHHDon><SHDon>42</SHDon></TTChung></DLHDon></HDon>`, 400))
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"xml", xml, true},
		{"random", random, false},
		{"small", []byte("tiny"), false},
	} {
		c, ok := r.compress(tc.b)
		if ok != tc.want {
			t.Errorf("%s: compressed = %v (%d of %d bytes), want %v", tc.name, ok, len(c), len(tc.b), tc.want)
		}
		if ok {
			back, err := r.zdec.DecodeAll(c, nil)
			if err != nil || !bytes.Equal(back, tc.b) {
				t.Errorf("%s: round trip failed: %v", tc.name, err)
			}
			r.releaseBuf(c)
		}
	}
}

func BenchmarkCompressXML(b *testing.B) {
	r, err := newRepository(nil, Options{})
	if err != nil {
		b.Fatal(err)
	}
	xml := []byte(strings.Repeat(`<HDon><DLHDon><TTChung><KHHDon>C24TAA</KHHDon><SHDon>42</SHDon><Ten>Công ty TNHH</Ten></TTChung></DLHDon></HDon>`, 90))
	b.SetBytes(int64(len(xml)))
	for b.Loop() {
		c, ok := r.compress(xml)
		if ok {
			r.releaseBuf(c)
		}
	}
}
