package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/einvault/einvault/internal/invoice"
	"github.com/einvault/einvault/internal/repo"
)

// Recognizer finds the invoices in one file's bytes; nil, nil for a file
// that holds none (invoice.Recognize with the configured limits). An
// error means the file was refused and is recorded as rejected.
type Recognizer func(ctx context.Context, name string, data []byte) ([]invoice.Invoice, error)

// Locator finds where blobs are stored (the repository index).
type Locator interface {
	Lookup(id repo.ID) (repo.IndexEntry, bool)
	PackOf(e repo.IndexEntry) repo.PackInfo
}

// Saver stores a catalog payload in the repository.
type Saver interface {
	SaveCatalog(ctx context.Context, payload []byte) (repo.ID, error)
}

// BuilderOptions configure a Builder.
type BuilderOptions struct {
	Recognize Recognizer
	// Parent is the parent snapshot's catalog: entries of files the
	// backup did not read are carried over from it.
	Parent *Catalog
	Index  Locator
	Store  Saver
	// Workers is the number of parsing goroutines (default GOMAXPROCS);
	// when they fall behind, the archiver's file workers parse in their
	// place instead of waiting.
	Workers int
	Logger  *slog.Logger
}

// BuildStats says what building a catalog cost and found.
type BuildStats struct {
	Offered   uint64        `json:"files_offered"`  // files whose bytes the recogniser saw
	Skipped   uint64        `json:"files_skipped"`  // read, but not XML, ZIP or OFD by content
	Invoices  uint64        `json:"invoices"`       // entries in the catalog
	Reused    uint64        `json:"entries_reused"` // carried over from the parent catalog
	Rejected  uint64        `json:"files_rejected"`
	ParseTime time.Duration `json:"parse_ns"` // CPU time in the recogniser, all workers together
	Uncovered uint64        `json:"files_uncovered"`
}

type job struct {
	buf     *[]byte
	path    string
	size    uint64
	content []repo.ID
	data    []byte
}

type fileRef struct {
	size    uint64
	content []repo.ID
}

// Builder collects a snapshot's catalog while the archiver runs. It
// implements archiver.Observer: File copies the bytes of candidate files
// into a bounded queue that Workers goroutines parse, so the backup's
// own workers only pay for a copy.
type Builder struct {
	opts BuilderOptions
	jobs chan job
	wg   sync.WaitGroup
	once sync.Once

	mu       sync.Mutex
	entries  [][]Entry // blocks of entryBlock: appending never copies what is there
	rejected []Rejected
	pdfs     map[string][]File // by file name stem
	reused   map[string]fileRef
	stats    BuildStats
	parseNS  atomic.Int64
	bufs     sync.Pool // copies of file bytes waiting for a parser
	ctx      context.Context
}

// NewBuilder starts a builder's parsing goroutines; Finish or Close stops
// them.
func NewBuilder(ctx context.Context, opts BuilderOptions) *Builder {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Builder{opts: opts, ctx: ctx, jobs: make(chan job, 256), pdfs: map[string][]File{}, reused: map[string]fileRef{}}
	for range opts.Workers {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			for j := range b.jobs {
				if ctx.Err() == nil {
					b.parse(ctx, j)
				}
				b.putBuf(j.buf)
			}
		}()
	}
	return b
}

// Candidate reports whether data may hold an invoice judged by its first
// bytes: XML (possibly after a byte-order mark or white space) or a ZIP
// container (ZIP archives and OFD files).
func Candidate(data []byte) bool {
	if bytes.HasPrefix(data, []byte("PK\x03\x04")) {
		return true
	}
	d := bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	d = bytes.TrimLeft(d[:min(len(d), 4096)], " \t\r\n")
	if len(d) > 0 && d[0] == '<' {
		return true
	}
	// UTF-16 XML
	return bytes.HasPrefix(data, []byte("\xff\xfe<\x00")) || bytes.HasPrefix(data, []byte("\xfe\xff\x00<"))
}

func stem(p string) string {
	base := path.Base(p)
	if i := strings.LastIndexByte(base, '.'); i > 0 {
		base = base[:i]
	}
	return base
}

// File implements archiver.Observer.
func (b *Builder) File(p string, node *repo.Node, data []byte, reused bool) {
	if strings.HasSuffix(strings.ToLower(p), ".pdf") {
		b.mu.Lock()
		s := stem(p)
		b.pdfs[s] = append(b.pdfs[s], File{Path: p, Size: node.Size, Blobs: blobRefs(node.Content)})
		b.mu.Unlock()
	}
	if reused {
		b.mu.Lock()
		b.reused[p] = fileRef{size: node.Size, content: node.Content}
		b.mu.Unlock()
		return
	}
	if data == nil {
		return
	}
	if !Candidate(data) {
		b.mu.Lock()
		b.stats.Skipped++
		b.mu.Unlock()
		return
	}
	buf, _ := b.bufs.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	*buf = append((*buf)[:0], data...)
	j := job{path: p, size: node.Size, content: node.Content, data: *buf, buf: buf}
	select {
	case b.jobs <- j:
	default:
		// the parsers are behind: parse here rather than wait
		b.parse(b.ctx, j)
		b.putBuf(j.buf)
	}
}

func blobRefs(ids []repo.ID) []Blob {
	out := make([]Blob, len(ids))
	for i, id := range ids {
		out[i] = Blob{ID: id, Pack: -1}
	}
	return out
}

// ContentID is the catalog's content ID of a file: hex SHA-256 of its bytes.
func ContentID(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func (b *Builder) parse(ctx context.Context, j job) {
	start := time.Now()
	invs, err := b.opts.Recognize(ctx, path.Base(j.path), j.data)
	b.parseNS.Add(int64(time.Since(start)))
	cid := ContentID(j.data)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stats.Offered++
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		b.stats.Rejected++
		b.rejected = append(b.rejected, Rejected{Path: j.path, ContentID: cid, Reason: err.Error()})
		b.opts.Logger.Debug("invoice parser refused a file", "path", j.path, "err", err)
		return
	}
	for _, inv := range invs {
		if n := len(b.entries); n == 0 || len(b.entries[n-1]) == cap(b.entries[n-1]) {
			b.entries = append(b.entries, make([]Entry, 0, entryBlock))
		}
		last := &b.entries[len(b.entries)-1]
		*last = append(*last, Entry{Invoice: inv, ContentID: cid,
			File: File{Path: j.path, Size: j.size, Blobs: blobRefs(j.content)}})
	}
}

// entryBlock is the number of entries per block of Builder.entries.
const entryBlock = 1024

func (b *Builder) putBuf(buf *[]byte) {
	if cap(*buf) <= 1<<20 {
		b.bufs.Put(buf)
	}
}

// Close stops the parsing goroutines (after a failed backup).
func (b *Builder) Close() {
	b.once.Do(func() { close(b.jobs) })
	b.wg.Wait()
}

// Stats returns the counters; complete after Finish.
func (b *Builder) Stats() BuildStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.ParseTime = time.Duration(b.parseNS.Load())
	return s
}

func sameBlobs(a []Blob, ids []repo.ID) bool {
	if len(a) != len(ids) {
		return false
	}
	for i := range a {
		if a[i].ID != ids[i] {
			return false
		}
	}
	return true
}

// Finish implements archiver.Observer: it waits for the parsers, carries
// entries of unchanged files over from the parent, attaches renderings,
// records where every blob is stored and saves the catalog.
func (b *Builder) Finish(ctx context.Context) (*repo.ID, error) {
	b.Close()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := b.Catalog()
	if err != nil {
		return nil, err
	}
	payload, err := c.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode catalog: %w", err)
	}
	id, err := b.opts.Store.SaveCatalog(ctx, payload)
	if err != nil {
		return nil, err
	}
	return &id, nil
}

// Catalog assembles the catalog (after Close).
func (b *Builder) Catalog() (*Catalog, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, blk := range b.entries {
		n += len(blk)
	}
	if p := b.opts.Parent; p != nil && len(b.reused) > 0 {
		n += len(p.Entries)
	}
	entries := make([]Entry, 0, n)
	for _, blk := range b.entries {
		entries = append(entries, blk...)
	}
	if p := b.opts.Parent; p != nil && len(b.reused) > 0 {
		for _, e := range p.Entries {
			ref, ok := b.reused[e.Path]
			if !ok || !sameBlobs(e.Blobs, ref.content) {
				continue
			}
			e.Reused = true
			e.PDF = nil
			e.Blobs = blobRefs(ref.content)
			entries = append(entries, e)
			b.stats.Reused++
		}
	}
	c := &Catalog{Rejected: b.rejected}
	packPos := map[repo.ID]int{}
	locate := func(f *File) {
		for i := range f.Blobs {
			bl := &f.Blobs[i]
			bl.Pack = -1
			if b.opts.Index == nil {
				continue
			}
			ie, ok := b.opts.Index.Lookup(bl.ID)
			if !ok {
				continue
			}
			pi := b.opts.Index.PackOf(ie)
			pos, ok := packPos[pi.ID]
			if !ok {
				pos = len(c.Packs)
				packPos[pi.ID] = pos
				c.Packs = append(c.Packs, Pack{ID: pi.ID, Epoch: pi.Epoch, Salt: bytes.Clone(pi.Salt[:])})
			}
			bl.Pack, bl.Flags, bl.Offset, bl.Length = pos, ie.Flags, ie.Offset, ie.Length
		}
	}
	for i := range entries {
		e := &entries[i]
		e.PDF = b.rendering(e.Path)
		locate(&e.File)
		if e.PDF != nil {
			locate(e.PDF)
		}
	}
	c.Entries = entries
	c.Sort()
	b.stats.Invoices = uint64(len(entries))
	return c, nil
}

// rendering finds the PDF stored beside an invoice: same file name stem,
// preferring the same directory, then the path sharing most of its
// directories (invoices/2024/03/x.xml ↔ renderings/2024/03/x.pdf).
func (b *Builder) rendering(p string) *File {
	cands := b.pdfs[stem(p)]
	if len(cands) == 0 || strings.HasSuffix(strings.ToLower(p), ".pdf") {
		return nil
	}
	best, bestScore := -1, -1
	dir := path.Dir(p)
	for i, c := range cands {
		score := commonSuffixDirs(dir, path.Dir(c.Path))
		if path.Dir(c.Path) == dir {
			score = 1 << 20
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	f := cands[best]
	f.Blobs = append([]Blob(nil), f.Blobs...)
	return &f
}

func commonSuffixDirs(a, b string) int {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	n := 0
	for n < len(as) && n < len(bs) && as[len(as)-1-n] == bs[len(bs)-1-n] {
		n++
	}
	return n
}

// errNoCatalog is returned for snapshots made without a catalog.
var errNoCatalog = errors.New("snapshot has no invoice catalog (made with --no-catalog or by an older einvault)")
