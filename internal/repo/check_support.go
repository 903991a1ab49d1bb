package repo

import "github.com/einvault/einvault/internal/crypto"

// PackFileSize returns the exact size of a pack file holding blobs (in
// file order, as a pack header or an index file lists them): the sealed
// blobs, the sealed header and the trailer. A stored pack of any other
// size is truncated or damaged.
func PackFileSize(blobs []PackedBlob) int64 {
	var data int64
	for _, b := range blobs {
		data += int64(b.Length)
	}
	return data + int64(len(encodePackHeader(blobs))) + crypto.Overhead + packTrailerSize
}
