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
	"slices"
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
	// SaveCatalogCompressed seals a payload without compressing it (a
	// format 2 payload is compressed block by block).
	SaveCatalogCompressed(ctx context.Context, payload []byte) (repo.ID, error)
}

// BuilderOptions configure a Builder.
type BuilderOptions struct {
	Recognize Recognizer
	// Parent is the parent snapshot's catalog: entries of files the
	// backup did not read are carried over from it.
	Parent *Reader
	Index  Locator
	Store  Saver
	Logger *slog.Logger
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

type fileRef struct {
	size    uint64
	content []repo.ID
}

// Builder collects a snapshot's catalog while the archiver runs. It
// implements archiver.Observer: File parses candidate files in the
// archiver's file worker that read them (as many as the backup runs in
// parallel), straight from the bytes the worker holds: no copy, no
// queue. Entries are encoded and compressed in
// blocks of BlockEntries as they arrive (format 2, see Writer), so memory
// does not grow with the number of invoices beyond the compressed
// catalog and the IDs of the blobs it refers to.
type Builder struct {
	opts BuilderOptions
	w    *Writer

	mu       sync.Mutex
	block    []Entry   // entries not yet encoded
	spare    [][]Entry // encoded blocks' arrays, for reuse
	rejected []Rejected
	pdfs     []File
	reused   map[string]fileRef
	stats    BuildStats
	err      error // first encoding error
	parseNS  atomic.Int64
	ctx      context.Context
	closed   atomic.Bool
}

// NewBuilder prepares a builder; Finish saves the catalog.
func NewBuilder(ctx context.Context, opts BuilderOptions) *Builder {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w, err := NewWriter()
	return &Builder{opts: opts, ctx: ctx, reused: map[string]fileRef{}, w: w, err: err}
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
	if isPDF(p) {
		b.mu.Lock()
		b.pdfs = append(b.pdfs, File{Path: p, Size: node.Size, Blobs: blobRefs(node.Content)})
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
	if b.closed.Load() || b.ctx.Err() != nil {
		return
	}
	b.parse(b.ctx, p, node, data)
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
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], s[:])
	return string(h[:])
}

func (b *Builder) parse(ctx context.Context, p string, node *repo.Node, data []byte) {
	start := time.Now()
	invs, err := b.opts.Recognize(ctx, path.Base(p), data)
	b.parseNS.Add(int64(time.Since(start)))
	cid := ContentID(data)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stats.Offered++
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		b.stats.Rejected++
		b.rejected = append(b.rejected, Rejected{Path: p, ContentID: cid, Reason: err.Error()})
		b.opts.Logger.Debug("invoice parser refused a file", "path", p, "err", err)
		return
	}
	for _, inv := range invs {
		b.addLocked(Entry{Invoice: inv, ContentID: cid, File: File{Path: p, Size: node.Size, Blobs: blobRefs(node.Content)}})
	}
}

// addLocked queues an entry (b.mu held); a full block is encoded and
// compressed by the calling goroutine with the lock released.
func (b *Builder) addLocked(e Entry) {
	if b.block == nil {
		if n := len(b.spare); n > 0 {
			b.block, b.spare = b.spare[n-1], b.spare[:n-1]
		} else {
			b.block = make([]Entry, 0, BlockEntries)
		}
	}
	b.block = append(b.block, e)
	b.stats.Invoices++
	if len(b.block) < BlockEntries {
		return
	}
	full := b.block
	b.block = nil
	if b.w == nil {
		return // b.err says why
	}
	b.mu.Unlock()
	err := b.w.AddBlock(full)
	clear(full)
	b.mu.Lock()
	b.spare = append(b.spare, full[:0])
	if err != nil && b.err == nil {
		b.err = err
	}
}

// Close makes File ignore further files (after a failed backup). The
// archiver has returned by then, so no File call is running.
func (b *Builder) Close() { b.closed.Store(true) }

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
// entries of unchanged files over from the parent, records where every
// blob is stored and saves the catalog.
func (b *Builder) Finish(ctx context.Context) (*repo.ID, error) {
	payload, err := b.Payload(ctx)
	if err != nil {
		return nil, err
	}
	id, err := b.opts.Store.SaveCatalogCompressed(ctx, payload)
	if err != nil {
		return nil, err
	}
	return &id, nil
}

// Payload returns the encoded catalog (after the archiver's last File).
func (b *Builder) Payload(ctx context.Context) ([]byte, error) {
	b.Close()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return nil, fmt.Errorf("encode catalog: %w", b.err)
	}
	if p := b.opts.Parent; p != nil && len(b.reused) > 0 {
		err := p.Each(func(e *Entry) error {
			ref, ok := b.reused[e.Path]
			if !ok || !sameBlobs(e.Blobs, ref.content) {
				return nil
			}
			ne := *e
			ne.Reused, ne.PDF, ne.Blobs = true, nil, blobRefs(ref.content)
			b.stats.Reused++
			b.addLocked(ne)
			return ctx.Err()
		})
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err != nil {
			// a damaged parent costs carried-over entries, never the backup
			b.opts.Logger.Warn("parent catalog is damaged: some unchanged invoices are not carried over (run 'einvault check'; a --full backup catalogs everything)", "err", err)
		}
	}
	if err := b.w.AddBlock(b.block); err != nil {
		return nil, fmt.Errorf("encode catalog: %w", err)
	}
	if b.err != nil {
		return nil, fmt.Errorf("encode catalog: %w", b.err)
	}
	b.block = nil
	rejected := b.rejected
	if len(rejected) > 0 {
		rejected = slices.Clone(rejected)
		slices.SortFunc(rejected, func(a, c Rejected) int { return strings.Compare(a.Path, c.Path) })
	}
	payload, err := b.w.Finish(b.pdfs, rejected, IndexLocator(b.opts.Index))
	if err != nil {
		return nil, fmt.Errorf("encode catalog: %w", err)
	}
	return payload, nil
}

// Catalog assembles the whole catalog in memory (after Close; tests and
// small catalogs).
func (b *Builder) Catalog(ctx context.Context) (*Catalog, error) {
	payload, err := b.Payload(ctx)
	if err != nil {
		return nil, err
	}
	return Decode(payload)
}

func isPDF(p string) bool { return strings.HasSuffix(strings.ToLower(p), ".pdf") }

func pathDir(p string) string { return path.Dir(p) }

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
