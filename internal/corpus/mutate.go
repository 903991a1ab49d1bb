package corpus

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MutateOptions controls Mutate.
type MutateOptions struct {
	// Seed selects which files change and how; use a new seed for each
	// round of changes. The same seed on the same corpus gives the same bytes.
	Seed int64
	// Change is the fraction of existing files (invoices, renderings and
	// the dump) to modify. 0 means DefaultChange; negative means none.
	Change float64
	// Add is the number of new invoices as a fraction of the existing
	// ones. 0 means DefaultAdd; negative means none.
	Add float64
	// DumpAppend is how many bytes of new rows to append to the dump when
	// it is among the changed files. 0 means 5% of the dump, between
	// 64 KiB and 8 MiB.
	DumpAppend int64
	// Progress, if set, is called (never concurrently) with the number of
	// files changed or added so far.
	Progress func(done, total int)
}

// Defaults for MutateOptions.
const (
	DefaultChange = 0.05
	DefaultAdd    = 0.01
)

// MutateStats describes what Mutate did.
type MutateStats struct {
	Changed           int           `json:"changed"` // files modified, including the dump
	ChangedInvoices   int           `json:"changed_invoices"`
	ChangedRenderings int           `json:"changed_renderings"`
	DumpAppended      int64         `json:"dump_appended_bytes"`
	Added             int           `json:"added"` // new files: invoices and their renderings
	AddedInvoices     int           `json:"added_invoices"`
	AddedRenderings   int           `json:"added_renderings"`
	BytesWritten      int64         `json:"bytes_written"`
	Duration          time.Duration `json:"duration_ns"`
}

type mutation struct {
	path string // corpus-relative, slash-separated
	key  uint64
}

// Mutate deterministically changes a fraction of the files of a corpus made
// by Generate and adds new invoices, like a day of business: some invoices
// are marked adjusted and re-signed, some renderings are re-rendered, rows
// are appended to the dump, and new invoices continue each series.
func Mutate(ctx context.Context, dir string, opts MutateOptions) (MutateStats, error) {
	start := time.Now()
	var st MutateStats
	if opts.Change == 0 {
		opts.Change = DefaultChange
	}
	if opts.Add == 0 {
		opts.Add = DefaultAdd
	}
	if opts.Change > 1 || opts.Add > 10 {
		return st, fmt.Errorf("corpus: change fraction must be at most 1 and add at most 10, got %g and %g", opts.Change, opts.Add)
	}
	man, err := readManifest(dir)
	if err != nil {
		return st, err
	}
	var xmls, pdfs []string
	for _, top := range []string{"invoices", "renderings"} {
		err := filepath.WalkDir(filepath.Join(dir, top), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				rel, _ := filepath.Rel(dir, p)
				rel = filepath.ToSlash(rel)
				switch {
				case top == "invoices" && strings.HasSuffix(rel, ".xml"):
					xmls = append(xmls, rel)
				case top == "renderings" && strings.HasSuffix(rel, ".pdf"):
					pdfs = append(pdfs, rel)
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return st, fmt.Errorf("corpus: %w", err)
		}
	}
	if len(xmls) == 0 {
		return st, fmt.Errorf("corpus: no invoices under %s; run generate first", filepath.Join(dir, "invoices"))
	}
	_, err = os.Stat(filepath.Join(dir, DumpPath))
	hasDump := err == nil

	// choose the files to change: the k lowest keys
	cands := make([]mutation, 0, len(xmls)+len(pdfs))
	for _, p := range append(slices.Clip(xmls), pdfs...) {
		cands = append(cands, mutation{p, splitmix64(uint64(opts.Seed) ^ splitmix64(streamMutSelect^hashString(p)))})
	}
	n := len(cands)
	if hasDump {
		n++
	}
	k := 0
	if opts.Change > 0 {
		k = int(math.Round(opts.Change * float64(n)))
	}
	changeDump := hasDump && k > 0
	if changeDump {
		k--
	}
	slices.SortFunc(cands, func(a, b mutation) int {
		if a.key != b.key {
			if a.key < b.key {
				return -1
			}
			return 1
		}
		return strings.Compare(a.path, b.path)
	})
	chosen := cands[:min(k, len(cands))]
	slices.SortFunc(chosen, func(a, b mutation) int { return strings.Compare(a.path, b.path) })

	adds := 0
	if opts.Add > 0 {
		adds = max(1, int(math.Round(opts.Add*float64(len(xmls)))))
	}
	total := len(chosen) + adds
	if changeDump {
		total++
	}
	var mu sync.Mutex
	var done int
	step := func() {
		if opts.Progress == nil {
			return
		}
		mu.Lock()
		done++
		opts.Progress(done, total)
		mu.Unlock()
	}

	// change files, in parallel
	var written, chX, chP atomic.Int64
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(chosen) {
					return
				}
				m, err := mutateFile(dir, chosen[i].path, opts.Seed)
				if err != nil {
					cancel(err)
					return
				}
				written.Add(m)
				if strings.HasSuffix(chosen[i].path, ".xml") {
					chX.Add(1)
				} else {
					chP.Add(1)
				}
				step()
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return st, err
	}
	st.ChangedInvoices, st.ChangedRenderings = int(chX.Load()), int(chP.Load())
	st.Changed = st.ChangedInvoices + st.ChangedRenderings
	st.BytesWritten = written.Load()

	// add new invoices
	added, err := addInvoices(ctx, dir, man, xmls, adds, opts.Seed, step)
	if err != nil {
		return st, err
	}
	for _, a := range added {
		st.AddedInvoices++
		st.BytesWritten += a.xmlBytes + a.pdfBytes
		if a.pdfBytes > 0 {
			st.AddedRenderings++
		}
	}
	st.Added = st.AddedInvoices + st.AddedRenderings

	if changeDump {
		want := opts.DumpAppend
		if want == 0 {
			fi, err := os.Stat(filepath.Join(dir, DumpPath))
			if err != nil {
				return st, fmt.Errorf("corpus: %w", err)
			}
			want = min(max(fi.Size()/20, 64<<10), 8<<20)
		}
		if want > 0 {
			m, err := appendDump(ctx, filepath.Join(dir, DumpPath), opts.Seed, added, len(xmls), want)
			if err != nil {
				return st, err
			}
			st.DumpAppended = m
			st.BytesWritten += m
			st.Changed++
			step()
		}
	}
	st.Duration = time.Since(start)
	return st, nil
}

func readManifest(dir string) (manifest, error) {
	var m manifest
	b, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return m, fmt.Errorf("corpus: %w (is %s a generated corpus?)", err, dir)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("corpus: %s: %w", manifestName, err)
	}
	if m.Files <= 0 {
		return m, fmt.Errorf("corpus: %s: bad file count %d", manifestName, m.Files)
	}
	return m, nil
}

// mutateFile rewrites one invoice or rendering; the result depends on the
// seed, the path and the current content.
func mutateFile(dir, rel string, seed int64) (int64, error) {
	path := filepath.Join(dir, filepath.FromSlash(rel))
	old, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("corpus: %w", err)
	}
	var out []byte
	if strings.HasSuffix(rel, ".xml") {
		r := newRNG(seed, streamMutXML, hashString(rel)^hashBytes(old))
		out = adjustXML(old, r)
	} else {
		r := newRNG(seed, streamMutPDF, hashString(rel)^hashBytes(old[:min(len(old), 4096)]))
		size := max(minPDF, len(old)+r.between(-2048, 2048))
		title := strings.TrimSuffix(filepath.Base(rel), ".pdf")
		out = renderPDF(nil, r, title+" (ban in lai)", "20260101090000", size)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return 0, fmt.Errorf("corpus: %w", err)
	}
	return int64(len(out)), nil
}

const adjustMarker = "<TTruong>Trạng thái điều chỉnh</TTruong>"

var (
	sigValueRe   = regexp.MustCompile(`<SignatureValue>([^<]*)</SignatureValue>`)
	digestRe     = regexp.MustCompile(`<DigestValue>([^<]*)</DigestValue>`)
	signingTimeR = regexp.MustCompile(`<SigningTime>([^<]*)</SigningTime>`)
)

// adjustXML marks an invoice as adjusted (a status inside the signed part)
// and re-signs it with fresh (fake) digests, signature values and times.
func adjustXML(data []byte, r *rng) []byte {
	s := string(data)
	if !strings.Contains(s, adjustMarker) {
		if i := strings.LastIndex(s, "</DLHDon>"); i >= 0 {
			note := fmt.Sprintf("<TTKhac><TTin>%s<KDLieu>string</KDLieu><DLieu>Bị điều chỉnh theo biên bản thỏa thuận số %d/BBĐC ngày %02d/%02d</DLieu></TTin></TTKhac>",
				adjustMarker, r.between(1, 999), r.between(1, 28), r.between(1, 12))
			s = s[:i] + note + s[i:]
		}
	}
	fresh := func(re *regexp.Regexp) {
		s = re.ReplaceAllStringFunc(s, func(m string) string {
			sub := re.FindStringSubmatch(m)
			old := sub[1]
			n := len(old)*3/4 - strings.Count(old, "=")
			return strings.Replace(m, old, r.b64(max(n, 1)), 1)
		})
	}
	fresh(digestRe)
	fresh(sigValueRe)
	s = signingTimeR.ReplaceAllStringFunc(s, func(m string) string {
		sub := signingTimeR.FindStringSubmatch(m)
		t, err := time.Parse("2006-01-02T15:04:05", sub[1])
		if err != nil {
			return m
		}
		t = t.Add(time.Duration(r.between(3600, 30*24*3600)) * time.Second)
		return "<SigningTime>" + t.Format("2006-01-02T15:04:05") + "</SigningTime>"
	})
	return []byte(s)
}

type addedInvoice struct {
	inv                *invoice
	id                 int64
	xmlPath, pdfPath   string
	xmlBytes, pdfBytes int64
}

// addInvoices writes count new invoices into the latest month, continuing
// the numbering of the series used in the latest year.
func addInvoices(ctx context.Context, dir string, man manifest, xmls []string, count int, seed int64, step func()) ([]addedInvoice, error) {
	if count == 0 {
		return nil, nil
	}
	type seriesKey struct{ mst, fs string }
	maxNum := map[seriesKey]uint32{}
	latest := ""
	for _, p := range xmls {
		// invoices/YYYY/MM/<mst>_<fs>_<num>.xml
		parts := strings.Split(p, "/")
		if len(parts) != 4 {
			continue
		}
		ym := parts[1] + "/" + parts[2]
		f := strings.Split(strings.TrimSuffix(parts[3], ".xml"), "_")
		if len(f) != 3 {
			continue
		}
		num, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		if ym > latest {
			latest = ym
		}
		k := seriesKey{f[0], f[1]}
		maxNum[k] = max(maxNum[k], uint32(num))
	}
	if latest == "" {
		return nil, fmt.Errorf("corpus: no invoice file names of the form invoices/YYYY/MM/<MST>_<series>_<number>.xml")
	}
	year, _ := strconv.Atoi(latest[:4])
	month, _ := strconv.Atoi(latest[5:])
	date := time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC) // last day of that month
	day := int(date.Sub(epoch).Hours() / 24)

	type choice struct {
		key            seriesKey
		seller, series int
	}
	var choices []choice
	for k := range maxNum {
		si, ok := sellerByMST(k.mst)
		if !ok || len(k.fs) != 7 || k.fs[0] != sellers[si].form {
			continue
		}
		for j, d := range sellers[si].series {
			if seriesName(d, year) == k.fs[1:] {
				choices = append(choices, choice{k, si, j})
			}
		}
	}
	if len(choices) == 0 {
		return nil, fmt.Errorf("corpus: no known series in %s to continue", latest)
	}
	slices.SortFunc(choices, func(a, b choice) int { return strings.Compare(a.key.mst+a.key.fs, b.key.mst+b.key.fs) })
	wsum := 0
	for _, c := range choices {
		wsum += sellers[c.seller].weight
	}
	pdfRatio := man.PDFRatio
	nBuyers := buyerPoolSize(man.Files)
	r := newRNG(seed, streamMutAdd, 0)
	out := make([]addedInvoice, 0, count)
	var buf bytes.Buffer
	var pbuf []byte
	for j := 0; j < count; j++ {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		w := r.intn(wsum)
		ci := 0
		for w >= sellers[choices[ci].seller].weight {
			w -= sellers[choices[ci].seller].weight
			ci++
		}
		c := choices[ci]
		maxNum[c.key]++
		p := planEntry{seller: uint8(c.seller), series: uint8(c.series), day: uint16(day), number: maxNum[c.key], pdf: r.chance(pdfRatio)}
		inv := makeInvoice(man.Seed, newRNG(seed, streamMutAdd, uint64(j)+1), p, nBuyers)
		for {
			buf.Reset()
			inv.renderXML(&buf, man.Seed)
			if buf.Len() <= maxXML || !inv.dropLines() {
				break
			}
		}
		a := addedInvoice{inv: inv, id: int64(len(xmls) + j + 1)}
		a.xmlPath, a.pdfPath = invoicePaths(p)
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, a.xmlPath)), 0o755); err != nil {
			return out, fmt.Errorf("corpus: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, a.xmlPath), buf.Bytes(), 0o644); err != nil {
			return out, fmt.Errorf("corpus: %w", err)
		}
		a.xmlBytes = int64(buf.Len())
		step()
		if p.pdf {
			pr := newRNG(seed, streamMutPDF, uint64(j)<<20|1)
			pbuf = renderPDF(pbuf, pr, pdfTitle(inv), inv.signed.Format("20060102150405"), pdfSize(pr))
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, a.pdfPath)), 0o755); err != nil {
				return out, fmt.Errorf("corpus: %w", err)
			}
			if err := os.WriteFile(filepath.Join(dir, a.pdfPath), pbuf, 0o644); err != nil {
				return out, fmt.Errorf("corpus: %w", err)
			}
			a.pdfBytes = int64(len(pbuf))
		}
		out = append(out, a)
	}
	return out, nil
}

var lastEventRe = regexp.MustCompile(`\((\d+),\d+,'[a-z_]+','\d{4}-`)

// appendDump cuts the trailer off the dump, appends rows for the added
// invoices and about want bytes of events, and writes the trailer again.
func appendDump(ctx context.Context, path string, seed int64, added []addedInvoice, nInvoices int, want int64) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("corpus: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("corpus: %w", err)
	}
	end := fi.Size()
	tailLen := min(end, 256<<10)
	tail := make([]byte, tailLen)
	if _, err := f.ReadAt(tail, end-tailLen); err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("corpus: %w", err)
	}
	if bytes.HasSuffix(tail, []byte(dumpTrailer)) {
		end -= int64(len(dumpTrailer))
		tail = tail[:len(tail)-len(dumpTrailer)]
	}
	var evID int64 = 1_000_000_000
	if ms := lastEventRe.FindAllSubmatch(tail, -1); len(ms) > 0 {
		evID, _ = strconv.ParseInt(string(ms[len(ms)-1][1]), 10, 64)
	}
	if err := f.Truncate(end); err != nil {
		return 0, fmt.Errorf("corpus: %w", err)
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		return 0, fmt.Errorf("corpus: %w", err)
	}
	r := newRNG(seed, streamMutDump, 0)
	s := &sqlWriter{w: bufio.NewWriterSize(f, 1<<20)}
	s.str(fmt.Sprintf("\n-- Incremental export, batch %d\n", r.between(1000, 9999)))
	if len(added) > 0 {
		s.beginTable("invoices", false)
		for _, a := range added {
			s.invoiceRow(a.id, a.inv, a.xmlPath, a.pdfPath)
		}
		s.endTable()
		s.beginTable("invoice_lines", false)
		lineID := int64(r.between(1, 1000)) * 1_000_000
		for _, a := range added {
			s.lineRows(&lineID, a.id, a.inv)
		}
		s.endTable()
	}
	s.beginTable("invoice_events", false)
	when := epoch.AddDate(0, 0, spanDays)
	for i := 0; s.n < want; i++ {
		if i%4096 == 0 && ctx.Err() != nil {
			return s.n, ctx.Err()
		}
		evID++
		inv := int64(r.intn(nInvoices + len(added)))
		when = when.Add(time.Duration(r.intn(60000)) * time.Millisecond)
		s.eventRow(r, evID, inv+1, when, "id:"+strconv.FormatInt(inv+1, 10))
	}
	s.endTable()
	s.str("\n")
	s.str(dumpTrailer)
	if err := s.w.Flush(); err != nil {
		return s.n, fmt.Errorf("corpus: %w", err)
	}
	return s.n, nil
}
