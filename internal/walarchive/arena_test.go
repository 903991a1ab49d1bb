package walarchive

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestReadFileArena(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, size := range []int{0, 1, 4095, 4 << 20, 4<<20 + 1, 9<<20 + 4097, 16 << 20} {
		content := make([]byte, size)
		for i := range content {
			content[i] = byte(rng.Uint32())
		}
		path := filepath.Join(dir, "000000010000000000000001")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, workers := range []int{0, 2} {
			got, a, err := ReadFileArena(path, workers)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if !bytes.Equal(got, content) {
				t.Errorf("size %d workers %d: read other bytes than the file holds", size, workers)
			}
			// The room for sealing follows the content and does not
			// overlap it.
			if workers > 0 && size > 0 {
				b := a.Alloc(SealArenaSize(size, workers) / 2)
				for i := range b {
					b[i] = 0xff
				}
				if !bytes.Equal(got, content) {
					t.Errorf("size %d: arena allocation overlaps the content", size)
				}
			}
			a.Release()
		}
		data, release, err := ReadFile(path)
		if err != nil || !bytes.Equal(data, content) {
			t.Errorf("ReadFile size %d: %v", size, err)
		}
		release()
	}
	if _, _, err := ReadFileArena(filepath.Join(dir, "missing"), 1); err == nil {
		t.Error("a missing file was read")
	}
	if _, _, err := ReadFileArena(dir, 1); err == nil {
		t.Error("a directory was read")
	}
}

func TestArenaAlloc(t *testing.T) {
	a := NewArena(1 << 20)
	defer a.Release()
	x := a.Alloc(100)
	y := a.Alloc(1000)
	if len(x) != 100 || cap(x) != 100 || len(y) != 1000 {
		t.Fatalf("lengths %d/%d, %d", len(x), cap(x), len(y))
	}
	for i := range x {
		x[i] = 1
	}
	for i := range y {
		y[i] = 2
	}
	for _, v := range x {
		if v != 1 {
			t.Fatal("allocations overlap")
		}
	}
	// Beyond the reservation, and on a nil arena, memory comes from the
	// heap.
	if z := a.Alloc(2 << 20); len(z) != 2<<20 {
		t.Fatalf("len %d", len(z))
	}
	var nilArena *Arena
	if z := nilArena.Alloc(10); len(z) != 10 {
		t.Fatalf("len %d", len(z))
	}
	nilArena.Release()
}
