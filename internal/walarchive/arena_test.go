package walarchive

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestReadFileSizes(t *testing.T) {
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
		data, release, err := ReadFile(path)
		if err != nil || !bytes.Equal(data, content) {
			t.Errorf("ReadFile size %d: %v", size, err)
		}
		release()
	}
}

func TestArenaAlloc(t *testing.T) {
	a := newArena(sealArenaSize(3<<20, 2))
	defer a.release()
	x := a.alloc(100)
	y := a.alloc(3 << 20)
	if len(x) != 100 || cap(x) != 100 || len(y) != 3<<20 {
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
	if z := a.alloc(64 << 20); len(z) != 64<<20 {
		t.Fatalf("len %d", len(z))
	}
	var none *arena
	if z := none.alloc(10); len(z) != 10 {
		t.Fatalf("len %d", len(z))
	}
	none.release()
	a.release()
	a.release()
}
