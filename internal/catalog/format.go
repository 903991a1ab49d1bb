package catalog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/einvault/einvault/internal/repo"
	"github.com/klauspost/compress/zstd"
)

// Catalog format 2 (written since catalogs had to scale to millions of
// invoices): the payload is built block by block while the backup runs,
// so neither the builder nor a reader holds every entry at once.
//
//	"EVC1" | version u8 (2) | section* | trailer JSON | trailer length u32 LE
//
// A section is one zstd frame at an offset of the payload named by the
// trailer: entry blocks (JSON lines, at most BlockEntries entries each,
// blobs without locations and without the rendering), location blocks
// (fixed 45-byte records sorted by blob ID over all blocks: ID, pack
// index u32 LE with 0xFFFFFFFF for unknown, flags u8, offset u32 LE,
// sealed length u32 LE) and rendering blocks (JSON lines of File: the PDFs
// in the snapshot, attached to entries by file name stem when read).

// BlockEntries is the number of entries per entry block of format 2.
const BlockEntries = 1024

const (
	locRecord      = repo.IDSize + 4 + 1 + 4 + 4
	locPerBlock    = 1 << 16
	renderPerBlock = 4096
	noPack         = math.MaxUint32
	maxBlockBytes  = 64 << 20 // decompressed size of one section
	maxTrailer     = 64 << 20
)

// section is where one zstd frame lies in the payload and how many
// records it holds.
type section struct {
	Off int64 `json:"o"`
	Len int64 `json:"l"`
	N   int   `json:"n"`
}

type trailer struct {
	Packs      []Pack     `json:"packs"`
	Entries    int        `json:"entries"`
	Rejected   []Rejected `json:"rejected,omitempty"`
	Blocks     []section  `json:"blocks"`
	Locations  []section  `json:"locations"`
	Renderings []section  `json:"renderings"`
}

// Location is where a blob was stored when the catalog was written.
type Location struct {
	Pack   Pack
	Flags  uint8
	Offset uint32
	Length uint32
}

// LocateFunc says where a blob is stored; ok false leaves it unknown
// (readers then ask the index).
type LocateFunc func(id repo.ID) (loc Location, ok bool)

// IndexLocator locates blobs with a repository index.
func IndexLocator(ix Locator) LocateFunc {
	return func(id repo.ID) (Location, bool) {
		if ix == nil {
			return Location{}, false
		}
		ie, ok := ix.Lookup(id)
		if !ok {
			return Location{}, false
		}
		pi := ix.PackOf(ie)
		return Location{Pack: Pack{ID: pi.ID, Epoch: pi.Epoch, Salt: bytes.Clone(pi.Salt[:])}, Flags: ie.Flags, Offset: ie.Offset, Length: ie.Length}, true
	}
}

// Writer builds a format 2 payload block by block. AddBlock may be called
// from several goroutines; the blocks keep the order in which they were
// added. Memory: the compressed blocks and the IDs of the blobs they
// refer to.
type Writer struct {
	zenc *zstd.Encoder
	bufs chan []byte // encoding and compression buffers, reused across blocks

	mu      sync.Mutex
	chunks  [][]byte // the payload so far, in pieces (no regrowth copies)
	size    int64    // bytes in chunks
	blocks  []section
	entries int
	ids     []repo.ID
}

// NewWriter starts a payload.
func NewWriter() (*Writer, error) {
	procs := runtime.GOMAXPROCS(0)
	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(procs),
		zstd.WithWindowSize(256<<10), zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, err
	}
	head := append([]byte(magic), 2)
	return &Writer{zenc: zenc, chunks: [][]byte{head}, size: int64(len(head)), bufs: make(chan []byte, 2*procs)}, nil
}

// AddBlock encodes entries (at most BlockEntries; sorted in place by key)
// as one block. Their blob locations and renderings are not stored with
// them: Finish records locations once per blob, readers attach
// renderings.
func (w *Writer) AddBlock(entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if len(entries) > BlockEntries {
		return fmt.Errorf("catalog block of %d entries exceeds %d", len(entries), BlockEntries)
	}
	sortEntries(entries)
	var buf []byte
	select {
	case buf = <-w.bufs:
	default:
		buf = make([]byte, 0, 1024*len(entries))
	}
	defer func() {
		select {
		case w.bufs <- buf[:0]:
		default:
		}
	}()
	var blobs []Blob
	w.mu.Lock()
	for i := range entries {
		for _, b := range entries[i].Blobs {
			w.ids = append(w.ids, b.ID)
		}
	}
	w.mu.Unlock()
	for i := range entries {
		e := entries[i]
		e.PDF = nil
		blobs = blobs[:0]
		for _, b := range entries[i].Blobs {
			blobs = append(blobs, Blob{ID: b.ID, Pack: -1})
		}
		e.Blobs = blobs
		buf = appendEntry(buf, &e)
		buf = append(buf, '\n')
	}
	// compressed outside the lock into a reused buffer, then kept in a
	// piece of its own size
	comp := w.compress(buf)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.blocks = append(w.blocks, w.appendLocked(comp, len(entries)))
	w.entries += len(entries)
	return nil
}

// compress returns plain zstd-compressed in a slice of its own.
func (w *Writer) compress(plain []byte) []byte {
	var scratch []byte
	select {
	case scratch = <-w.bufs:
	default:
		scratch = make([]byte, 0, len(plain)/2)
	}
	scratch = w.zenc.EncodeAll(plain, scratch[:0])
	comp := bytes.Clone(scratch)
	select {
	case w.bufs <- scratch[:0]:
	default:
	}
	return comp
}

// appendLocked adds a compressed section to the payload (w.mu held).
func (w *Writer) appendLocked(comp []byte, n int) section {
	s := section{Off: w.size, Len: int64(len(comp)), N: n}
	w.chunks = append(w.chunks, comp)
	w.size += int64(len(comp))
	return s
}

// Entries is the number of entries added so far.
func (w *Writer) Entries() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.entries
}

// Finish writes the renderings, the location of every blob the blocks
// and renderings refer to, and the trailer, and returns the payload.
func (w *Writer) Finish(renderings []File, rejected []Rejected, locate LocateFunc) ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := trailer{Entries: w.entries, Rejected: rejected, Blocks: w.blocks, Locations: []section{}, Renderings: []section{}}
	ids := w.ids
	for lo := 0; lo < len(renderings); lo += renderPerBlock {
		hi := min(lo+renderPerBlock, len(renderings))
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		for _, f := range renderings[lo:hi] {
			f.Blobs = slices.Clone(f.Blobs)
			for j := range f.Blobs {
				f.Blobs[j] = Blob{ID: f.Blobs[j].ID, Pack: -1}
				ids = append(ids, f.Blobs[j].ID)
			}
			if err := enc.Encode(&f); err != nil {
				return nil, fmt.Errorf("encode catalog rendering %s: %w", f.Path, err)
			}
		}
		t.Renderings = append(t.Renderings, w.add(buf.Bytes(), hi-lo))
	}
	slices.SortFunc(ids, func(a, b repo.ID) int { return bytes.Compare(a[:], b[:]) })
	ids = slices.Compact(ids)
	packPos := map[repo.ID]uint32{}
	rec := make([]byte, 0, min(len(ids), locPerBlock)*locRecord)
	n := 0
	flush := func() {
		if n > 0 {
			t.Locations = append(t.Locations, w.add(rec, n))
			rec, n = rec[:0], 0
		}
	}
	for _, id := range ids {
		pos, loc := uint32(noPack), Location{}
		if l, ok := locate(id); ok && len(l.Pack.Salt) == 16 {
			loc = l
			p, seen := packPos[l.Pack.ID]
			if !seen {
				p = uint32(len(t.Packs))
				packPos[l.Pack.ID] = p
				t.Packs = append(t.Packs, l.Pack)
			}
			pos = p
		}
		rec = append(rec, id[:]...)
		rec = binary.LittleEndian.AppendUint32(rec, pos)
		rec = append(rec, loc.Flags)
		rec = binary.LittleEndian.AppendUint32(rec, loc.Offset)
		rec = binary.LittleEndian.AppendUint32(rec, loc.Length)
		if n++; n == locPerBlock {
			flush()
		}
	}
	flush()
	if t.Packs == nil {
		t.Packs = []Pack{}
	}
	tj, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("encode catalog trailer: %w", err)
	}
	out := make([]byte, 0, w.size+int64(len(tj))+4)
	for _, c := range w.chunks {
		out = append(out, c...)
	}
	out = append(out, tj...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(tj)))
	w.chunks, w.ids, w.blocks = nil, nil, nil
	return out, nil
}

func (w *Writer) add(plain []byte, n int) section {
	return w.appendLocked(w.compress(plain), n)
}

// Reader reads a catalog payload of any version one block at a time:
// only the locations and renderings are decoded up front.
type Reader struct {
	data     []byte
	v1       *Catalog
	t        trailer
	locs     []byte // location records, sorted by blob ID
	pdfs     renderingSet
	dec      *zstd.Decoder
	decOnce  sync.Once
	version  int
	rendered []File
}

// OpenReader checks a payload's framing and trailer and decodes its
// locations and renderings.
func OpenReader(data []byte) (*Reader, error) {
	if len(data) < len(magic)+1 || string(data[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: bad magic", ErrDamaged)
	}
	switch v := data[len(magic)]; v {
	case 1:
		c, err := decodeV1(data)
		if err != nil {
			return nil, err
		}
		return &Reader{v1: c, version: 1}, nil
	case 2:
	default:
		return nil, fmt.Errorf("%w: version %d is not supported by this einvault (upgrade it)", ErrDamaged, v)
	}
	r := &Reader{data: data, version: 2}
	body := int64(len(magic) + 1)
	if int64(len(data)) < body+4 {
		return nil, fmt.Errorf("%w: truncated", ErrDamaged)
	}
	tl := int64(binary.LittleEndian.Uint32(data[len(data)-4:]))
	tstart := int64(len(data)) - 4 - tl
	if tl > maxTrailer || tstart < body {
		return nil, fmt.Errorf("%w: trailer length %d out of range", ErrDamaged, tl)
	}
	if err := json.Unmarshal(data[tstart:len(data)-4], &r.t); err != nil {
		return nil, fmt.Errorf("%w: trailer: %v", ErrDamaged, err)
	}
	t := &r.t
	if t.Entries < 0 || t.Entries > maxEntries || len(t.Packs) > maxPacks {
		return nil, fmt.Errorf("%w: trailer counts out of range", ErrDamaged)
	}
	for i, p := range t.Packs {
		if len(p.Salt) != 16 {
			return nil, fmt.Errorf("%w: pack %d: salt of %d bytes", ErrDamaged, i, len(p.Salt))
		}
	}
	sum := 0
	for _, list := range [][]section{t.Blocks, t.Locations, t.Renderings} {
		for _, s := range list {
			if s.Off < body || s.Len <= 0 || s.Off > tstart || s.Len > tstart-s.Off || s.N <= 0 {
				return nil, fmt.Errorf("%w: section at %d+%d outside the payload", ErrDamaged, s.Off, s.Len)
			}
		}
	}
	for _, s := range t.Blocks {
		if s.N > BlockEntries {
			return nil, fmt.Errorf("%w: block of %d entries", ErrDamaged, s.N)
		}
		sum += s.N
	}
	if sum != t.Entries {
		return nil, fmt.Errorf("%w: blocks hold %d entries, trailer says %d", ErrDamaged, sum, t.Entries)
	}
	for _, s := range t.Locations {
		plain, err := r.section(s)
		if err != nil {
			return nil, fmt.Errorf("%w: locations: %v", ErrDamaged, err)
		}
		if len(plain) != s.N*locRecord {
			return nil, fmt.Errorf("%w: location block of %d bytes for %d records", ErrDamaged, len(plain), s.N)
		}
		r.locs = append(r.locs, plain...)
	}
	for i := locRecord; i < len(r.locs); i += locRecord {
		if bytes.Compare(r.locs[i-locRecord:i-locRecord+repo.IDSize], r.locs[i:i+repo.IDSize]) >= 0 {
			return nil, fmt.Errorf("%w: locations not sorted", ErrDamaged)
		}
	}
	for i := 0; i < len(r.locs); i += locRecord {
		if p := binary.LittleEndian.Uint32(r.locs[i+repo.IDSize:]); p != noPack && int64(p) >= int64(len(t.Packs)) {
			return nil, fmt.Errorf("%w: location refers to pack %d of %d", ErrDamaged, p, len(t.Packs))
		}
	}
	r.pdfs = renderingSet{}
	for _, s := range t.Renderings {
		var n int
		err := r.lines(s, func(l []byte) error {
			var f File
			if err := json.Unmarshal(l, &f); err != nil {
				return err
			}
			if err := r.locate(&f); err != nil {
				return err
			}
			if !ValidPath(f.Path) {
				return fmt.Errorf("invalid path %q", f.Path)
			}
			r.rendered = append(r.rendered, f)
			n++
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%w: rendering: %v", ErrDamaged, err)
		}
		if n != s.N {
			return nil, fmt.Errorf("%w: rendering block holds %d files, trailer says %d", ErrDamaged, n, s.N)
		}
	}
	for _, f := range r.rendered {
		r.pdfs.add(f)
	}
	return r, nil
}

// Version is the payload's format version.
func (r *Reader) Version() int { return r.version }

// Len is the number of entries.
func (r *Reader) Len() int {
	if r.v1 != nil {
		return len(r.v1.Entries)
	}
	return r.t.Entries
}

// Packs lists the packs blob locations refer to.
func (r *Reader) Packs() []Pack {
	if r.v1 != nil {
		return r.v1.Packs
	}
	return r.t.Packs
}

// Rejected lists the files the parser refused.
func (r *Reader) Rejected() []Rejected {
	if r.v1 != nil {
		return r.v1.Rejected
	}
	return r.t.Rejected
}

// Blocks is the number of entry blocks (1 for format 1).
func (r *Reader) Blocks() int {
	if r.v1 != nil {
		return 1
	}
	return len(r.t.Blocks)
}

// Block decodes entry block i: blobs located, renderings attached, every
// reference checked. Blocks may be decoded concurrently.
func (r *Reader) Block(i int) ([]Entry, error) {
	if r.v1 != nil {
		return r.v1.Entries, nil
	}
	s := r.t.Blocks[i]
	out := make([]Entry, 0, s.N)
	err := r.lines(s, func(l []byte) error {
		if len(out) == s.N {
			return errors.New("more entries than the trailer says")
		}
		var e Entry
		if err := json.Unmarshal(l, &e); err != nil {
			return err
		}
		if e.PDF != nil {
			return errors.New("rendering stored in an entry")
		}
		if err := r.locate(&e.File); err != nil {
			return err
		}
		if !ValidPath(e.Path) {
			return fmt.Errorf("invalid path %q", e.Path)
		}
		e.PDF = r.pdfs.attach(e.Path)
		if err := checkContentID(e.ContentID); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err == nil && len(out) != s.N {
		err = fmt.Errorf("%d entries, the trailer says %d", len(out), s.N)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: block %d: %v", ErrDamaged, i+1, err)
	}
	return out, nil
}

// Each calls fn for every entry, block by block.
func (r *Reader) Each(fn func(e *Entry) error) error {
	for i := range r.Blocks() {
		blk, err := r.Block(i)
		if err != nil {
			return err
		}
		for j := range blk {
			if err := fn(&blk[j]); err != nil {
				return err
			}
		}
	}
	return nil
}

// Catalog decodes every entry.
func (r *Reader) Catalog() (*Catalog, error) {
	if r.v1 != nil {
		return r.v1, nil
	}
	c := &Catalog{Packs: r.t.Packs, Rejected: r.t.Rejected, Entries: make([]Entry, 0, min(r.t.Entries, 1<<20))}
	err := r.Each(func(e *Entry) error {
		c.Entries = append(c.Entries, *e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.Sort()
	return c, nil
}

func (r *Reader) decoder() *zstd.Decoder {
	r.decOnce.Do(func() {
		r.dec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxBlockBytes))
	})
	return r.dec
}

func (r *Reader) section(s section) ([]byte, error) {
	plain, err := r.decoder().DecodeAll(r.data[s.Off:s.Off+s.Len], make([]byte, 0, min(s.Len*4, maxBlockBytes)))
	if err != nil {
		return nil, fmt.Errorf("section at %d: %v", s.Off, err)
	}
	if len(plain) > maxBlockBytes {
		return nil, fmt.Errorf("section at %d too large", s.Off)
	}
	return plain, nil
}

func (r *Reader) lines(s section, fn func([]byte) error) error {
	plain, err := r.section(s)
	if err != nil {
		return err
	}
	for len(plain) > 0 {
		i := bytes.IndexByte(plain, '\n')
		if i < 0 {
			return errors.New("unterminated line")
		}
		if err := fn(plain[:i]); err != nil {
			return err
		}
		plain = plain[i+1:]
	}
	return nil
}

// locate fills in the recorded location of every blob of f.
func (r *Reader) locate(f *File) error {
	n := len(r.locs) / locRecord
	for i := range f.Blobs {
		b := &f.Blobs[i]
		k := sort.Search(n, func(k int) bool { return bytes.Compare(r.locs[k*locRecord:k*locRecord+repo.IDSize], b.ID[:]) >= 0 })
		if k == n || !bytes.Equal(r.locs[k*locRecord:k*locRecord+repo.IDSize], b.ID[:]) {
			return fmt.Errorf("blob %s has no location record", b.ID.Short())
		}
		rec := r.locs[k*locRecord+repo.IDSize:]
		b.Pack, b.Flags, b.Offset, b.Length = -1, 0, 0, 0
		if p := binary.LittleEndian.Uint32(rec); p != noPack {
			b.Pack, b.Flags = int(p), rec[4]
			b.Offset, b.Length = binary.LittleEndian.Uint32(rec[5:]), binary.LittleEndian.Uint32(rec[9:])
		}
	}
	return nil
}

// Renderings lists the PDF renderings recorded in the catalog (format 2).
func (r *Reader) Renderings() []File { return r.rendered }

// Decode parses a whole catalog payload (any version), checking every
// reference it holds. Entries are sorted by key.
func Decode(data []byte) (*Catalog, error) {
	r, err := OpenReader(data)
	if err != nil {
		return nil, err
	}
	return r.Catalog()
}

// decodeV1 reads format 1: "EVC1" | 1 | header JSON line | one JSON line
// per entry, blob locations and renderings inline.
func decodeV1(data []byte) (*Catalog, error) {
	sc := bufio.NewScanner(bytes.NewReader(data[len(magic)+1:]))
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	line := func() ([]byte, error) {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrDamaged, err)
			}
			return nil, io.ErrUnexpectedEOF
		}
		return sc.Bytes(), nil
	}
	hl, err := line()
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrDamaged, err)
	}
	var h header
	if err := json.Unmarshal(hl, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrDamaged, err)
	}
	if h.Entries < 0 || h.Entries > maxEntries || len(h.Packs) > maxPacks {
		return nil, fmt.Errorf("%w: header counts out of range", ErrDamaged)
	}
	for i, p := range h.Packs {
		if len(p.Salt) != 16 {
			return nil, fmt.Errorf("%w: pack %d: salt of %d bytes", ErrDamaged, i, len(p.Salt))
		}
	}
	c := &Catalog{Packs: h.Packs, Rejected: h.Rejected, Entries: make([]Entry, 0, min(h.Entries, 1<<16))}
	for i := 0; i < h.Entries; i++ {
		l, err := line()
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d of %d: %v", ErrDamaged, i+1, h.Entries, err)
		}
		var e Entry
		if err := json.Unmarshal(l, &e); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrDamaged, i+1, err)
		}
		if err := c.check(&e); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrDamaged, i+1, err)
		}
		c.Entries = append(c.Entries, e)
	}
	if sc.Scan() {
		return nil, fmt.Errorf("%w: data after the last entry", ErrDamaged)
	}
	return c, nil
}

// renderingSet finds the PDF stored beside an invoice: same file name
// stem, preferring the same directory, then the path sharing most of its
// directories (invoices/2024/03/x.xml ↔ renderings/2024/03/x.pdf).
type renderingSet map[string][]File

func (s renderingSet) add(f File) { st := stem(f.Path); s[st] = append(s[st], f) }

func (s renderingSet) attach(p string) *File {
	cands := s[stem(p)]
	if len(cands) == 0 || isPDF(p) {
		return nil
	}
	best, bestScore := -1, -1
	dir := pathDir(p)
	for i, c := range cands {
		cd := pathDir(c.Path)
		score := commonSuffixDirs(dir, cd)
		if cd == dir {
			score = 1 << 20
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	f := cands[best]
	f.Blobs = slices.Clone(f.Blobs)
	return &f
}
