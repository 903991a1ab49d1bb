package pg

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// TestEarlyReader: the stream comes through whole and in order whether
// the first Read comes before, during or after the read-ahead, and
// whatever the bound; a source error is passed on after the data.
func TestEarlyReader(t *testing.T) {
	data := make([]byte, 5<<20+123)
	for i := range data {
		data[i] = byte(i * 7)
	}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name  string
		max   int
		wait  time.Duration
		fail  error
		chunk int
	}{
		{"read at once", 64 << 20, 0, nil, 4096},
		{"after read-ahead", 64 << 20, 50 * time.Millisecond, nil, 1 << 20},
		{"bound smaller than stream", 2 << 20, 50 * time.Millisecond, nil, 100000},
		{"zero bound", 0, 10 * time.Millisecond, nil, 33},
		{"source error after data", 64 << 20, 20 * time.Millisecond, boom, 65536},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(data)
			if tc.fail != nil {
				src = io.MultiReader(src, &errReader{tc.fail})
			}
			e := newEarlyReader(&slowReader{r: src, n: 300000}, tc.max)
			time.Sleep(tc.wait)
			var got bytes.Buffer
			buf := make([]byte, tc.chunk)
			var err error
			for {
				var n int
				n, err = e.Read(buf)
				got.Write(buf[:n])
				if err != nil {
					break
				}
			}
			want := error(io.EOF)
			if tc.fail != nil {
				want = tc.fail
			}
			if !errors.Is(err, want) {
				t.Fatalf("error %v, want %v", err, want)
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("got %d bytes, want %d (or content differs)", got.Len(), len(data))
			}
		})
	}
}

type errReader struct{ err error }

func (e *errReader) Read([]byte) (int, error) { return 0, e.err }

// slowReader returns at most n bytes per Read, like a pipe.
type slowReader struct {
	r io.Reader
	n int
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(p) > s.n {
		p = p[:s.n]
	}
	return s.r.Read(p)
}
