package replica

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/zeebo/blake3"
)

// Member is a copy together with its opened storage.
type Member struct {
	Copy
	Backend backend.Backend
}

// ReadOrder returns members in the order reads try them: local paths
// first, then by Order (stable, so equal orders keep the given order).
func ReadOrder(ms []Member) []Member {
	out := slices.Clone(ms)
	slices.SortStableFunc(out, func(a, b Member) int {
		la, lb := IsLocal(a.Location), IsLocal(b.Location)
		if la != lb {
			if la {
				return -1
			}
			return 1
		}
		return a.Order - b.Order
	})
	return out
}

// ClockSkewer is implemented by backends that can tell how far the
// server's clock is from ours (S3 signs requests with the time and
// refuses them beyond about 15 minutes).
type ClockSkewer interface {
	ClockSkew(ctx context.Context) (time.Duration, error)
}

// unwrapper is implemented by decorators (retry, fault, limits).
type unwrapper interface{ Unwrap() backend.Backend }

// find returns the first backend in the decorator chain of be that
// implements T.
func find[T any](be backend.Backend) (T, bool) {
	for i := 0; i < 16 && be != nil; i++ {
		if t, ok := be.(T); ok {
			return t, true
		}
		u, ok := be.(unwrapper)
		if !ok {
			break
		}
		be = u.Unwrap()
	}
	var zero T
	return zero, false
}

// IsID reports whether name is a content address (64 lowercase hex
// characters), the name of every repository file but config.
func IsID(name string) bool {
	if len(name) != 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ErrMismatch marks bytes that do not hash to the name they are stored
// under: bit rot, truncation or tampering.
var ErrMismatch = errors.New("content does not match its name")

// verifyingReader passes bytes through and fails, on the read that
// completes size bytes, when they do not hash to the expected name (or
// when the source yields a different number of bytes). A backend's Save
// then fails and, by the backend contract, stores nothing.
type verifyingReader struct {
	rd   io.Reader
	h    *blake3.Hasher
	want string // "" skips the hash check
	size int64
	n    int64
	err  error // the error this reader returned, if any (not EOF)
}

func newVerifyingReader(rd io.Reader, name string, size int64) *verifyingReader {
	v := &verifyingReader{rd: rd, size: size}
	if IsID(name) {
		v.h, v.want = blake3.New(), name
	}
	return v
}

// reader returns v as the reader to hand to a backend's Save: when the
// source can seek, a reader that can also seek back to its start (the
// retry decorator then re-reads the source for another attempt instead
// of holding the whole file in memory).
func (v *verifyingReader) reader() io.Reader {
	if s, ok := v.rd.(io.Seeker); ok {
		if start, err := s.Seek(0, io.SeekCurrent); err == nil {
			return &seekingVerifier{v: v, s: s, start: start}
		}
	}
	return v
}

// seekingVerifier is a verifyingReader over a seekable source. It seeks
// only to its current position (to tell it) and back to its start, where
// verification starts over.
type seekingVerifier struct {
	v     *verifyingReader
	s     io.Seeker
	start int64
}

func (sv *seekingVerifier) Read(p []byte) (int, error) { return sv.v.Read(p) }

func (sv *seekingVerifier) Seek(offset int64, whence int) (int64, error) {
	switch {
	case whence == io.SeekCurrent && offset == 0:
		return sv.v.n, nil
	case whence == io.SeekStart && offset == 0:
		if _, err := sv.s.Seek(sv.start, io.SeekStart); err != nil {
			return 0, err
		}
		v := sv.v
		v.n, v.err = 0, nil
		if v.h != nil {
			v.h.Reset()
		}
		return 0, nil
	}
	return 0, fmt.Errorf("verifying reader: cannot seek to %d from %d", offset, whence)
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.read(p)
	if err != nil && err != io.EOF {
		v.err = err
	}
	return n, err
}

func (v *verifyingReader) read(p []byte) (int, error) {
	if v.n >= v.size {
		// Anything beyond the expected size is an error, not data.
		var one [1]byte
		if k, _ := v.rd.Read(one[:]); k > 0 {
			return 0, fmt.Errorf("%w: longer than the %d bytes listed", ErrMismatch, v.size)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > v.size-v.n {
		p = p[:v.size-v.n]
	}
	n, err := v.rd.Read(p)
	v.n += int64(n)
	if v.h != nil {
		_, _ = v.h.Write(p[:n])
	}
	if v.n == v.size {
		if v.h != nil {
			if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
				return n, fmt.Errorf("%w: BLAKE3 is %s…", ErrMismatch, got[:12])
			}
		}
		return n, nil
	}
	if err == io.EOF {
		return n, fmt.Errorf("%w: only %d of %d bytes", ErrMismatch, v.n, v.size)
	}
	return n, err
}

// hashOK reports whether data hashes to name (always true for names that
// are not content addresses, such as config).
func hashOK(name string, data []byte) bool {
	if !IsID(name) {
		return true
	}
	sum := blake3.Sum256(data)
	return hex.EncodeToString(sum[:]) == name
}

// oneLine flattens an error message to one line.
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}
