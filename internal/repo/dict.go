package repo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"

	"github.com/einvault/einvault/internal/backend"
	"github.com/klauspost/compress/zstd"
)

// Small files of one kind (invoices of one format, source files of one
// language) share most of their bytes, yet each is compressed alone. A zstd
// raw-content dictionary made of sample small files of the repository's own
// data lets each compress several times better, and faster. Dictionaries are
// sealed files in dicts/ (kind 6) whose payload is
//
//	"EVD1" | dictionary ID u32le | content
//
// A zstd frame names the dictionary it needs by its ID, so readers load
// every dictionary at open and the blob format is unchanged.
const (
	// DictMaxBlob is the largest blob compressed with the dictionary.
	DictMaxBlob = 128 << 10
	// DictMaxContent bounds a dictionary's size.
	DictMaxContent = 256 << 10
	// DictMinContent is the least sample content worth a dictionary.
	DictMinContent = 16 << 10
	dictMagic      = "EVD1"
)

type dictionary struct {
	id      uint32
	content []byte
}

// decodeDict parses a dictionary file's payload.
func decodeDict(b []byte) (dictionary, error) {
	if len(b) < 8 || string(b[:4]) != dictMagic {
		return dictionary{}, fmt.Errorf("%w: not a compression dictionary", ErrDamaged)
	}
	d := dictionary{id: binary.LittleEndian.Uint32(b[4:]), content: b[8:]}
	if d.id == 0 || len(d.content) > DictMaxContent || len(d.content) == 0 {
		return dictionary{}, fmt.Errorf("%w: compression dictionary has a bad ID or size", ErrDamaged)
	}
	return d, nil
}

// loadDictionaries reads every dictionary and rebuilds the codecs.
func (r *Repository) loadDictionaries(ctx context.Context) error {
	var dicts []dictionary
	err := r.be.List(ctx, backend.DictFile, func(fi backend.FileInfo) error {
		id, err := ParseID(fi.Name)
		if err != nil {
			return nil
		}
		plain, err := r.loadFile(ctx, backend.Handle{Type: backend.DictFile, Name: id.String()}, KindDict)
		if err == nil {
			var d dictionary
			if d, err = decodeDict(plain); err == nil {
				dicts = append(dicts, d)
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Everything not compressed with this dictionary stays readable:
		// go on, and let the blobs that need it report damage.
		r.log.Warn("compression dictionary unreadable; blobs compressed with it will be reported as damaged (run 'einvault check')", "file", "dicts/"+id.Short(), "err", err)
		return nil
	})
	if err != nil {
		return err
	}
	return r.setDictionaries(dicts)
}

// setDictionaries installs a decoder knowing every dictionary and an
// encoder using the last one.
func (r *Repository) setDictionaries(dicts []dictionary) error {
	if len(dicts) == 0 {
		return nil
	}
	dopts := []zstd.DOption{zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithDecoderMaxMemory(1 << 30), zstd.WithDecoderLowmem(true)}
	for _, d := range dicts {
		dopts = append(dopts, zstd.WithDecoderDictRaw(d.id, d.content))
	}
	dec, err := zstd.NewReader(nil, dopts...)
	if err != nil {
		return fmt.Errorf("%w: compression dictionary: %v", ErrDamaged, err)
	}
	last := dicts[len(dicts)-1]
	// Blobs using the dictionary are at most DictMaxBlob, so a window of
	// the dictionary plus one blob (a power of two: 512 KiB) suffices and
	// keeps encoder memory small.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(512<<10), zstd.WithEncoderDictRaw(last.id, last.content))
	if err != nil {
		return fmt.Errorf("%w: compression dictionary: %v", ErrDamaged, err)
	}
	r.codecMu.Lock()
	// The old decoder may still be in use by a concurrent reader; DecodeAll
	// holds no goroutines, so it is left to the garbage collector.
	r.zdec, r.zdict, r.dicts = dec, enc, dicts
	r.codecMu.Unlock()
	return nil
}

// HasDictionary reports whether new small blobs use a dictionary.
func (r *Repository) HasDictionary() bool {
	r.codecMu.RLock()
	defer r.codecMu.RUnlock()
	return r.zdict != nil
}

// ErrTooFewSamples is returned by AddDictionary when the samples are too
// small to be worth a dictionary.
var ErrTooFewSamples = errors.New("too little sample content for a compression dictionary")

// AddDictionary stores a dictionary made of sample content (concatenated
// small files, most typical last) and uses it for small blobs from now
// on. Blobs compressed with it can only be read once it is stored, which
// AddDictionary does before it installs the encoder.
func (r *Repository) AddDictionary(ctx context.Context, content []byte) error {
	if len(content) < DictMinContent {
		return ErrTooFewSamples
	}
	if len(content) > DictMaxContent {
		content = content[len(content)-DictMaxContent:]
	}
	d := dictionary{id: 1<<16 + rand.Uint32N(1<<31), content: content}
	payload := binary.LittleEndian.AppendUint32([]byte(dictMagic), d.id)
	payload = append(payload, content...)
	if _, err := r.saveFile(ctx, backend.DictFile, KindDict, payload); err != nil {
		return fmt.Errorf("save compression dictionary: %w", err)
	}
	r.codecMu.RLock()
	all := append(append([]dictionary(nil), r.dicts...), d)
	r.codecMu.RUnlock()
	return r.setDictionaries(all)
}

func (r *Repository) decoder() *zstd.Decoder {
	r.codecMu.RLock()
	defer r.codecMu.RUnlock()
	return r.zdec
}

func (r *Repository) dictEncoder() *zstd.Encoder {
	r.codecMu.RLock()
	defer r.codecMu.RUnlock()
	return r.zdict
}
