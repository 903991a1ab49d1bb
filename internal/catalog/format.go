package catalog

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/einvault/einvault/internal/invoice"
	"github.com/einvault/einvault/internal/repo"
	"github.com/klauspost/compress/zstd"
)

// Catalog format 3 (format 2, written since catalogs had to scale to
// millions of invoices, plus a look-up index): the payload is built block
// by block while the backup runs, so neither the builder nor a reader
// holds every entry at once.
//
//	"EVC1" | version u8 (3) | section* | trailer JSON | trailer length u32 LE
//
// A section is one zstd frame at an offset of the payload named by the
// trailer: entry blocks (JSON lines, at most BlockEntries entries each,
// blobs without locations and without the rendering), location blocks
// (fixed 45-byte records sorted by blob ID over all blocks: ID, pack
// index u32 LE with 0xFFFFFFFF for unknown, flags u8, offset u32 LE,
// sealed length u32 LE) and rendering blocks (JSON lines of File: the PDFs
// in the snapshot, attached to entries by file name stem when read).
//
// Format 3 adds two sorted indexes, so that one invoice is found by
// decoding the trailer, one index block and the entry blocks it names
// (no cache, no scan of every block): key blocks (records uvarint key
// length, key, uvarint entry block number; sorted by key, then block)
// and content-ID blocks (fixed 36-byte records: SHA-256 32 bytes, entry
// block number u32 LE; sorted). The trailer names each index block with
// its first key ("first"). Format 2 is the same without them.

// BlockEntries is the number of entries per entry block of format 2.
const BlockEntries = 1024

const (
	locRecord      = repo.IDSize + 4 + 1 + 4 + 4
	locPerBlock    = 8192 // 360 KiB: a look-up decodes one
	renderPerBlock = 512  // a look-up decodes one
	keysPerBlock   = 4096
	cidRecord      = 32 + 4
	cidsPerBlock   = 4096
	maxKey         = 4 << 10
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
	// First is the first key of an index block (format 3).
	First string `json:"first,omitempty"`
}

type trailer struct {
	Packs      []Pack     `json:"packs"`
	Entries    int        `json:"entries"`
	Rejected   []Rejected `json:"rejected,omitempty"`
	Blocks     []section  `json:"blocks"`
	Locations  []section  `json:"locations"`
	Renderings []section  `json:"renderings"`
	Keys       []section  `json:"keys,omitempty"` // format 3
	CIDs       []section  `json:"cids,omitempty"` // format 3
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
	per     perBlock // records per section of each kind
	keyBuf  []byte   // the keys of every entry, back to back
	keys    []keyRef // where each lies in keyBuf, and its block
	cids    []cidRef
}

// perBlock is how many records a section of each kind holds at most.
type perBlock struct{ loc, render, keys, cids int }

var defaultPerBlock = perBlock{loc: locPerBlock, render: renderPerBlock, keys: keysPerBlock, cids: cidsPerBlock}

// keyRef is one entry's key (keyBuf[off:off+n]) and its entry block.
type keyRef struct {
	off, blk uint32
	n        uint16
}

type cidRef struct {
	id  [32]byte
	blk uint32
}

// NewWriter starts a payload.
func NewWriter() (*Writer, error) {
	procs := runtime.GOMAXPROCS(0)
	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(procs),
		zstd.WithWindowSize(256<<10), zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, err
	}
	head := append([]byte(magic), FormatVersion)
	return &Writer{zenc: zenc, per: defaultPerBlock, chunks: [][]byte{head}, size: int64(len(head)), bufs: make(chan []byte, 2*procs)}, nil
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
	blk := uint32(len(w.blocks))
	w.blocks = append(w.blocks, w.appendLocked(comp, len(entries)))
	w.entries += len(entries)
	for i := range entries {
		if err := w.noteLocked(&entries[i], blk); err != nil {
			return err
		}
	}
	return nil
}

// noteLocked records an entry's key and content ID for the indexes
// (w.mu held).
func (w *Writer) noteLocked(e *Entry, blk uint32) error {
	off := len(w.keyBuf)
	w.keyBuf = appendKey(w.keyBuf, &e.Invoice)
	n := len(w.keyBuf) - off
	if n > maxKey || len(w.keyBuf) > math.MaxUint32 {
		return fmt.Errorf("catalog key of %d bytes (%d in all) is too long", n, len(w.keyBuf))
	}
	w.keys = append(w.keys, keyRef{off: uint32(off), blk: blk, n: uint16(n)})
	var c cidRef
	if _, err := hex.Decode(c.id[:], []byte(e.ContentID)); err != nil || len(e.ContentID) != 64 {
		return fmt.Errorf("catalog entry %s: content ID %q is not a SHA-256", e.Path, e.ContentID)
	}
	c.blk = blk
	w.cids = append(w.cids, c)
	return nil
}

// appendKey appends inv.Key() without building the string.
func appendKey(b []byte, inv *invoice.Invoice) []byte {
	b = append(b, inv.SellerTaxCode...)
	b = append(b, '/')
	b = append(b, inv.Form...)
	b = append(b, '/')
	b = append(b, inv.Series...)
	b = append(b, '/')
	return append(b, inv.Number...)
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
	// sorted by file name stem, the first stem of each block in the
	// trailer: a reader finds an entry's rendering in one block
	renderings = slices.Clone(renderings)
	slices.SortStableFunc(renderings, func(a, b File) int { return strings.Compare(stem(a.Path), stem(b.Path)) })
	for lo := 0; lo < len(renderings); lo += w.per.render {
		hi := min(lo+w.per.render, len(renderings))
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
		sec := w.add(buf.Bytes(), hi-lo)
		sec.First = stem(renderings[lo].Path)
		t.Renderings = append(t.Renderings, sec)
	}
	if err := w.writeIndexesLocked(&t); err != nil {
		return nil, err
	}
	slices.SortFunc(ids, func(a, b repo.ID) int { return bytes.Compare(a[:], b[:]) })
	ids = slices.Compact(ids)
	packPos := map[repo.ID]uint32{}
	rec := make([]byte, 0, min(len(ids), w.per.loc)*locRecord)
	n := 0
	flush := func() {
		if n > 0 {
			sec := w.add(rec, n)
			sec.First = hex.EncodeToString(rec[:repo.IDSize])
			t.Locations = append(t.Locations, sec)
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
		if n++; n == w.per.loc {
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
	w.chunks, w.ids, w.blocks, w.keyBuf, w.keys, w.cids = nil, nil, nil, nil, nil, nil
	return out, nil
}

// writeIndexesLocked sorts the recorded keys and content IDs and writes
// them as index blocks (w.mu held).
func (w *Writer) writeIndexesLocked(t *trailer) error {
	key := func(r keyRef) []byte { return w.keyBuf[r.off : r.off+uint32(r.n)] }
	slices.SortFunc(w.keys, func(a, b keyRef) int {
		return cmp.Or(bytes.Compare(key(a), key(b)), cmp.Compare(a.blk, b.blk))
	})
	w.keys = slices.CompactFunc(w.keys, func(a, b keyRef) bool { return a.blk == b.blk && bytes.Equal(key(a), key(b)) })
	t.Keys, t.CIDs = []section{}, []section{}
	var plain []byte
	for lo := 0; lo < len(w.keys); lo += w.per.keys {
		hi := min(lo+w.per.keys, len(w.keys))
		plain = plain[:0]
		for _, r := range w.keys[lo:hi] {
			plain = binary.AppendUvarint(plain, uint64(r.n))
			plain = append(plain, key(r)...)
			plain = binary.AppendUvarint(plain, uint64(r.blk))
		}
		s := w.add(plain, hi-lo)
		s.First = string(key(w.keys[lo]))
		t.Keys = append(t.Keys, s)
	}
	slices.SortFunc(w.cids, func(a, b cidRef) int { return cmp.Or(bytes.Compare(a.id[:], b.id[:]), cmp.Compare(a.blk, b.blk)) })
	w.cids = slices.Compact(w.cids)
	for lo := 0; lo < len(w.cids); lo += w.per.cids {
		hi := min(lo+w.per.cids, len(w.cids))
		plain = plain[:0]
		for _, r := range w.cids[lo:hi] {
			plain = append(plain, r.id[:]...)
			plain = binary.LittleEndian.AppendUint32(plain, r.blk)
		}
		s := w.add(plain, hi-lo)
		s.First = hex.EncodeToString(w.cids[lo].id[:])
		t.CIDs = append(t.CIDs, s)
	}
	return nil
}

func (w *Writer) add(plain []byte, n int) section {
	return w.appendLocked(w.compress(plain), n)
}

// Reader reads a catalog payload of any version one block at a time:
// only the locations and renderings are decoded up front.
type Reader struct {
	data    []byte
	v1      *Catalog
	t       trailer
	dec     *zstd.Decoder
	decOnce sync.Once
	version int
	// eager: every location and rendering decoded when opened
	locs []byte // location records, sorted by blob ID
	pdfs renderingSet
	// lazy (format 3): location and rendering sections decoded on use
	lazy     bool
	mu       sync.Mutex
	locCache map[int][]byte
	pdfCache map[int][]File
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
	case 2, 3:
	default:
		return nil, fmt.Errorf("%w: version %d is not supported by this einvault (upgrade it)", ErrDamaged, v)
	}
	r := &Reader{data: data, version: int(data[len(magic)])}
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
	if r.version < 3 && (t.Keys != nil || t.CIDs != nil) {
		return nil, fmt.Errorf("%w: format %d with an index", ErrDamaged, r.version)
	}
	if err := checkIndex(t.Keys, t.Entries); err != nil {
		return nil, fmt.Errorf("%w: key index: %v", ErrDamaged, err)
	}
	if err := checkIndex(t.CIDs, t.Entries); err != nil {
		return nil, fmt.Errorf("%w: content-ID index: %v", ErrDamaged, err)
	}
	sum := 0
	for _, list := range [][]section{t.Blocks, t.Locations, t.Renderings, t.Keys, t.CIDs} {
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
	if r.lazy = lazySections(t.Locations, t.Renderings); r.lazy {
		// format 3 names each location and rendering block by its first
		// key: they are decoded when an entry needs them
		r.locCache, r.pdfCache = map[int][]byte{}, map[int][]File{}
		return r, nil
	}
	for i := range t.Locations {
		plain, err := r.locSection(i)
		if err != nil {
			return nil, err
		}
		r.locs = append(r.locs, plain...)
	}
	for i := locRecord; i < len(r.locs); i += locRecord {
		if bytes.Compare(r.locs[i-locRecord:i-locRecord+repo.IDSize], r.locs[i:i+repo.IDSize]) >= 0 {
			return nil, fmt.Errorf("%w: locations not sorted", ErrDamaged)
		}
	}
	r.pdfs = renderingSet{}
	for i := range t.Renderings {
		files, err := r.pdfSection(i)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if err := r.locate(&f); err != nil {
				return nil, fmt.Errorf("%w: rendering: %v", ErrDamaged, err)
			}
			r.pdfs.add(f)
		}
	}
	return r, nil
}

// lazySections reports whether every location and rendering section
// names its first key, in order (format 3), so that they can be decoded
// one at a time when needed.
func lazySections(locs, pdfs []section) bool {
	for _, list := range [][]section{locs, pdfs} {
		for i, s := range list {
			if s.First == "" || len(s.First) > maxKey || (i > 0 && s.First < list[i-1].First) {
				return false
			}
		}
	}
	for i, s := range locs {
		if len(s.First) != 2*repo.IDSize || (i > 0 && s.First == locs[i-1].First) {
			return false
		}
	}
	return true
}

// locSection decodes and checks location section i.
func (r *Reader) locSection(i int) ([]byte, error) {
	r.mu.Lock()
	plain, ok := r.locCache[i]
	r.mu.Unlock()
	if ok {
		return plain, nil
	}
	s := r.t.Locations[i]
	plain, err := r.section(s)
	if err != nil {
		return nil, fmt.Errorf("%w: locations: %v", ErrDamaged, err)
	}
	if len(plain) != s.N*locRecord {
		return nil, fmt.Errorf("%w: location block of %d bytes for %d records", ErrDamaged, len(plain), s.N)
	}
	for k := 0; k < len(plain); k += locRecord {
		if p := binary.LittleEndian.Uint32(plain[k+repo.IDSize:]); p != noPack && int64(p) >= int64(len(r.t.Packs)) {
			return nil, fmt.Errorf("%w: location refers to pack %d of %d", ErrDamaged, p, len(r.t.Packs))
		}
		if k > 0 && bytes.Compare(plain[k-locRecord:k-locRecord+repo.IDSize], plain[k:k+repo.IDSize]) >= 0 {
			return nil, fmt.Errorf("%w: locations not sorted", ErrDamaged)
		}
	}
	if r.lazy {
		// sorted across sections too: this one starts with its first key
		// and ends before the next one's
		if hex.EncodeToString(plain[:repo.IDSize]) != s.First {
			return nil, fmt.Errorf("%w: location block %d does not start with %s", ErrDamaged, i+1, s.First)
		}
		if i+1 < len(r.t.Locations) && hex.EncodeToString(plain[len(plain)-locRecord:len(plain)-locRecord+repo.IDSize]) >= r.t.Locations[i+1].First {
			return nil, fmt.Errorf("%w: locations not sorted", ErrDamaged)
		}
		r.mu.Lock()
		r.locCache[i] = plain
		r.mu.Unlock()
	}
	return plain, nil
}

// pdfSection decodes and checks rendering section i; the files' blobs
// are not located yet.
func (r *Reader) pdfSection(i int) ([]File, error) {
	r.mu.Lock()
	files, ok := r.pdfCache[i]
	r.mu.Unlock()
	if ok {
		return files, nil
	}
	s := r.t.Renderings[i]
	err := r.lines(s, func(l []byte) error {
		var f File
		if err := json.Unmarshal(l, &f); err != nil {
			return err
		}
		if !ValidPath(f.Path) {
			return fmt.Errorf("invalid path %q", f.Path)
		}
		if r.lazy {
			st := stem(f.Path)
			if (len(files) == 0 && st != s.First) || (len(files) > 0 && st < stem(files[len(files)-1].Path)) ||
				(i+1 < len(r.t.Renderings) && st > r.t.Renderings[i+1].First) {
				return fmt.Errorf("rendering %s out of order", f.Path)
			}
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: rendering: %v", ErrDamaged, err)
	}
	if len(files) != s.N {
		return nil, fmt.Errorf("%w: rendering block holds %d files, trailer says %d", ErrDamaged, len(files), s.N)
	}
	if r.lazy {
		r.mu.Lock()
		r.pdfCache[i] = files
		r.mu.Unlock()
	}
	return files, nil
}

// rendering returns the PDF stored beside the invoice at p, if any.
func (r *Reader) rendering(p string) (*File, error) {
	if !r.lazy {
		return r.pdfs.attach(p), nil
	}
	if isPDF(p) {
		return nil, nil
	}
	st, list := stem(p), r.t.Renderings
	set := renderingSet{}
	// files of one stem may begin at the end of the block before the
	// first one whose first stem is st
	for j := max(sort.Search(len(list), func(i int) bool { return list[i].First >= st })-1, 0); j < len(list) && list[j].First <= st; j++ {
		files, err := r.pdfSection(j)
		if err != nil {
			return nil, err
		}
		// A section is sorted by stem (checked when decoded): binary
		// search instead of computing every file's stem per look-up.
		from := sort.Search(len(files), func(i int) bool { return stem(files[i].Path) >= st })
		for _, f := range files[from:] {
			if stem(f.Path) != st {
				break
			}
			f.Blobs = slices.Clone(f.Blobs)
			if err := r.locate(&f); err != nil {
				return nil, fmt.Errorf("%w: rendering: %v", ErrDamaged, err)
			}
			set.add(f)
		}
	}
	return set.attach(p), nil
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
	return r.block(i, nil)
}

// block decodes entry block i; with keep, only the lines keep accepts
// (a cheap pre-filter of look-ups) are decoded and returned.
func (r *Reader) block(i int, keep func(line []byte) bool) ([]Entry, error) {
	if r.v1 != nil {
		return r.v1.Entries, nil
	}
	s := r.t.Blocks[i]
	var out []Entry
	if keep == nil {
		out = make([]Entry, 0, s.N)
	}
	n := 0
	err := r.lines(s, func(l []byte) error {
		if n == s.N {
			return errors.New("more entries than the trailer says")
		}
		n++
		if keep != nil && !keep(l) {
			return nil
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
		pdf, err := r.rendering(e.Path)
		if err != nil {
			return err
		}
		e.PDF = pdf
		if err := checkContentID(e.ContentID); err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err == nil && n != s.N {
		err = fmt.Errorf("%d entries, the trailer says %d", n, s.N)
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
	// sized by the frame's content size (at most maxBlockBytes: the
	// decoder refuses larger frames)
	plain, err := r.decoder().DecodeAll(r.data[s.Off:s.Off+s.Len], nil)
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
	for i := range f.Blobs {
		b := &f.Blobs[i]
		recs := r.locs
		if r.lazy {
			h := hex.EncodeToString(b.ID[:])
			j := sort.Search(len(r.t.Locations), func(j int) bool { return r.t.Locations[j].First > h }) - 1
			if j < 0 {
				return fmt.Errorf("blob %s has no location record", b.ID.Short())
			}
			var err error
			if recs, err = r.locSection(j); err != nil {
				return err
			}
		}
		n := len(recs) / locRecord
		k := sort.Search(n, func(k int) bool { return bytes.Compare(recs[k*locRecord:k*locRecord+repo.IDSize], b.ID[:]) >= 0 })
		if k == n || !bytes.Equal(recs[k*locRecord:k*locRecord+repo.IDSize], b.ID[:]) {
			return fmt.Errorf("blob %s has no location record", b.ID.Short())
		}
		rec := recs[k*locRecord+repo.IDSize:]
		b.Pack, b.Flags, b.Offset, b.Length = -1, 0, 0, 0
		if p := binary.LittleEndian.Uint32(rec); p != noPack {
			b.Pack, b.Flags = int(p), rec[4]
			b.Offset, b.Length = binary.LittleEndian.Uint32(rec[5:]), binary.LittleEndian.Uint32(rec[9:])
		}
	}
	return nil
}

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

// checkIndex checks the index sections of a trailer: non-empty first
// keys in order, record counts within the entries' (each entry has one
// key and one content ID; duplicates within a block are stored once).
func checkIndex(list []section, entries int) error {
	n := 0
	for i, s := range list {
		if s.First == "" || len(s.First) > maxKey {
			return fmt.Errorf("block %d: first key of %d bytes", i+1, len(s.First))
		}
		if i > 0 && s.First < list[i-1].First {
			return fmt.Errorf("block %d: keys not sorted", i+1)
		}
		n += s.N
	}
	if n > entries {
		return fmt.Errorf("%d records for %d entries", n, entries)
	}
	if entries > 0 && list != nil && n == 0 {
		return errors.New("no records")
	}
	return nil
}

// ErrNoIndex is returned by Reader.Lookup for catalogs written before
// format 3: they are searched entry by entry (or through the cache).
var ErrNoIndex = errors.New("catalog has no look-up index (written by an older einvault)")

// Indexed reports whether Lookup can find entries without a scan.
func (r *Reader) Indexed() bool { return r.version >= 3 && (r.t.Entries == 0 || len(r.t.Keys) > 0) }

// Lookup returns the entries whose key (SELLERMST/FORM/SERIES/NUMBER) or
// content ID (64 hex digits) is name, decoding only the index blocks and
// entry blocks that hold them. It fails with ErrNoIndex on catalogs of
// format 1 and 2.
func (r *Reader) Lookup(name string) ([]Entry, error) {
	if !r.Indexed() {
		return nil, ErrNoIndex
	}
	var blks []uint32
	var err error
	cid := isContentID(name)
	if cid {
		name = strings.ToLower(name)
		blks, err = r.indexBlocks(r.t.CIDs, name, r.cidRecords)
	} else {
		blks, err = r.indexBlocks(r.t.Keys, name, r.keyRecords)
	}
	if err != nil {
		return nil, err
	}
	// only lines that hold the content ID or the key's number are decoded
	needle := []byte(`"content_id":"` + name + `"`)
	if !cid {
		num := name[strings.LastIndexByte(name, '/')+1:]
		needle = appendString([]byte(`"number":`), num)
	}
	keep := func(l []byte) bool { return bytes.Contains(l, needle) }
	var out []Entry
	for _, b := range blks {
		entries, err := r.block(int(b), keep)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if (cid && e.ContentID == name) || (!cid && e.Key() == name) {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// indexBlocks returns the sorted entry block numbers recorded for name
// in an index.
func (r *Reader) indexBlocks(list []section, name string, records func(section, func(k string, blk uint32) error) error) ([]uint32, error) {
	// records of name may begin at the end of the block before the first
	// one whose first key is name
	i := max(sort.Search(len(list), func(i int) bool { return list[i].First >= name })-1, 0)
	var blks []uint32
	for ; i < len(list) && list[i].First <= name; i++ {
		s, first := list[i], true
		prev := ""
		err := records(s, func(k string, blk uint32) error {
			if first && k != s.First {
				return fmt.Errorf("first key %q, the trailer says %q", k, s.First)
			}
			if !first && k < prev {
				return errors.New("keys not sorted")
			}
			if int64(blk) >= int64(len(r.t.Blocks)) {
				return fmt.Errorf("entry block %d of %d", blk+1, len(r.t.Blocks))
			}
			first, prev = false, k
			if k == name {
				blks = append(blks, blk)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%w: index block %d: %v", ErrDamaged, i+1, err)
		}
	}
	slices.Sort(blks)
	return slices.Compact(blks), nil
}

// keyRecords calls fn for each record of a key index block.
func (r *Reader) keyRecords(s section, fn func(k string, blk uint32) error) error {
	plain, err := r.section(s)
	if err != nil {
		return err
	}
	n := 0
	for len(plain) > 0 {
		kl, m := binary.Uvarint(plain)
		if m <= 0 || kl == 0 || kl > maxKey || uint64(len(plain)-m) < kl {
			return errors.New("bad key record")
		}
		k := string(plain[m : m+int(kl)])
		plain = plain[m+int(kl):]
		blk, m := binary.Uvarint(plain)
		if m <= 0 || blk > math.MaxUint32 {
			return errors.New("bad block number")
		}
		plain = plain[m:]
		if err := fn(k, uint32(blk)); err != nil {
			return err
		}
		n++
	}
	if n != s.N {
		return fmt.Errorf("%d records, the trailer says %d", n, s.N)
	}
	return nil
}

// cidRecords calls fn for each record of a content-ID index block.
func (r *Reader) cidRecords(s section, fn func(k string, blk uint32) error) error {
	plain, err := r.section(s)
	if err != nil {
		return err
	}
	if len(plain) != s.N*cidRecord {
		return fmt.Errorf("%d bytes for %d records", len(plain), s.N)
	}
	for i := 0; i < len(plain); i += cidRecord {
		if err := fn(hex.EncodeToString(plain[i:i+32]), binary.LittleEndian.Uint32(plain[i+32:])); err != nil {
			return err
		}
	}
	return nil
}
