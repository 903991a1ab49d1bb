package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/crypto"
)

// Blobs are spread at random over several open packs of their type, and a
// pack is closed at a randomised size, so the order and size of what lands
// in storage reveal neither chunk boundaries nor file sizes (the answer to
// chunk-size leakage attacks on deduplicating backups).
const (
	dataPackers = 4
	treePackers = 2
	// indexEvery writes an index file after this many packs, so an
	// interrupted backup's uploads can be reused by the next one.
	indexEvery = 32
)

type openPack struct {
	buf    []byte
	blobs  []PackedBlob
	sealer *crypto.Sealer
	salt   [crypto.SaltSize]byte
	epoch  uint32
	limit  int
}

type packerSet struct {
	open []*openPack
}

type finishedPack struct {
	info  PackInfo
	data  []byte
	blobs []PackedBlob
}

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
	// Close packs at a size uniformly spread over ±25% of the target.
	target := r.cfg.PackSize
	limit := target*3/4 + rand.IntN(target/2+1)
	return &openPack{buf: make([]byte, 0, limit+limit/8), sealer: s, salt: salt, epoch: k.Epoch, limit: limit}, nil
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
	r.upQueue = make(chan *finishedPack, r.uploads)
	for i := 0; i < r.uploads; i++ {
		r.upWG.Add(1)
		go r.uploader()
	}
}

// compressible decides whether compressing data is worth trying: a 16 KiB
// sample that does not shrink by 3% is taken as already compressed.
func (r *Repository) compress(data []byte) ([]byte, bool) {
	if len(data) < 64 {
		return data, false
	}
	if len(data) > 64<<10 {
		sample := r.zenc.EncodeAll(data[:16<<10], nil)
		if len(sample) > (16<<10)*97/100 {
			return data, false
		}
	}
	c := r.zenc.EncodeAll(data, make([]byte, 0, len(data)/2))
	if len(c) >= len(data)-len(data)/64 {
		return data, false
	}
	return c, true
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
	off := len(p.buf)
	var err error
	p.buf, err = p.sealer.Seal(p.buf, payload, blobAD(t, flags, id))
	if err != nil {
		r.mu.Unlock()
		return false, 0, err
	}
	stored := len(p.buf) - off
	p.blobs = append(p.blobs, PackedBlob{Type: t, Flags: flags, ID: id, Offset: uint32(off), Length: uint32(stored), RawLength: uint32(len(data))})
	r.statsAdd.Blobs++
	r.statsAdd.RawBytes += uint64(len(data))
	r.statsAdd.StoredBytes += uint64(stored)
	var full *finishedPack
	if len(p.buf) >= p.limit {
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
	p.buf = append(p.buf, hdr...)
	p.buf = append(p.buf, t.encode()...)
	r.statsAdd.Packs++
	return &finishedPack{info: PackInfo{ID: Hash(p.buf), Epoch: p.epoch, Salt: p.salt}, data: p.buf, blobs: p.blobs}, nil
}

func (r *Repository) uploader() {
	defer r.upWG.Done()
	for fp := range r.upQueue {
		r.mu.Lock()
		failed := r.upErr != nil
		r.mu.Unlock()
		if failed {
			continue
		}
		h := backend.Handle{Type: backend.PackFile, Name: fp.info.ID.String()}
		err := r.be.Save(context.Background(), h, bytes.NewReader(fp.data), int64(len(fp.data)))
		r.mu.Lock()
		if err != nil {
			if r.upErr == nil {
				r.upErr = fmt.Errorf("upload pack %s: %w", fp.info.ID.Short(), err)
			}
			r.mu.Unlock()
			continue
		}
		r.idx.AddPack(fp.info, fp.blobs)
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
