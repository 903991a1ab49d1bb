package restorer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/repo"
)

// smallFilesSnapshot backs up n invoice-sized files (3-12 KB) in
// year/month folders.
func smallFilesSnapshot(tb testing.TB, n int) (*repo.Repository, *repo.Snapshot, string) {
	tb.Helper()
	src := filepath.Join(tb.TempDir(), "inv")
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < n; i++ {
		dir := filepath.Join(src, fmt.Sprint(2020+i%5), fmt.Sprintf("%02d", 1+i/5%12))
		if i < 60 {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				tb.Fatal(err)
			}
		}
		data := randBytes(rng, 3000+rng.IntN(9000))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("HD%07d.xml", i)), data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	r := testRepo(tb)
	return r, backup(tb, r, src), src
}

func TestManySmallFiles(t *testing.T) {
	n := 20000
	if testing.Short() || raceEnabled {
		n = 3000 // the race detector makes syscalls much slower
	}
	r, snap, src := smallFilesSnapshot(t, n)
	target := t.TempDir()
	start := time.Now()
	rep, err := New(r, Options{VerifyAfter: false}).Restore(context.Background(), snap, src, target)
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if rep.Files != uint64(n) {
		t.Fatalf("restored %d of %d files", rep.Files, n)
	}
	t.Logf("restored %d small files (%.1f MB) in %v: %.0f files/s, %.1f MB/s", n, float64(rep.Bytes)/1e6, el,
		float64(n)/el.Seconds(), float64(rep.Bytes)/1e6/el.Seconds())
	assertNoTemp(t, target)
}

func BenchmarkRestoreSmallFiles(b *testing.B) {
	const n = 20000
	r, snap, src := smallFilesSnapshot(b, n)
	for _, workers := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			var bytes uint64
			for i := 0; i < b.N; i++ {
				target := filepath.Join(b.TempDir(), fmt.Sprint(i))
				rep, err := New(r, Options{Workers: workers}).Restore(context.Background(), snap, src, target)
				if err != nil {
					b.Fatal(err)
				}
				bytes = rep.Bytes
			}
			b.SetBytes(int64(bytes))
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "files/s")
		})
	}
}
