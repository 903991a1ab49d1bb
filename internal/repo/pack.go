package repo

import (
	"encoding/binary"
	"fmt"

	"github.com/einvault/einvault/internal/crypto"
)

// A pack file is
//
//	sealed blob 1 | ... | sealed blob n | sealed header | trailer
//
// where each sealed blob is nonce|ciphertext|tag under the pack's subkey
// with associated data type|flags|blob ID, and the 28-byte trailer is
//
//	salt [16] | epoch u32le | sealed header length u32le | magic "EVP1"
//
// The header lists, in file order, each blob's type, flags, sealed length,
// plaintext length and ID. The pack ID is the plain BLAKE3 of the file.

// BlobType distinguishes file content from directory listings.
type BlobType uint8

// Blob types.
const (
	DataBlob BlobType = 1
	TreeBlob BlobType = 2
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return fmt.Sprintf("blobtype(%d)", uint8(t))
}

const (
	packMagic       = "EVP1"
	packTrailerSize = crypto.SaltSize + 4 + 4 + 4
	// blobCompressed flags a blob whose plaintext is zstd-compressed.
	blobCompressed = 1
	maxHeaderLen   = 64 << 20
	// minHeaderEntry is the smallest encoded header entry: type, flags,
	// one-byte lengths and the ID.
	minHeaderEntry = 2 + 1 + 1 + IDSize
)

// PackedBlob is one entry of a pack header.
type PackedBlob struct {
	Type      BlobType
	Flags     uint8
	ID        ID
	Offset    uint32
	Length    uint32 // sealed length in the pack
	RawLength uint32 // plaintext length after decompression
}

func blobAD(t BlobType, flags uint8, id ID) []byte {
	ad := make([]byte, 2+IDSize)
	ad[0] = byte(t)
	ad[1] = flags
	copy(ad[2:], id[:])
	return ad
}

func encodePackHeader(blobs []PackedBlob) []byte {
	buf := binary.AppendUvarint(nil, uint64(len(blobs)))
	for _, b := range blobs {
		buf = append(buf, byte(b.Type), b.Flags)
		buf = binary.AppendUvarint(buf, uint64(b.Length))
		buf = binary.AppendUvarint(buf, uint64(b.RawLength))
		buf = append(buf, b.ID[:]...)
	}
	return buf
}

// DecodePackHeader parses a decrypted pack header; dataLen is the number
// of bytes before the sealed header, which the blobs must exactly fill.
func DecodePackHeader(buf []byte, dataLen int64) ([]PackedBlob, error) {
	n, k := binary.Uvarint(buf)
	// Each entry takes at least minHeaderEntry bytes, which bounds the
	// count (and the allocation below) by the input.
	if k <= 0 || n > uint64(len(buf)-k)/minHeaderEntry {
		return nil, fmt.Errorf("%w: pack header: bad blob count", ErrDamaged)
	}
	buf = buf[k:]
	blobs := make([]PackedBlob, 0, n)
	var off int64
	for i := uint64(0); i < n; i++ {
		if len(buf) < 2 {
			return nil, fmt.Errorf("%w: pack header truncated", ErrDamaged)
		}
		b := PackedBlob{Type: BlobType(buf[0]), Flags: buf[1]}
		if b.Type != DataBlob && b.Type != TreeBlob || b.Flags&^blobCompressed != 0 {
			return nil, fmt.Errorf("%w: pack header: bad blob type or flags", ErrDamaged)
		}
		buf = buf[2:]
		l, k := binary.Uvarint(buf)
		if k <= 0 || l > 1<<31 || l < crypto.Overhead {
			return nil, fmt.Errorf("%w: pack header: bad blob length", ErrDamaged)
		}
		buf = buf[k:]
		raw, k := binary.Uvarint(buf)
		if k <= 0 || raw > 1<<31 {
			return nil, fmt.Errorf("%w: pack header: bad blob raw length", ErrDamaged)
		}
		buf = buf[k:]
		if len(buf) < IDSize {
			return nil, fmt.Errorf("%w: pack header truncated", ErrDamaged)
		}
		copy(b.ID[:], buf)
		buf = buf[IDSize:]
		b.Offset, b.Length, b.RawLength = uint32(off), uint32(l), uint32(raw)
		off += int64(l)
		if off > dataLen || off > 1<<32-1 {
			return nil, fmt.Errorf("%w: pack header: blobs extend past the data", ErrDamaged)
		}
		blobs = append(blobs, b)
	}
	if len(buf) != 0 || off != dataLen {
		return nil, fmt.Errorf("%w: pack header does not describe the pack's data (%d of %d bytes)", ErrDamaged, off, dataLen)
	}
	return blobs, nil
}

// packTrailer is the parsed fixed-size end of a pack.
type packTrailer struct {
	salt      [crypto.SaltSize]byte
	epoch     uint32
	headerLen uint32
}

func (t packTrailer) encode() []byte {
	b := make([]byte, packTrailerSize)
	copy(b, t.salt[:])
	binary.LittleEndian.PutUint32(b[crypto.SaltSize:], t.epoch)
	binary.LittleEndian.PutUint32(b[crypto.SaltSize+4:], t.headerLen)
	copy(b[crypto.SaltSize+8:], packMagic)
	return b
}

func decodePackTrailer(b []byte, fileSize int64) (packTrailer, error) {
	var t packTrailer
	if len(b) != packTrailerSize || string(b[crypto.SaltSize+8:]) != packMagic {
		return t, fmt.Errorf("%w: pack trailer missing (file truncated or not a pack)", ErrDamaged)
	}
	copy(t.salt[:], b)
	t.epoch = binary.LittleEndian.Uint32(b[crypto.SaltSize:])
	t.headerLen = binary.LittleEndian.Uint32(b[crypto.SaltSize+4:])
	if t.headerLen < crypto.Overhead || t.headerLen > maxHeaderLen || int64(t.headerLen)+packTrailerSize > fileSize {
		return t, fmt.Errorf("%w: pack header length %d impossible for a %d-byte pack", ErrDamaged, t.headerLen, fileSize)
	}
	return t, nil
}

func headerAD(t packTrailer) []byte {
	ad := make([]byte, 0, 32)
	ad = append(ad, "EVP1 header"...)
	ad = append(ad, t.salt[:]...)
	return binary.LittleEndian.AppendUint32(ad, t.epoch)
}
