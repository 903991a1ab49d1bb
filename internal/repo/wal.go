package repo

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/einvault/einvault/internal/crypto"

	"github.com/klauspost/compress/zstd"
)

// walMagic starts the payload of a WAL file, followed by the WAL file
// name (u16 length + bytes) and the content. The name is inside the
// sealed payload so a segment cannot be passed off under another name.
const walMagic = "EVWAL1"

// walParallelMin is the content size from which SealWAL compresses in
// two parallel halves.
const walParallelMin = 4 << 20

// SealWAL seals the content of the WAL file called name (compressed and
// encrypted like every standalone file) for storage as wal/<name>.
//
// It is built for one process per 16 MiB segment: the payload prefix and
// the content are compressed as two zstd frames (a zstd stream of
// concatenated frames decodes to the concatenation, so the file format is
// unchanged), straight into the output buffer behind the file header and
// nonce, and encrypted there in place. The content is never copied and
// the output allocated once.
func (r *Repository) SealWAL(name string, content []byte) ([]byte, error) {
	if len(name) == 0 || len(name) > 255 {
		return nil, fmt.Errorf("invalid WAL file name %q", name)
	}
	prefix := make([]byte, 0, len(walMagic)+2+len(name))
	prefix = append(prefix, walMagic...)
	prefix = binary.LittleEndian.AppendUint16(prefix, uint16(len(name)))
	prefix = append(prefix, name...)
	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(2), zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, err
	}
	defer zenc.Close()
	k := r.keys.current()
	salt, err := crypto.NewSalt()
	if err != nil {
		return nil, err
	}
	s, err := k.Sealer(salt)
	if err != nil {
		return nil, err
	}
	// Room for the worst case (incompressible content): zstd adds a few
	// bytes per 128 KiB block. Untouched capacity costs no memory.
	bound := zenc.MaxEncodedSize(len(prefix)) + zenc.MaxEncodedSize(len(content))
	buf := make([]byte, fileHeaderSize, fileHeaderSize+crypto.NonceSize+bound+crypto.Overhead)
	copy(buf, fileMagic)
	buf[4] = byte(KindWAL)
	buf[5] = flagCompressed
	binary.LittleEndian.PutUint32(buf[6:], k.Epoch)
	copy(buf[10:], salt[:])
	body := fileHeaderSize + crypto.NonceSize
	comp := zenc.EncodeAll(prefix, buf[body:body])
	// A large segment is compressed as two frames in parallel: the
	// second half into its own buffer, appended behind the first.
	if len(content) >= walParallelMin {
		half := len(content) / 2
		var second []byte
		done := make(chan struct{})
		go func() {
			defer close(done)
			second = zenc.EncodeAll(content[half:], make([]byte, 0, zenc.MaxEncodedSize(len(content)-half)))
		}()
		comp = zenc.EncodeAll(content[:half], comp)
		<-done
		comp = append(comp, second...)
	} else {
		comp = zenc.EncodeAll(content, comp)
	}
	// Seal writes the nonce behind the header and encrypts comp onto
	// itself (exact overlap, allowed by cipher.AEAD; should comp ever
	// have outgrown buf, it lives elsewhere and Seal simply copies).
	return s.Seal(buf[:fileHeaderSize], comp, buf[:fileHeaderSize])
}

// OpenWAL authenticates and decodes a sealed WAL file that must hold the
// WAL file called name.
func (r *Repository) OpenWAL(name string, sealed []byte) ([]byte, error) {
	plain, err := r.openFile(KindWAL, sealed)
	if err != nil {
		return nil, err
	}
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
