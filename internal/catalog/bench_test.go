package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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

// BenchmarkColdLookup is the catalog's share of a look-up with an empty
// cache: open a payload of EINVAULT_BENCH_LOOKUP_ENTRIES entries
// (default 100,000; 1,000,000 is the scale) and find one key,
// as 'invoices restore KEY' does on a new machine. Reading and
// decrypting the catalog file comes on top.
func BenchmarkColdLookup(b *testing.B) {
	n := 100_000
	if s := os.Getenv("EINVAULT_BENCH_LOOKUP_ENTRIES"); s != "" {
		if _, err := fmt.Sscan(s, &n); err != nil {
			b.Fatal(err)
		}
	}
	base := sampleCatalog().Entries[0]
	w, err := NewWriter()
	if err != nil {
		b.Fatal(err)
	}
	var pdfs []File
	for lo := 0; lo < n; lo += BlockEntries {
		var blk []Entry
		for i := lo; i < min(lo+BlockEntries, n); i++ {
			e := base
			e.SellerTaxCode = fmt.Sprintf("01%08d", i%997)
			e.Number = fmt.Sprint(i)
			e.Path = fmt.Sprintf("/srv/inv/%d/%d.xml", i/1000, i)
			sum := sha256.Sum256([]byte(e.Path))
			e.ContentID = hex.EncodeToString(sum[:])
			e.Blobs = []Blob{{ID: repo.Hash([]byte(e.Path)), Pack: -1}}
			e.PDF = nil
			if i%10 == 0 {
				p := fmt.Sprintf("/srv/pdf/%d/%d.pdf", i/1000, i)
				pdfs = append(pdfs, File{Path: p, Size: 1, Blobs: []Blob{{ID: repo.Hash([]byte(p))}}})
			}
			blk = append(blk, e)
		}
		if err := w.AddBlock(blk); err != nil {
			b.Fatal(err)
		}
	}
	pack := Pack{ID: repo.Hash([]byte("p")), Epoch: 1, Salt: bytes.Repeat([]byte{1}, 16)}
	data, err := w.Finish(pdfs, nil, func(id repo.ID) (Location, bool) { return Location{Pack: pack, Length: 9}, true })
	if err != nil {
		b.Fatal(err)
	}
	key := fmt.Sprintf("01%08d/1/C21TAQ/%d", (n/2)%997, n/2)
	for b.Loop() {
		r, err := OpenReader(data)
		if err != nil {
			b.Fatal(err)
		}
		got, err := r.Lookup(key)
		if err != nil || len(got) != 1 {
			b.Fatalf("%s: %d entries, %v", key, len(got), err)
		}
	}
	b.ReportMetric(float64(len(data)), "payload-bytes")
}
