package catalog

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/repo"
)

// BenchmarkBuilderCorpus measures what the catalog adds to a backup per
// corpus: every file offered to Builder.File (recognition, content ID,
// block encoding) and the payload finished, data already in memory.
// EINVAULT_BENCH_CORPUS names a corpus directory (bench/invoices.sh's
// cached ones); without it the benchmark is skipped.
func BenchmarkBuilderCorpus(b *testing.B) {
	dir := os.Getenv("EINVAULT_BENCH_CORPUS")
	if dir == "" {
		b.Skip("EINVAULT_BENCH_CORPUS not set")
	}
	type file struct {
		path string
		node repo.Node
		data []byte
	}
	var files []file
	var total int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			data, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			var id repo.ID
			copy(id[:], rel)
			files = append(files, file{filepath.ToSlash(rel), repo.Node{Name: d.Name(), Size: uint64(len(data)), Content: []repo.ID{id}}, data})
			total += int64(len(data))
		}
		return nil
	})
	b.SetBytes(total)
	ctx := context.Background()
	var size int
	cpu0 := cpuTime()
	for b.Loop() {
		bl := NewBuilder(ctx, BuilderOptions{Recognize: recognize})
		for i := range files {
			n := files[i].node
			bl.File(files[i].path, &n, files[i].data, false)
		}
		p, err := bl.Payload(ctx)
		if err != nil {
			b.Fatal(err)
		}
		size = len(p)
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(size), "payload-bytes")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
