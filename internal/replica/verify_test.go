package replica

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/zeebo/blake3"
)

func TestVerifyingReaderSeeksBackAndVerifiesAgain(t *testing.T) {
	data := bytes.Repeat([]byte("invoice "), 5000)
	sum := blake3.Sum256(data)
	name := hex.EncodeToString(sum[:])
	cases := []struct {
		name     string
		src      io.Reader
		seekable bool
		wantErr  error
	}{
		{"seekable good", bytes.NewReader(data), true, nil},
		{"plain good", struct{ io.Reader }{bytes.NewReader(data)}, false, nil},
		{"seekable damaged", bytes.NewReader(append([]byte("X"), data[1:]...)), true, ErrMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := newVerifyingReader(c.src, name, int64(len(data)))
			rd := v.reader()
			s, ok := rd.(io.Seeker)
			if ok != c.seekable {
				t.Fatalf("seekable = %v, want %v", ok, c.seekable)
			}
			if ok {
				// A first attempt that stops half-way, then a rewind.
				if _, err := io.CopyN(io.Discard, rd, int64(len(data)/2)); err != nil {
					t.Fatal(err)
				}
				if pos, err := s.Seek(0, io.SeekCurrent); err != nil || pos != int64(len(data)/2) {
					t.Fatalf("Seek(0, current) = %d, %v", pos, err)
				}
				if _, err := s.Seek(0, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				if _, err := s.Seek(5, io.SeekStart); err == nil {
					t.Fatal("seek to another offset succeeded")
				}
			}
			got, err := io.ReadAll(rd)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err = %v, want %v", err, c.wantErr)
			}
			if err == nil && !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, want the %d of the source", len(got), len(data))
			}
			if c.wantErr != nil && (v.err == nil || !strings.Contains(v.err.Error(), "BLAKE3")) {
				t.Fatalf("v.err = %v, want the hash mismatch recorded", v.err)
			}
		})
	}
}
