package repo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/einvault/einvault/internal/crypto"
)

// PackInfo is what the index knows of a pack: enough to decrypt any blob
// in it with a single ranged read.
type PackInfo struct {
	ID    ID
	Epoch uint32
	Salt  [crypto.SaltSize]byte
}

// IndexEntry locates one blob.
type IndexEntry struct {
	pack      uint32
	Offset    uint32
	Length    uint32
	RawLength uint32
	Type      BlobType
	Flags     uint8
}

// PackOf returns the pack a blob lives in.
func (idx *Index) PackOf(e IndexEntry) PackInfo {
	idx.mu.RLock()
	defer idx.mu.RUnlock()
	return idx.packs[e.pack]
}

// Index maps blob IDs to their place in packs. It is safe for concurrent
// use.
//
// Memory matters: an index of millions of blobs must fit a backup's budget.
// Blobs live in a sorted slice of fixed 56-byte records searched by binary
// search; blobs added since the last merge sit in a small map that is
// merged into the slice (one linear merge) when it reaches mergeAt
// entries. A Go map of the same blobs would take two to three times the
// memory, and twice that while it grows.
type Index struct {
	mu      sync.RWMutex
	packs   []PackInfo
	packPos map[ID]uint32
	sorted  []indexRecord
	recent  map[ID]IndexEntry
	// files are the index files the index was loaded from.
	files IDSet
}

type indexRecord struct {
	id ID
	e  IndexEntry
}

const mergeAt = 1 << 16

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{packPos: map[ID]uint32{}, recent: map[ID]IndexEntry{}, files: IDSet{}}
}

func (idx *Index) search(id ID) (IndexEntry, bool) {
	s := idx.sorted
	i := sort.Search(len(s), func(i int) bool { return bytes.Compare(s[i].id[:], id[:]) >= 0 })
	if i < len(s) && s[i].id == id {
		return s[i].e, true
	}
	return IndexEntry{}, false
}

// Lookup finds a blob.
func (idx *Index) Lookup(id ID) (IndexEntry, bool) {
	idx.mu.RLock()
	defer idx.mu.RUnlock()
	if e, ok := idx.recent[id]; ok {
		return e, true
	}
	return idx.search(id)
}

// offsetIn returns the offset of blob id in pack, if the index places a
// blob of that sealed length there.
func (idx *Index) offsetIn(pack, id ID, length int) (int64, bool) {
	e, ok := idx.Lookup(id)
	if !ok || int(e.Length) != length || idx.PackOf(e).ID != pack {
		return 0, false
	}
	return int64(e.Offset), true
}

// Has reports whether a blob is indexed.
func (idx *Index) Has(id ID) bool { _, ok := idx.Lookup(id); return ok }

// Len returns the number of blobs.
func (idx *Index) Len() int {
	idx.mu.RLock()
	defer idx.mu.RUnlock()
	return len(idx.sorted) + len(idx.recent)
}

// AddPack records every blob of a pack. A blob already indexed elsewhere
// keeps its first location.
func (idx *Index) AddPack(p PackInfo, blobs []PackedBlob) {
	idx.mu.Lock()
	defer idx.mu.Unlock()
	pos, ok := idx.packPos[p.ID]
	if !ok {
		pos = uint32(len(idx.packs))
		idx.packs = append(idx.packs, p)
		idx.packPos[p.ID] = pos
	}
	for _, b := range blobs {
		if _, dup := idx.recent[b.ID]; dup {
			continue
		}
		if _, dup := idx.search(b.ID); dup {
			continue
		}
		idx.recent[b.ID] = IndexEntry{pack: pos, Offset: b.Offset, Length: b.Length, RawLength: b.RawLength, Type: b.Type, Flags: b.Flags}
	}
	if len(idx.recent) >= mergeAt {
		idx.merge()
	}
}

// merge moves recent entries into the sorted slice. Called with mu held.
func (idx *Index) merge() {
	if len(idx.recent) == 0 {
		return
	}
	add := make([]indexRecord, 0, len(idx.recent))
	for id, e := range idx.recent {
		add = append(add, indexRecord{id, e})
	}
	slices.SortFunc(add, func(a, b indexRecord) int { return bytes.Compare(a.id[:], b.id[:]) })
	old := idx.sorted
	out := make([]indexRecord, len(old)+len(add))
	i, j, k := len(old)-1, len(add)-1, len(out)-1
	for ; j >= 0; k-- {
		if i >= 0 && bytes.Compare(old[i].id[:], add[j].id[:]) > 0 {
			out[k] = old[i]
			i--
		} else {
			out[k] = add[j]
			j--
		}
	}
	copy(out, old[:i+1])
	idx.sorted = out
	clear(idx.recent)
}

// Packs returns the indexed packs.
func (idx *Index) Packs() []PackInfo {
	idx.mu.RLock()
	defer idx.mu.RUnlock()
	return append([]PackInfo(nil), idx.packs...)
}

// HasPack reports whether a pack is indexed.
func (idx *Index) HasPack(id ID) bool {
	idx.mu.RLock()
	defer idx.mu.RUnlock()
	_, ok := idx.packPos[id]
	return ok
}

// Each calls fn for every blob, with its pack, under a read lock: fn must
// not call back into the index.
func (idx *Index) Each(fn func(id ID, p PackInfo, e IndexEntry)) {
	idx.mu.RLock()
	defer idx.mu.RUnlock()
	for _, r := range idx.sorted {
		fn(r.id, idx.packs[r.e.pack], r.e)
	}
	for id, e := range idx.recent {
		fn(id, idx.packs[e.pack], e)
	}
}

// Files returns the IDs of the index files loaded into idx.
func (idx *Index) Files() IDs {
	idx.mu.RLock()
	defer idx.mu.RUnlock()
	out := make(IDs, 0, len(idx.files))
	for id := range idx.files {
		out = append(out, id)
	}
	return out
}

func (idx *Index) addFile(id ID) {
	idx.mu.Lock()
	idx.files.Insert(id)
	idx.mu.Unlock()
}

// IndexFile is the decoded content of one index file.
type IndexFile struct {
	// Supersedes lists index files whose content this one includes; they
	// may be deleted once this one is written.
	Supersedes IDs
	Packs      []IndexPack
}

// IndexPack lists the blobs of one pack.
type IndexPack struct {
	PackInfo
	Blobs []PackedBlob
}

const indexMagic = "EVI1"

// Encode serialises an index file's plaintext:
//
//	"EVI1" | nsup uvarint | sup IDs | npacks uvarint |
//	  per pack: ID | epoch u32le | salt | nblobs uvarint |
//	    per blob: type u8 | flags u8 | ID | offset uvarint | length uvarint | raw uvarint
func (f *IndexFile) Encode() []byte {
	buf := []byte(indexMagic)
	buf = binary.AppendUvarint(buf, uint64(len(f.Supersedes)))
	for _, id := range f.Supersedes {
		buf = append(buf, id[:]...)
	}
	buf = binary.AppendUvarint(buf, uint64(len(f.Packs)))
	for _, p := range f.Packs {
		buf = append(buf, p.ID[:]...)
		buf = binary.LittleEndian.AppendUint32(buf, p.Epoch)
		buf = append(buf, p.Salt[:]...)
		buf = binary.AppendUvarint(buf, uint64(len(p.Blobs)))
		for _, b := range p.Blobs {
			buf = append(buf, byte(b.Type), b.Flags)
			buf = append(buf, b.ID[:]...)
			buf = binary.AppendUvarint(buf, uint64(b.Offset))
			buf = binary.AppendUvarint(buf, uint64(b.Length))
			buf = binary.AppendUvarint(buf, uint64(b.RawLength))
		}
	}
	return buf
}

type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: index file: %s", ErrDamaged, what)
	}
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || len(d.buf) < n {
		d.fail("truncated")
		return make([]byte, n)
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

func (d *decoder) uvarint(max uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.buf)
	if k <= 0 || v > max {
		d.fail("bad number")
		return 0
	}
	d.buf = d.buf[k:]
	return v
}

// DecodeIndexFile parses an index file's plaintext.
func DecodeIndexFile(buf []byte) (*IndexFile, error) {
	if len(buf) < 4 || string(buf[:4]) != indexMagic {
		return nil, fmt.Errorf("%w: index file: bad magic", ErrDamaged)
	}
	d := &decoder{buf: buf[4:]}
	f := &IndexFile{}
	// Each element takes at least one byte, which bounds every count by
	// the remaining input and so bounds allocation.
	nsup := d.uvarint(uint64(len(d.buf)) / IDSize)
	for i := uint64(0); i < nsup && d.err == nil; i++ {
		f.Supersedes = append(f.Supersedes, ID(d.bytes(IDSize)))
	}
	npacks := d.uvarint(uint64(len(d.buf)))
	for i := uint64(0); i < npacks && d.err == nil; i++ {
		var p IndexPack
		p.ID = ID(d.bytes(IDSize))
		p.Epoch = binary.LittleEndian.Uint32(d.bytes(4))
		copy(p.Salt[:], d.bytes(crypto.SaltSize))
		nb := d.uvarint(uint64(len(d.buf)))
		for j := uint64(0); j < nb && d.err == nil; j++ {
			tf := d.bytes(2)
			b := PackedBlob{Type: BlobType(tf[0]), Flags: tf[1]}
			if b.Type != DataBlob && b.Type != TreeBlob || b.Flags&^blobCompressed != 0 {
				d.fail("bad blob type")
			}
			b.ID = ID(d.bytes(IDSize))
			b.Offset = uint32(d.uvarint(1<<32 - 1))
			b.Length = uint32(d.uvarint(1<<31 - 1))
			b.RawLength = uint32(d.uvarint(1<<31 - 1))
			p.Blobs = append(p.Blobs, b)
		}
		f.Packs = append(f.Packs, p)
	}
	if d.err == nil && len(d.buf) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	return f, nil
}
