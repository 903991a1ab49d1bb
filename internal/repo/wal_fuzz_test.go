package repo

import (
	"bytes"
	"testing"

	"github.com/klauspost/compress/s2"
)

// FuzzDecodeWALPayload feeds the decoder of S2-compressed WAL payloads
// (what OpenWAL runs once a file authenticated) arbitrary bytes: it must
// return an error or content, never panic or exceed walMaxSize, and a
// valid stream it accepts must round-trip.
func FuzzDecodeWALPayload(f *testing.F) {
	var w bytes.Buffer
	enc := s2.NewWriter(&w, s2.WriterBlockSize(walBlockSize))
	_, _ = enc.Write([]byte(walMagic + "\x18\x00000000010000000000000001"))
	_ = enc.EncodeBuffer(bytes.Repeat([]byte("wal record "), 1000))
	_ = enc.Close()
	f.Add(w.Bytes())
	f.Add([]byte{})
	f.Add([]byte("\xff\x06\x00\x00S2sTwO"))
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
		var again bytes.Buffer
		enc := s2.NewWriter(&again)
		_ = enc.EncodeBuffer(plain)
		_ = enc.Close()
		back, err := decodeS2(again.Bytes())
		if err != nil || !bytes.Equal(back, plain) {
			t.Fatalf("re-encoded payload does not round-trip: %v", err)
		}
		_ = content
	})
}
