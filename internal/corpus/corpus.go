// Package corpus generates a deterministic, realistic e-invoice corpus for
// benchmarks and tests: Vietnamese Circular 78 invoice XML files in
// year/month folders, incompressible PDF-like renderings for some of them,
// and one large SQL dump of the invoice database. Mutate changes and adds
// files the way a day of business does, for incremental-backup benchmarks.
//
// Layout of a generated corpus:
//
//	corpus.json                                   parameters it was generated with
//	invoices/2024/03/<MST>_<KHMSHDon><KHHDon>_<SHDon 8 digits>.xml
//	renderings/2024/03/<same name>.pdf
//	db/einvoice_dump.sql
//
// The same Options always produce the same bytes (file contents and
// modification times), whatever the number of CPUs.
package corpus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Options controls Generate.
type Options struct {
	// Files is the number of invoice XML files (required, > 0).
	Files int
	// Seed selects the corpus; the same seed gives the same bytes.
	Seed int64
	// PDFRatio is the fraction of invoices that also get a PDF rendering.
	// 0 means DefaultPDFRatio; a negative value means none.
	PDFRatio float64
	// DumpSize is the approximate size of the SQL dump in bytes. 0 means
	// DefaultDumpSize(Files); a negative value means no dump file.
	DumpSize int64
	// Progress, if set, is called from one goroutine at a time with the
	// number of invoices written so far.
	Progress func(done, total int)
}

// DefaultPDFRatio is the share of invoices with a rendering when
// Options.PDFRatio is 0.
const DefaultPDFRatio = 0.10

// dumpBytesPerFile sizes the default dump so that 100000 files give a
// corpus of about 1 GB in all.
const dumpBytesPerFile = 700

// DefaultDumpSize is the dump size used when Options.DumpSize is 0.
func DefaultDumpSize(files int) int64 {
	return max(int64(files)*dumpBytesPerFile, 256<<10)
}

// Stats describes what Generate wrote.
type Stats struct {
	Invoices   int           `json:"invoices"`
	Renderings int           `json:"renderings"`
	Files      int           `json:"files"` // all files, including corpus.json and the dump
	Bytes      int64         `json:"bytes"` // all bytes written
	XMLBytes   int64         `json:"xml_bytes"`
	PDFBytes   int64         `json:"pdf_bytes"`
	DumpBytes  int64         `json:"dump_bytes"`
	Duration   time.Duration `json:"duration_ns"`
}

// manifestName is the corpus-relative path of the parameter file.
const manifestName = "corpus.json"

type manifest struct {
	Generator string  `json:"generator"`
	Files     int     `json:"files"`
	Seed      int64   `json:"seed"`
	PDFRatio  float64 `json:"pdf_ratio"`
	DumpSize  int64   `json:"dump_size"`
}

const generatorVersion = "einvault-corpus/1"

func (o Options) normalized() (Options, error) {
	if o.Files <= 0 {
		return o, fmt.Errorf("corpus: Files must be positive, got %d", o.Files)
	}
	if o.PDFRatio == 0 {
		o.PDFRatio = DefaultPDFRatio
	}
	if o.PDFRatio < 0 {
		o.PDFRatio = 0
	}
	if o.PDFRatio > 1 {
		return o, fmt.Errorf("corpus: PDFRatio must be at most 1, got %g", o.PDFRatio)
	}
	if o.DumpSize == 0 {
		o.DumpSize = DefaultDumpSize(o.Files)
	}
	return o, nil
}

// Generate writes a corpus into dir, which must be missing or empty.
func Generate(ctx context.Context, dir string, opts Options) (Stats, error) {
	start := time.Now()
	opts, err := opts.normalized()
	if err != nil {
		return Stats{}, err
	}
	if err := ensureEmptyDir(dir); err != nil {
		return Stats{}, err
	}
	plan := makePlan(opts.Seed, opts.Files, opts.PDFRatio)
	nBuyers := buyerPoolSize(opts.Files)

	var st Stats
	m, _ := json.MarshalIndent(manifest{generatorVersion, opts.Files, opts.Seed, opts.PDFRatio, opts.DumpSize}, "", "  ")
	m = append(m, '\n')
	if err := writeFile(filepath.Join(dir, manifestName), m, epoch); err != nil {
		return st, err
	}
	st.Files++
	st.Bytes += int64(len(m))
	for _, top := range []string{"invoices", "renderings"} {
		for y := 0; y < 2; y++ {
			for mo := 1; mo <= 12; mo++ {
				if err := os.MkdirAll(filepath.Join(dir, top, fmt.Sprintf("%04d/%02d", startYear+y, mo)), 0o755); err != nil {
					return st, fmt.Errorf("corpus: %w", err)
				}
			}
		}
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	fail := func(err error) { cancel(err) }

	if opts.DumpSize > 0 {
		if err := os.MkdirAll(filepath.Join(dir, "db"), 0o755); err != nil {
			return st, fmt.Errorf("corpus: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := filepath.Join(dir, DumpPath)
			f, err := os.Create(path)
			if err != nil {
				fail(fmt.Errorf("corpus: %w", err))
				return
			}
			n, err := writeDump(ctx, f, opts.Seed, plan, nBuyers, opts.DumpSize)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = os.Chtimes(path, epoch.AddDate(0, 0, spanDays), epoch.AddDate(0, 0, spanDays))
			}
			if err != nil {
				fail(fmt.Errorf("corpus: writing dump: %w", err))
				return
			}
			st.DumpBytes = n
		}()
	}

	var next, done atomic.Int64
	var xmlBytes, pdfBytes, pdfs atomic.Int64
	workers := min(max(runtime.GOMAXPROCS(0), 2), 8)
	const chunk = 64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var xbuf bytes.Buffer
			var pbuf []byte
			for ctx.Err() == nil {
				lo := int(next.Add(chunk)) - chunk
				if lo >= len(plan) {
					return
				}
				for i := lo; i < min(lo+chunk, len(plan)); i++ {
					p := plan[i]
					inv := buildInvoice(opts.Seed, i, p, nBuyers, &xbuf)
					xmlPath, pdfPath := invoicePaths(p)
					if err := writeFile(filepath.Join(dir, xmlPath), xbuf.Bytes(), inv.signed); err != nil {
						fail(err)
						return
					}
					xmlBytes.Add(int64(xbuf.Len()))
					if p.pdf {
						r := newRNG(opts.Seed, streamPDF, uint64(i))
						pbuf = renderPDF(pbuf, r, pdfTitle(inv), inv.signed.Format("20060102150405"), pdfSize(r))
						if err := writeFile(filepath.Join(dir, pdfPath), pbuf, inv.signed.Add(2*time.Second)); err != nil {
							fail(err)
							return
						}
						pdfBytes.Add(int64(len(pbuf)))
						pdfs.Add(1)
					}
					done.Add(1)
				}
			}
		}()
	}

	finished := make(chan struct{})
	var pwg sync.WaitGroup
	if opts.Progress != nil {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-finished:
					return
				case <-t.C:
					opts.Progress(int(done.Load()), opts.Files)
				}
			}
		}()
	}
	wg.Wait()
	close(finished)
	pwg.Wait()
	if err := context.Cause(ctx); err != nil {
		return st, err
	}
	if opts.Progress != nil {
		opts.Progress(int(done.Load()), opts.Files)
	}
	st.Invoices = opts.Files
	st.Renderings = int(pdfs.Load())
	st.XMLBytes = xmlBytes.Load()
	st.PDFBytes = pdfBytes.Load()
	st.Files += st.Invoices + st.Renderings
	if opts.DumpSize > 0 {
		st.Files++
	}
	st.Bytes += st.XMLBytes + st.PDFBytes + st.DumpBytes
	st.Duration = time.Since(start)
	return st, nil
}

func pdfTitle(inv *invoice) string {
	return fmt.Sprintf("Hoa don %s%s so %d", inv.form, inv.series, inv.plan.number)
}

// writeFile writes data to path and sets its modification time.
func writeFile(path string, data []byte, mtime time.Time) error {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("corpus: %w", err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		return fmt.Errorf("corpus: %w", err)
	}
	return nil
}

func ensureEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("corpus: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("corpus: %w", err)
	case len(entries) > 0:
		return fmt.Errorf("corpus: %s is not empty; generate into a new or empty directory", dir)
	}
	return nil
}
