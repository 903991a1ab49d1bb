package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/einvault/einvault/internal/backend"
)

// Event reports a read that one copy could not serve.
type Event struct {
	File   string `json:"file"`        // e.g. "data/3f2a…"
	Failed string `json:"failed_copy"` // copy that was missing or damaged
	Reason string `json:"reason"`
	// Served names the copy that served the file instead; empty when no
	// copy held a valid version.
	Served string `json:"served_by,omitempty"`
}

func (e Event) String() string {
	if e.Served == "" {
		return fmt.Sprintf("%s: copy %q: %s; no other copy holds a valid version", e.File, e.Failed, e.Reason)
	}
	return fmt.Sprintf("%s: copy %q: %s; read from copy %q instead", e.File, e.Failed, e.Reason, e.Served)
}

// Set is a read-mostly backend over the members of a copy set: every
// read is served by the first member (in the given order) that holds a
// valid version of the file; a member that is missing the file, returns
// a short file, fails, or (for whole-file loads and ReloadRange) holds
// bytes that do not hash to the name is skipped, and the event recorded.
// Writes go to the first member only.
//
// Set implements ReloadRange, the hook package repo calls when a blob
// read from a ranged load fails authentication: the range is then served
// by the first member whose whole file verifies.
type Set struct {
	ms      []Member
	onEvent func(Event)

	mu       sync.Mutex
	bad      map[backend.Handle]map[int]bool
	verified map[backend.Handle]int
	events   []Event
}

var _ backend.Backend = (*Set)(nil)

// NewSet returns a Set over ms (at least one), tried in the given order.
// onEvent, if not nil, is called for every event as it happens.
func NewSet(ms []Member, onEvent func(Event)) *Set {
	return &Set{ms: ms, onEvent: onEvent, bad: map[backend.Handle]map[int]bool{}, verified: map[backend.Handle]int{}}
}

// Members returns the members in read order.
func (s *Set) Members() []Member { return s.ms }

// Events returns what happened so far.
func (s *Set) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Location is the first member's.
func (s *Set) Location() string { return s.ms[0].Backend.Location() }

// Unwrap returns the first member's backend (for FreeSpace and friends).
func (s *Set) Unwrap() backend.Backend { return s.ms[0].Backend }

// Save writes to the first member.
func (s *Set) Save(ctx context.Context, h backend.Handle, rd io.Reader, size int64) error {
	return s.ms[0].Backend.Save(ctx, h, rd, size)
}

// Remove removes from the first member.
func (s *Set) Remove(ctx context.Context, h backend.Handle) error {
	return s.ms[0].Backend.Remove(ctx, h)
}

// Close closes every member.
func (s *Set) Close() error {
	var errs []error
	for _, m := range s.ms {
		errs = append(errs, m.Backend.Close())
	}
	return errors.Join(errs...)
}

// candidates returns the members not known to be bad for h.
func (s *Set) candidates(h backend.Handle) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for i := range s.ms {
		if !s.bad[h][i] {
			out = append(out, i)
		}
	}
	return out
}

// fail records that member i could not serve h.
func (s *Set) fail(h backend.Handle, i int, reason error, served int) {
	s.mu.Lock()
	if s.bad[h] == nil {
		s.bad[h] = map[int]bool{}
	}
	s.bad[h][i] = true
	ev := Event{File: h.String(), Failed: s.ms[i].Name, Reason: oneLine(reason)}
	if served >= 0 {
		ev.Served = s.ms[served].Name
	}
	s.events = append(s.events, ev)
	s.mu.Unlock()
	if s.onEvent != nil {
		s.onEvent(ev)
	}
}

// failed collects failures until the serving member is known.
type failed struct {
	i   int
	err error
}

func (s *Set) report(h backend.Handle, fs []failed, served int) {
	for _, f := range fs {
		s.fail(h, f.i, f.err, served)
	}
}

// Stat returns the first member's answer that is not an error.
func (s *Set) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	var first error
	for _, i := range s.candidates(h) {
		fi, err := s.ms[i].Backend.Stat(ctx, h)
		if err == nil {
			return fi, nil
		}
		if first == nil || (errors.Is(first, backend.ErrNotExist) && !errors.Is(err, backend.ErrNotExist)) {
			first = err
		}
		if ctx.Err() != nil {
			return backend.FileInfo{}, ctx.Err()
		}
	}
	if first == nil {
		first = fmt.Errorf("%v: %w in any copy", h, backend.ErrNotExist)
	}
	return backend.FileInfo{}, first
}

// List lists the union of the members' files. A member that cannot be
// listed is skipped as long as one can.
func (s *Set) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	seen := map[string]bool{}
	var errs []error
	ok := false
	for _, m := range s.ms {
		var batch []backend.FileInfo
		err := m.Backend.List(ctx, t, func(fi backend.FileInfo) error {
			if !seen[fi.Name] {
				seen[fi.Name] = true
				batch = append(batch, fi)
			}
			return nil
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, fmt.Errorf("copy %q: %w", m.Name, err))
			for _, fi := range batch {
				delete(seen, fi.Name)
			}
			continue
		}
		ok = true
		for _, fi := range batch {
			if err := fn(fi); err != nil {
				return err
			}
		}
	}
	if !ok {
		return errors.Join(errs...)
	}
	return nil
}

// Load serves h from the first member that has it. Whole-file loads of
// content-addressed files are verified against the name; ranged loads
// fail over to the next member on an error or a short read.
func (s *Set) Load(ctx context.Context, h backend.Handle, offset, length int64) (io.ReadCloser, error) {
	if offset == 0 && length == 0 && IsID(h.Name) {
		return s.loadWhole(ctx, h)
	}
	fr := &failoverReader{s: s, ctx: ctx, h: h, off: offset, length: length, cands: s.candidates(h)}
	if err := fr.next(nil); err != nil {
		return nil, err
	}
	return fr, nil
}

func (s *Set) loadWhole(ctx context.Context, h backend.Handle) (io.ReadCloser, error) {
	var fs []failed
	var first error
	for _, i := range s.candidates(h) {
		data, err := backend.LoadAll(ctx, s.ms[i].Backend, h)
		if err == nil && !hashOK(h.Name, data) {
			err = fmt.Errorf("%w (bit rot or tampering)", ErrMismatch)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if first == nil || errors.Is(first, backend.ErrNotExist) {
				first = err
			}
			fs = append(fs, failed{i, err})
			continue
		}
		s.report(h, fs, i)
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	s.report(h, fs, -1)
	if first == nil {
		first = fmt.Errorf("%v: %w in any copy", h, backend.ErrNotExist)
	}
	return nil, first
}

// ReloadRange returns length bytes at offset of h from the first member
// whose whole file hashes to its name. Package repo calls it when bytes
// from an earlier Load failed authentication.
func (s *Set) ReloadRange(ctx context.Context, h backend.Handle, offset, length int64) ([]byte, string, error) {
	s.mu.Lock()
	i, ok := s.verified[h]
	s.mu.Unlock()
	if !ok {
		var fs []failed
		i = -1
		for _, c := range s.candidates(h) {
			data, err := backend.LoadAll(ctx, s.ms[c].Backend, h)
			if err == nil && !hashOK(h.Name, data) {
				err = fmt.Errorf("%w (bit rot or tampering)", ErrMismatch)
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil, "", ctx.Err()
				}
				fs = append(fs, failed{c, err})
				continue
			}
			i = c
			break
		}
		s.report(h, fs, i)
		if i < 0 {
			return nil, "", fmt.Errorf("%v: no copy holds a version that hashes to its name", h)
		}
		s.mu.Lock()
		s.verified[h] = i
		s.mu.Unlock()
	}
	buf, err := backend.LoadRange(ctx, s.ms[i].Backend, h, offset, length, nil)
	if err != nil {
		return nil, "", err
	}
	return buf, s.ms[i].Name, nil
}

// failoverReader reads a range from one member and continues from the
// next member where the first broke off.
type failoverReader struct {
	s      *Set
	ctx    context.Context
	h      backend.Handle
	off    int64
	length int64 // 0: to the end
	n      int64 // bytes delivered
	cands  []int
	cur    io.ReadCloser
	curIdx int
	fails  []failed
}

// next opens the range at the current position on the next candidate.
func (fr *failoverReader) next(cause error) error {
	if fr.cur != nil {
		_ = fr.cur.Close()
		fr.cur = nil
		fr.fails = append(fr.fails, failed{fr.curIdx, cause})
	}
	first := cause
	for len(fr.cands) > 0 {
		i := fr.cands[0]
		fr.cands = fr.cands[1:]
		l := int64(0)
		if fr.length > 0 {
			l = fr.length - fr.n
		}
		rd, err := fr.s.ms[i].Backend.Load(fr.ctx, fr.h, fr.off+fr.n, l)
		if err != nil {
			if fr.ctx.Err() != nil {
				return fr.ctx.Err()
			}
			if first == nil || (errors.Is(first, backend.ErrNotExist) && !errors.Is(err, backend.ErrNotExist)) {
				first = err
			}
			fr.fails = append(fr.fails, failed{i, err})
			continue
		}
		fr.cur, fr.curIdx = rd, i
		if len(fr.fails) > 0 {
			fr.s.report(fr.h, fr.fails, i)
			fr.fails = nil
		}
		return nil
	}
	fr.s.report(fr.h, fr.fails, -1)
	fr.fails = nil
	if first == nil {
		first = fmt.Errorf("%v: %w in any copy", fr.h, backend.ErrNotExist)
	}
	return first
}

func (fr *failoverReader) Read(p []byte) (int, error) {
	for {
		if fr.cur == nil {
			return 0, io.ErrUnexpectedEOF
		}
		if fr.length > 0 && int64(len(p)) > fr.length-fr.n {
			p = p[:fr.length-fr.n]
		}
		if len(p) == 0 && fr.length > 0 && fr.n >= fr.length {
			return 0, io.EOF
		}
		n, err := fr.cur.Read(p)
		fr.n += int64(n)
		if err == nil || n > 0 {
			if err != nil && err != io.EOF {
				// Deliver what arrived; the error comes back on the next call.
				return n, nil
			}
			if err == io.EOF && (fr.length == 0 || fr.n >= fr.length) {
				return n, io.EOF
			}
			return n, nil
		}
		if err == io.EOF && (fr.length == 0 || fr.n >= fr.length) {
			return 0, io.EOF
		}
		cause := err
		if err == io.EOF {
			cause = fmt.Errorf("truncated: the file ends %d bytes into a %d-byte range", fr.n, fr.length)
		}
		if fr.ctx.Err() != nil {
			return 0, fr.ctx.Err()
		}
		if nerr := fr.next(cause); nerr != nil {
			return 0, cause
		}
	}
}

func (fr *failoverReader) Close() error {
	if fr.cur == nil {
		return nil
	}
	return fr.cur.Close()
}
