package repo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/einvault/einvault/internal/crypto"

	"github.com/klauspost/compress/s2"
)

// walMagic starts the payload of a WAL file, followed by the WAL file
// name (u16 length + bytes) and the content. The name is inside the
// sealed payload so a segment cannot be passed off under another name.
const walMagic = "EVWAL1"

// walBlockSize is the size of the S2 blocks of sealed WAL files: a 16
// MiB segment is 16 blocks, compressed on all cores.
const walBlockSize = 1 << 20

// walMaxBlock bounds the decoded size of one block when reading.
const walMaxBlock = 4 << 20

// walMaxSize bounds the decoded size of a WAL file (PostgreSQL's largest
// wal_segment_size is 1 GiB), so a damaged file cannot exhaust memory.
const walMaxSize = 1<<30 + 1<<16

// SealWAL seals the content of the WAL file called name, compressed and
// encrypted, for storage as wal/<name>.
//
// It is built for one process per 16 MiB segment (PostgreSQL's
// archive_command): the payload is compressed with S2 (flag flagS2;
// several times faster than zstd's fastest level, see docs/REPOSITORY.md)
// as independent 1 MiB blocks on all cores, appended in order to the
// output buffer behind the file header and nonce, and encrypted there in
// place. The content is never copied, the output is allocated once and
// only its used part touched. Files sealed by earlier versions (zstd,
// flagCompressed) still open.
func (r *Repository) SealWAL(name string, content []byte) ([]byte, error) {
	return r.SealWALWith(name, content, nil)
}

// SealWALWith is SealWAL taking the output and the workers' scratch
// buffers from alloc, which returns n bytes of any content (nil: the Go
// heap). A short-lived push passes memory backed by huge pages: on a
// virtual machine, faulting in a fresh 4 KiB page can cost tens of
// microseconds, and a push touches a few thousand of them otherwise.
func (r *Repository) SealWALWith(name string, content []byte, alloc func(n int) []byte) ([]byte, error) {
	return r.sealWAL(name, int64(len(content)), false, func(i int, _ []byte) ([]byte, error) {
		return content[i*walBlockSize : min(len(content), (i+1)*walBlockSize)], nil
	}, alloc)
}

// SealWALFrom is SealWALWith reading the content, size bytes, from src
// (a WAL file) as the compressors need it: each reads its next 1 MiB
// block into a buffer of its own that stays in the CPU's cache, and the
// segment is never held in memory whole. Reading fewer than size bytes is
// an error.
func (r *Repository) SealWALFrom(name string, src io.ReaderAt, size int64, alloc func(n int) []byte) ([]byte, error) {
	return r.sealWAL(name, size, true, func(i int, buf []byte) ([]byte, error) {
		off := int64(i) * walBlockSize
		n := int(min(size-off, walBlockSize))
		got, err := src.ReadAt(buf[:n], off)
		if got == n {
			return buf[:n], nil
		}
		if err == nil || err == io.EOF {
			err = fmt.Errorf("%d bytes at offset %d, %d expected (the file shrank while being archived)", got, off, n)
		}
		return nil, fmt.Errorf("read WAL file %s: %w", name, err)
	}, alloc)
}

// sealWAL seals a WAL file of size bytes whose i-th walBlockSize block
// block returns; buf is, when staged, a walBlockSize buffer of the
// calling worker's own to read it into.
func (r *Repository) sealWAL(name string, size int64, staged bool, block func(i int, buf []byte) ([]byte, error), alloc func(n int) []byte) ([]byte, error) {
	if alloc == nil {
		alloc = func(n int) []byte { return make([]byte, n) }
	}
	if len(name) == 0 || len(name) > 255 {
		return nil, fmt.Errorf("invalid WAL file name %q", name)
	}
	if size < 0 || size > int64(walMaxSize-len(walMagic)-2-len(name)) {
		return nil, fmt.Errorf("WAL file %s is %d bytes, more than the largest WAL segment (1 GiB)", name, size)
	}
	prefix := make([]byte, 0, len(walMagic)+2+len(name))
	prefix = append(prefix, walMagic...)
	prefix = binary.LittleEndian.AppendUint16(prefix, uint16(len(name)))
	prefix = append(prefix, name...)
	k := r.keys.current()
	salt, err := crypto.NewSalt()
	if err != nil {
		return nil, err
	}
	s, err := k.Sealer(salt)
	if err != nil {
		return nil, err
	}
	// The blocks: the prefix (block 0), then the content in walBlockSize
	// pieces (block i is content block i-1).
	nblocks := 1 + int((size+walBlockSize-1)/walBlockSize)
	// Workers take the blocks in order and compress each into their own
	// reused scratch buffer; a block is then appended to the output,
	// u32le compressed length + block, as soon as the one before it is
	// (placed[i] closes when block i is in; the output, w and failed are
	// only touched in that order). The output is written once, front to
	// back, and only its used part is ever touched.
	body := fileHeaderSize + crypto.NonceSize
	bound := body + crypto.Overhead + 4 + s2.MaxEncodedLen(len(prefix))
	for rest := size; rest > 0; rest -= walBlockSize {
		bound += 4 + s2.MaxEncodedLen(int(min(rest, walBlockSize)))
	}
	// The scratch buffers come first: the output's used part then starts
	// in the memory page where they end.
	workers := min(runtime.GOMAXPROCS(0), nblocks)
	type scratch struct{ in, out []byte }
	scratches := make([]scratch, workers)
	for i := range scratches {
		if staged {
			scratches[i].in = alloc(walBlockSize)
		}
		scratches[i].out = alloc(s2.MaxEncodedLen(walBlockSize))
	}
	buf := alloc(bound)[:bound]
	w := body
	var failed error
	placed := make([]chan struct{}, nblocks)
	for i := range placed {
		placed[i] = make(chan struct{})
	}
	var next atomic.Int64
	work := func(sc scratch) {
		for i := int(next.Add(1)) - 1; i < nblocks; i = int(next.Add(1)) - 1 {
			var enc []byte
			var err error
			if i == 0 {
				enc = s2.Encode(sc.out, prefix)
			} else {
				var blk []byte
				if blk, err = block(i-1, sc.in); err == nil {
					enc = s2.Encode(sc.out, blk)
				}
			}
			if i > 0 {
				<-placed[i-1]
			}
			switch {
			case failed != nil:
			case err != nil:
				failed = err
			default:
				binary.LittleEndian.PutUint32(buf[w:], uint32(len(enc)))
				w += 4 + copy(buf[w+4:], enc)
			}
			close(placed[i])
		}
	}
	var wg sync.WaitGroup
	for _, sc := range scratches[1:] {
		wg.Go(func() { work(sc) })
	}
	work(scratches[0])
	wg.Wait()
	if failed != nil {
		return nil, failed
	}
	copy(buf, fileMagic)
	buf[4] = byte(KindWAL)
	buf[5] = flagS2
	binary.LittleEndian.PutUint32(buf[6:], k.Epoch)
	copy(buf[10:], salt[:])
	// Seal writes the nonce behind the header and encrypts the packed
	// blocks onto themselves (exact overlap, allowed by cipher.AEAD).
	return s.Seal(buf[:fileHeaderSize], buf[body:w], buf[:fileHeaderSize])
}

// decodeS2 decodes the compressed payload of a WAL file with flagS2: a
// sequence of u32le length + S2 block. The decoded size is computed from
// the block headers first, bounded by walMaxSize, and allocated once.
func decodeS2(data []byte) ([]byte, error) {
	total := 0
	for rest := data; len(rest) > 0; {
		blk, tail, err := nextS2Block(rest)
		if err != nil {
			return nil, err
		}
		n, err := s2.DecodedLen(blk)
		if err != nil {
			return nil, err
		}
		if n > walMaxBlock {
			return nil, fmt.Errorf("block of %d bytes, more than %d", n, walMaxBlock)
		}
		if total += n; total > walMaxSize {
			return nil, fmt.Errorf("decoded size exceeds %d bytes", walMaxSize)
		}
		rest = tail
	}
	out := make([]byte, total)
	w := 0
	for rest := data; len(rest) > 0; {
		blk, tail, _ := nextS2Block(rest)
		n, _ := s2.DecodedLen(blk)
		if _, err := s2.Decode(out[w:w+n], blk); err != nil {
			return nil, err
		}
		w += n
		rest = tail
	}
	return out, nil
}

// nextS2Block splits the first length-prefixed block off data.
func nextS2Block(data []byte) (blk, rest []byte, err error) {
	if len(data) < 4 {
		return nil, nil, errors.New("truncated block length")
	}
	n := binary.LittleEndian.Uint32(data)
	if uint64(n) > uint64(len(data)-4) {
		return nil, nil, fmt.Errorf("block of %d bytes, only %d left", n, len(data)-4)
	}
	return data[4 : 4+n], data[4+n:], nil
}

// OpenWAL authenticates and decodes a sealed WAL file that must hold the
// WAL file called name, in either format (S2 or, from earlier versions,
// zstd).
func (r *Repository) OpenWAL(name string, sealed []byte) ([]byte, error) {
	plain, err := r.openFile(KindWAL, sealed)
	if err != nil {
		return nil, err
	}
	return walContent(name, plain)
}

// walContent checks the payload header of a WAL file and returns its
// content.
func walContent(name string, plain []byte) ([]byte, error) {
	if len(plain) < len(walMagic)+2 || !bytes.Equal(plain[:len(walMagic)], []byte(walMagic)) {
		return nil, fmt.Errorf("%w: WAL file %s: bad payload header", ErrDamaged, name)
	}
	n := int(binary.LittleEndian.Uint16(plain[len(walMagic):]))
	rest := plain[len(walMagic)+2:]
	if len(rest) < n {
		return nil, fmt.Errorf("%w: WAL file %s: truncated name", ErrDamaged, name)
	}
	if got := string(rest[:n]); got != name {
		return nil, fmt.Errorf("%w: wal/%s holds WAL file %s (renamed in storage?)", ErrDamaged, name, got)
	}
	return rest[n:], nil
}
