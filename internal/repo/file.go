package repo

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/einvault/einvault/internal/crypto"
	"github.com/klauspost/compress/zstd"
)

// Standalone sealed files (index, snapshot, lock, pending, catalog) share
// one envelope:
//
//	magic "EVF1" | kind u8 | flags u8 | epoch u32le | salt [16] | nonce | ciphertext | tag
//
// The 26-byte header is the associated data, so the kind, flags and epoch
// cannot be altered or a snapshot passed off as an index.
const (
	fileMagic      = "EVF1"
	fileHeaderSize = 4 + 1 + 1 + 4 + crypto.SaltSize
	flagCompressed = 1 // payload is zstd-compressed
	flagS2         = 2 // payload is in the S2 stream format (WAL files only, wal.go)
)

// FileKind tells what a standalone sealed file holds.
type FileKind uint8

// File kinds.
const (
	KindIndex    FileKind = 1
	KindSnapshot FileKind = 2
	KindLock     FileKind = 3
	KindPending  FileKind = 4
	KindCatalog  FileKind = 5
	KindDict     FileKind = 6
	KindCopies   FileKind = 7
	KindWAL      FileKind = 8 // an archived PostgreSQL WAL file (wal.go)
)

func (k FileKind) String() string {
	switch k {
	case KindIndex:
		return "index"
	case KindSnapshot:
		return "snapshot"
	case KindLock:
		return "lock"
	case KindPending:
		return "pending"
	case KindCatalog:
		return "catalog"
	case KindDict:
		return "dictionary"
	case KindCopies:
		return "copy list"
	case KindWAL:
		return "WAL file"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ErrDamaged marks repository data that fails verification.
var ErrDamaged = errors.New("repository data is damaged")

// sealFile builds a standalone file of the given kind.
func (r *Repository) sealFile(kind FileKind, payload []byte) ([]byte, error) {
	return r.sealFileWith(kind, payload, r.zenc)
}

// sealFileWith is sealFile with another zstd encoder (WAL files use the
// fastest level: one process per segment must be quick).
func (r *Repository) sealFileWith(kind FileKind, payload []byte, zenc *zstd.Encoder) ([]byte, error) {
	k := r.keys.current()
	salt, err := crypto.NewSalt()
	if err != nil {
		return nil, err
	}
	s, err := k.Sealer(salt)
	if err != nil {
		return nil, err
	}
	if zenc == nil { // stored as is: the payload compresses itself
		hdr := make([]byte, fileHeaderSize, fileHeaderSize+len(payload)+crypto.Overhead)
		r.fileHeader(hdr, kind, 0, k.Epoch, salt)
		return s.Seal(hdr, payload, hdr[:fileHeaderSize])
	}
	hdr := make([]byte, fileHeaderSize, fileHeaderSize+len(payload)/2+crypto.Overhead+64)
	r.fileHeader(hdr, kind, flagCompressed, k.Epoch, salt)
	comp := zenc.EncodeAll(payload, nil)
	return s.Seal(hdr, comp, hdr[:fileHeaderSize])
}

func (r *Repository) fileHeader(hdr []byte, kind FileKind, flags byte, epoch uint32, salt [crypto.SaltSize]byte) {
	copy(hdr, fileMagic)
	hdr[4] = byte(kind)
	hdr[5] = flags
	binary.LittleEndian.PutUint32(hdr[6:], epoch)
	copy(hdr[10:], salt[:])
}

// openFile authenticates and decodes a standalone file, checking its kind.
func (r *Repository) openFile(kind FileKind, data []byte) ([]byte, error) {
	if len(data) < fileHeaderSize+crypto.Overhead || string(data[:4]) != fileMagic {
		return nil, fmt.Errorf("%w: not an einvault %v file (bad magic or too short)", ErrDamaged, kind)
	}
	if FileKind(data[4]) != kind {
		return nil, fmt.Errorf("%w: file holds a %v, expected a %v", ErrDamaged, FileKind(data[4]), kind)
	}
	flags := data[5]
	if flags&^flagCompressed != 0 && !(kind == KindWAL && flags == flagS2) {
		return nil, fmt.Errorf("%w: unknown flags %#x", ErrDamaged, flags)
	}
	epoch := binary.LittleEndian.Uint32(data[6:])
	k, err := r.keys.epoch(epoch)
	if err != nil {
		return nil, err
	}
	var salt [crypto.SaltSize]byte
	copy(salt[:], data[10:fileHeaderSize])
	s, err := k.Sealer(salt)
	if err != nil {
		return nil, err
	}
	plain, err := s.Open(nil, data[fileHeaderSize:], data[:fileHeaderSize])
	if err != nil {
		return nil, fmt.Errorf("%w: %v file: %v", ErrDamaged, kind, err)
	}
	switch {
	case flags&flagCompressed != 0:
		plain, err = r.decoder().DecodeAll(plain, nil)
	case flags&flagS2 != 0:
		plain, err = decodeS2(plain)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v file: decompress: %v", ErrDamaged, kind, err)
	}
	return plain, nil
}
