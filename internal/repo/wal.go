package repo

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"

	"github.com/einvault/einvault/internal/crypto"

	"github.com/klauspost/compress/s2"
)

// walMagic starts the payload of a WAL file, followed by the WAL file
// name (u16 length + bytes) and the content. The name is inside the
// sealed payload so a segment cannot be passed off under another name.
const walMagic = "EVWAL1"

// walBlockSize is the S2 block size of sealed WAL files: a 16 MiB
// segment is 16 blocks, compressed on all cores.
const walBlockSize = 1 << 20

// walMaxSize bounds the decoded size of a WAL file (PostgreSQL's largest
// wal_segment_size is 1 GiB), so a damaged file cannot exhaust memory.
const walMaxSize = 1<<30 + 1<<16

// SealWAL seals the content of the WAL file called name, compressed and
// encrypted, for storage as wal/<name>.
//
// It is built for one process per 16 MiB segment (PostgreSQL's
// archive_command): the payload is compressed with S2 (flag flagS2; a
// few times faster than zstd's fastest level, see docs/REPOSITORY.md) in
// 1 MiB blocks on all cores, straight into the output buffer behind the
// file header and nonce, and encrypted there in place. The content is
// never copied and the output allocated once. Files sealed by earlier
// versions (zstd, flagCompressed) still open.
func (r *Repository) SealWAL(name string, content []byte) ([]byte, error) {
	if len(name) == 0 || len(name) > 255 {
		return nil, fmt.Errorf("invalid WAL file name %q", name)
	}
	if len(content) > walMaxSize {
		return nil, fmt.Errorf("WAL file %s is %d bytes, more than the largest WAL segment (1 GiB)", name, len(content))
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
	// Room for the worst case (incompressible content): S2 adds a few
	// bytes per block, the stream 8 bytes of chunk header and checksum
	// per block. Untouched capacity costs no memory.
	n := len(prefix) + len(content)
	bound := s2.MaxEncodedLen(n) + 16*(n/walBlockSize+3) + 64
	buf := make([]byte, fileHeaderSize, fileHeaderSize+crypto.NonceSize+bound+crypto.Overhead)
	copy(buf, fileMagic)
	buf[4] = byte(KindWAL)
	buf[5] = flagS2
	binary.LittleEndian.PutUint32(buf[6:], k.Epoch)
	copy(buf[10:], salt[:])
	body := fileHeaderSize + crypto.NonceSize
	out := &appendWriter{b: buf[body:body]}
	w := s2.NewWriter(out, s2.WriterBlockSize(walBlockSize), s2.WriterConcurrency(runtime.GOMAXPROCS(0)))
	if _, err := w.Write(prefix); err != nil {
		return nil, fmt.Errorf("compress WAL file %s: %w", name, err)
	}
	// EncodeBuffer compresses content in place, block by block, without
	// copying it into the writer's buffers.
	if err := w.EncodeBuffer(content); err != nil {
		return nil, fmt.Errorf("compress WAL file %s: %w", name, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compress WAL file %s: %w", name, err)
	}
	// Seal writes the nonce behind the header and encrypts the compressed
	// payload onto itself (exact overlap, allowed by cipher.AEAD; should
	// it ever have outgrown buf, it lives elsewhere and Seal copies).
	return s.Seal(buf[:fileHeaderSize], out.b, buf[:fileHeaderSize])
}

// appendWriter is an io.Writer appending to a slice.
type appendWriter struct{ b []byte }

func (a *appendWriter) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

// decodeS2 decodes an S2 stream (the compressed payload of a WAL file
// with flagS2), refusing more than walMaxSize bytes.
func decodeS2(data []byte) ([]byte, error) {
	rd := s2.NewReader(bytes.NewReader(data), s2.ReaderMaxBlockSize(4<<20))
	var out bytes.Buffer
	// Most WAL compresses to a tenth or more; start near the final size.
	out.Grow(min(len(data)*4, 16<<20+1<<10))
	n, err := out.ReadFrom(io.LimitReader(rd, walMaxSize+1))
	if err != nil {
		return nil, err
	}
	if n > walMaxSize {
		return nil, fmt.Errorf("decoded size exceeds %d bytes", walMaxSize)
	}
	return out.Bytes(), nil
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
