package repo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/crypto"
	"github.com/zeebo/blake3"
)

// Blobs are spread at random over several open packs of their type, and a
// pack is closed at a randomised size, so the order and size of what lands
// in storage reveal neither chunk boundaries nor file sizes (the answer to
// chunk-size leakage attacks on deduplicating backups).
const (
	dataPackers = 2
	treePackers = 1
	// indexEvery writes an index file after this many packs, so an
	// interrupted backup's uploads can be reused by the next one.
	indexEvery = 32
)

type openPack struct {
	file   *os.File
	w      *bufio.Writer
	hash   *blake3.Hasher
	size   int
	blobs  []PackedBlob
	sealer *crypto.Sealer
	salt   [crypto.SaltSize]byte
	epoch  uint32
	limit  int
	// temp is true when file is a private temporary file to upload with
	// Save; false when the backend commits it in place (TempFiler).
	temp bool
}

type packerSet struct {
	open []*openPack
}

type finishedPack struct {
	info  PackInfo
	pack  *openPack
	blobs []PackedBlob
}

// Packs are written to temporary files as they fill, so memory does not
// grow with the pack size: in the repository itself when the backend can
// commit them with a rename (local disk, NAS), else in the system's
// temporary directory, from where they are uploaded.
func (r *Repository) newOpenPack() (*openPack, error) {
	k := r.keys.current()
	salt, err := crypto.NewSalt()
	if err != nil {
		return nil, err
	}
	s, err := k.Sealer(salt)
	if err != nil {
		return nil, err
	}
	p := &openPack{sealer: s, salt: salt, epoch: k.Epoch, hash: blake3.New()}
	if tf, ok := r.be.(backend.TempFiler); ok {
		p.file, err = tf.TempFile(backend.PackFile)
	} else {
		p.file, err = os.CreateTemp("", "einvault-pack-*")
		p.temp = true
	}
	if err != nil {
		return nil, fmt.Errorf("create pack file: %w", err)
	}
	if p.w = r.bufPool.Get().(*bufio.Writer); p.w == nil {
		p.w = bufio.NewWriterSize(nil, 1<<20)
	}
	p.w.Reset(io.MultiWriter(p.file, p.hash))
	// Close packs at a size uniformly spread over ±25% of the target.
	target := r.cfg.PackSize
	p.limit = target*3/4 + rand.IntN(target/2+1)
	return p, nil
}

func (p *openPack) write(b []byte) error {
	_, err := p.w.Write(b)
	p.size += len(b)
	return err
}

// discard removes an unfinished pack's file.
func (p *openPack) discard() {
	name := p.file.Name()
	_ = p.file.Close()
	_ = os.Remove(name)
}

// HasBlob reports whether a blob is stored or being stored.
func (r *Repository) HasBlob(id ID) bool {
	if r.idx.Has(id) {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inflight.Has(id)
}

func (r *Repository) startUploads() {
	if r.started {
		return
	}
	r.started = true
	r.upQueue = make(chan *finishedPack, 2*r.uploads)
	for i := 0; i < r.uploads; i++ {
		r.upWG.Add(1)
		go r.uploader()
	}
}

// compress returns the zstd form of data when that saves at least 1/64
// of its size. A 4 KiB sample that does not shrink by 3% marks data as
// already compressed (PDF renderings, archives) without paying for a full
// attempt; a sample whose bytes are plainly redundant (text, XML: at most
// 7 bits of order-0 entropy per byte, so literal coding alone saves 12%)
// skips that trial compression. A compressed result lives in a pooled
// buffer: hand it back with releaseBuf once sealed.
func (r *Repository) compress(data []byte) ([]byte, bool) {
	if len(data) < 64 {
		return data, false
	}
	enc := r.zenc
	if len(data) <= DictMaxBlob {
		if d := r.dictEncoder(); d != nil {
			enc = d
		}
	}
	bp := r.compPool.Get().(*[]byte)
	if len(data) > 8<<10 && !lowEntropy(data[:4<<10]) {
		sample := enc.EncodeAll(data[:4<<10], (*bp)[:0])
		if len(sample) > (4<<10)*97/100 {
			r.compPool.Put(bp)
			return data, false
		}
	}
	c := enc.EncodeAll(data, (*bp)[:0])
	if len(c) >= len(data)-len(data)/64 {
		*bp = c[:0]
		r.compPool.Put(bp)
		return data, false
	}
	return c, true
}

// lowEntropy reports whether the order-0 entropy of b is at most 7 bits
// per byte: Huffman coding of its bytes alone would save at least 12%.
// It costs a histogram, a fraction of a trial compression.
func lowEntropy(b []byte) bool {
	if len(b) == 0 {
		return true
	}
	var hist [256]uint32
	for _, c := range b {
		hist[c]++
	}
	// H = log2(n) - (1/n) * sum(c * log2(c))
	n := float64(len(b))
	var sum float64
	for _, c := range hist {
		if c > 1 {
			f := float64(c)
			sum += f * math.Log2(f)
		}
	}
	return math.Log2(n)-sum/n <= 7
}

func (r *Repository) releaseBuf(b []byte) {
	if cap(b) <= 8<<20 {
		b = b[:0]
		r.compPool.Put(&b)
	}
}

// SaveBlob stores a blob unless it is already stored. id must be
// r.BlobID(data). It returns whether the blob was new and the number of
// bytes it takes in storage. SaveBlob may be called concurrently; data is
// not retained after it returns.
func (r *Repository) SaveBlob(ctx context.Context, t BlobType, id ID, data []byte) (bool, int, error) {
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	if r.idx.Has(id) {
		return false, 0, nil
	}
	r.mu.Lock()
	if r.upErr != nil {
		err := r.upErr
		r.mu.Unlock()
		return false, 0, err
	}
	if r.inflight.Has(id) {
		r.mu.Unlock()
		return false, 0, nil
	}
	r.inflight.Insert(id)
	r.startUploads()
	r.mu.Unlock()

	payload, compressed := r.compress(data)
	var flags uint8
	if compressed {
		flags = blobCompressed
	}
	r.mu.Lock()
	if r.packers == nil {
		r.packers = map[BlobType]*packerSet{}
	}
	ps := r.packers[t]
	if ps == nil {
		n := dataPackers
		if t == TreeBlob {
			n = treePackers
		}
		ps = &packerSet{open: make([]*openPack, n)}
		r.packers[t] = ps
	}
	slot := rand.IntN(len(ps.open))
	p := ps.open[slot]
	if p == nil {
		var err error
		if p, err = r.newOpenPack(); err != nil {
			r.mu.Unlock()
			return false, 0, err
		}
		ps.open[slot] = p
	}
	off := p.size
	sealed, err := p.sealer.Seal(r.sealBuf[:0], payload, blobAD(t, flags, id))
	if err == nil {
		r.sealBuf = sealed
		err = p.write(sealed)
	}
	if err != nil {
		r.mu.Unlock()
		return false, 0, fmt.Errorf("write pack: %w", err)
	}
	stored := len(sealed)
	p.blobs = append(p.blobs, PackedBlob{Type: t, Flags: flags, ID: id, Offset: uint32(off), Length: uint32(stored), RawLength: uint32(len(data))})
	if compressed {
		r.releaseBuf(payload)
	}
	r.statsAdd.Blobs++
	r.statsAdd.RawBytes += uint64(len(data))
	r.statsAdd.StoredBytes += uint64(stored)
	var full *finishedPack
	if p.size >= p.limit {
		ps.open[slot] = nil
		full, err = r.finishPack(p)
	}
	r.mu.Unlock()
	if err != nil {
		return false, 0, err
	}
	if full != nil {
		select {
		case r.upQueue <- full:
		case <-ctx.Done():
			return false, 0, ctx.Err()
		}
	}
	return true, stored, nil
}

// finishPack appends header and trailer. Called with r.mu held.
func (r *Repository) finishPack(p *openPack) (*finishedPack, error) {
	plainHdr := encodePackHeader(p.blobs)
	t := packTrailer{salt: p.salt, epoch: p.epoch, headerLen: uint32(len(plainHdr) + crypto.Overhead)}
	hdr, err := p.sealer.Seal(nil, plainHdr, headerAD(t))
	if err != nil {
		return nil, err
	}
	if err := p.write(hdr); err != nil {
		return nil, fmt.Errorf("write pack: %w", err)
	}
	if err := p.write(t.encode()); err != nil {
		return nil, fmt.Errorf("write pack: %w", err)
	}
	if err := p.w.Flush(); err != nil {
		return nil, fmt.Errorf("write pack: %w", err)
	}
	p.w.Reset(nil)
	r.bufPool.Put(p.w)
	p.w = nil
	r.statsAdd.Packs++
	var id ID
	p.hash.Sum(id[:0])
	return &finishedPack{info: PackInfo{ID: id, Epoch: p.epoch, Salt: p.salt}, pack: p, blobs: p.blobs}, nil
}

// store moves a finished pack into the backend.
func (r *Repository) store(ctx context.Context, fp *finishedPack) error {
	h := backend.Handle{Type: backend.PackFile, Name: fp.info.ID.String()}
	p := fp.pack
	if !p.temp {
		return r.be.(backend.TempFiler).CommitTemp(ctx, h, p.file)
	}
	defer p.discard()
	if _, err := p.file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return r.be.Save(ctx, h, p.file, int64(p.size))
}

func (r *Repository) uploader() {
	defer r.upWG.Done()
	for fp := range r.upQueue {
		r.mu.Lock()
		failed := r.upErr != nil
		r.mu.Unlock()
		if failed {
			fp.pack.discard()
			continue
		}
		err := r.store(context.Background(), fp)
		r.mu.Lock()
		if err != nil {
			if r.upErr == nil {
				r.upErr = fmt.Errorf("upload pack %s: %w", fp.info.ID.Short(), err)
			}
			r.mu.Unlock()
			continue
		}
		r.idx.AddPack(fp.info, fp.blobs)
		r.written = append(r.written, WrittenPack{ID: fp.info.ID, Size: int64(fp.pack.size)})
		for _, b := range fp.blobs {
			delete(r.inflight, b.ID)
		}
		r.unsaved = append(r.unsaved, IndexPack{PackInfo: fp.info, Blobs: fp.blobs})
		var toIndex []IndexPack
		if len(r.unsaved) >= indexEvery {
			toIndex, r.unsaved = r.unsaved, nil
		}
		r.mu.Unlock()
		if toIndex != nil {
			if _, err := r.SaveIndexFile(context.Background(), &IndexFile{Packs: toIndex}); err != nil {
				r.mu.Lock()
				if r.upErr == nil {
					r.upErr = err
				}
				r.mu.Unlock()
			}
		}
	}
}

// Flush closes every open pack, waits for all uploads, and writes an index
// file for them. After Flush returns nil, every blob saved so far is
// durable and indexed, and a snapshot may reference it. Flush must not run
// concurrently with SaveBlob; saving may resume after it returns.
func (r *Repository) Flush(ctx context.Context) error {
	r.mu.Lock()
	if !r.started {
		r.mu.Unlock()
		return nil
	}
	var last []*finishedPack
	for _, ps := range r.packers {
		for i, p := range ps.open {
			if p == nil || len(p.blobs) == 0 {
				continue
			}
			fp, err := r.finishPack(p)
			if err != nil {
				r.mu.Unlock()
				return err
			}
			ps.open[i] = nil
			last = append(last, fp)
		}
	}
	r.started = false
	q := r.upQueue
	r.mu.Unlock()
	for _, fp := range last {
		q <- fp
	}
	close(q)
	r.upWG.Wait()
	r.mu.Lock()
	err := r.upErr
	unsaved := r.unsaved
	r.unsaved = nil
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if len(unsaved) > 0 {
		if _, err := r.SaveIndexFile(ctx, &IndexFile{Packs: unsaved}); err != nil {
			return err
		}
	}
	return nil
}

func jsonIndent(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }
