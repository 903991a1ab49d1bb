package repo

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/klauspost/compress/s2"
)

// FuzzDecodeWALPayload feeds the decoder of S2-compressed WAL payloads
// (what OpenWAL runs once a file authenticated) arbitrary bytes: it must
// return an error or content, never panic or exceed walMaxSize, and a
// valid stream it accepts must round-trip.
func FuzzDecodeWALPayload(f *testing.F) {
	f.Add(packS2([]byte(walMagic+"\x18\x00000000010000000000000001"), bytes.Repeat([]byte("wal record "), 1000)))
	f.Add(packS2([]byte(walMagic + "\x18\x00000000010000000000000001")))
	f.Add([]byte{})
	f.Add([]byte("\x05\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		plain, err := decodeS2(data)
		if err != nil {
			return
		}
		if len(plain) > walMaxSize {
			t.Fatalf("decoded %d bytes, more than walMaxSize", len(plain))
		}
		content, err := walContent("000000010000000000000001", plain)
		if err != nil {
			return
		}
		back, err := decodeS2(packS2(plain[:len(plain)-len(content)], content))
		if err != nil || !bytes.Equal(back, plain) {
			t.Fatalf("re-encoded payload does not round-trip: %v", err)
		}
	})
}

// packS2 builds a flagS2 payload from blocks.
func packS2(blocks ...[]byte) []byte {
	var out []byte
	for _, b := range blocks {
		e := s2.Encode(nil, b)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(e)))
		out = append(out, e...)
	}
	return out
}
