package repo

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// walMagic starts the payload of a WAL file, followed by the WAL file
// name (u16 length + bytes) and the content. The name is inside the
// sealed payload so a segment cannot be passed off under another name.
const walMagic = "EVWAL1"

// SealWAL seals the content of the WAL file called name (compressed and
// encrypted like every standalone file) for storage as wal/<name>.
func (r *Repository) SealWAL(name string, content []byte) ([]byte, error) {
	if len(name) == 0 || len(name) > 255 {
		return nil, fmt.Errorf("invalid WAL file name %q", name)
	}
	payload := make([]byte, 0, len(walMagic)+2+len(name)+len(content))
	payload = append(payload, walMagic...)
	payload = binary.LittleEndian.AppendUint16(payload, uint16(len(name)))
	payload = append(payload, name...)
	payload = append(payload, content...)
	zenc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, err
	}
	defer zenc.Close()
	return r.sealFileWith(KindWAL, payload, zenc)
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
