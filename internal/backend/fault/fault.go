// Package fault owns a test decorator that wraps any backend.Backend and
// injects failures: failed calls (transient or permanent), saves
// interrupted part-way, and loads that return truncated or bit-flipped
// data. It also counts calls per method.
//
// With no rules the decorator is transparent. The decorator never writes
// anything itself: an interrupted save hands the wrapped backend a reader
// that breaks off, so the wrapped backend's own atomicity is what is under
// test, and a conforming backend leaves no partial file.
package fault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/einvault/einvault/internal/backend"
)

// ErrInjected is the error of rules that do not name one.
var ErrInjected = errors.New("injected fault")

// Op names a Backend method.
type Op string

// The methods rules can apply to.
const (
	OpSave   Op = "Save"
	OpLoad   Op = "Load"
	OpStat   Op = "Stat"
	OpList   Op = "List"
	OpRemove Op = "Remove"
)

// Action is what a rule does to a matching call.
type Action int

const (
	// Fail returns Rule.Err instead of calling the wrapped backend.
	Fail Action = iota
	// Interrupt (Save only) passes the first Rule.At bytes of the source to
	// the wrapped backend, then makes the source fail with Rule.Err: a crash
	// or network cut in the middle of an upload. With At equal to the size
	// the whole content is read and the source then fails (a crash just
	// before the rename); with At beyond the size nothing is interrupted.
	Interrupt
	// Truncate (Load only) makes the file look as if it ended at offset
	// Rule.At. Stat and List still report the stored size.
	Truncate
	// Flip (Load only) inverts every bit of the byte at file offset Rule.At
	// whenever a load covers it.
	Flip
)

// Rule selects calls and says what happens to them.
type Rule struct {
	Op   Op               // method the rule applies to
	Type backend.FileType // "" matches every type
	Name string           // "" matches every name; ignored for List
	// Nth selects which matching call triggers the rule, counted from when
	// the rule was added: 0 means every matching call, n > 0 only the n-th.
	Nth    int
	Action Action
	// Err is returned by Fail and Interrupt; nil means ErrInjected. Wrap it
	// with backend.Transient for a fault a retry may cure.
	Err error
	// At is the byte offset used by Interrupt, Truncate and Flip.
	At int64
}

type rule struct {
	Rule
	seen int // matching calls so far
}

// Backend wraps another backend and injects faults. It is safe for
// concurrent use.
type Backend struct {
	be backend.Backend

	mu    sync.Mutex
	rules []*rule
	calls map[Op]int
}

var _ backend.Backend = (*Backend)(nil)

// New returns a transparent wrapper around be; add rules to inject faults.
func New(be backend.Backend) *Backend {
	return &Backend{be: be, calls: make(map[Op]int)}
}

// Unwrap returns the wrapped backend, for reaching optional methods such as
// FreeSpace.
func (b *Backend) Unwrap() backend.Backend { return b.be }

// Add installs r. Rules are checked in the order they were added.
func (b *Backend) Add(r Rule) {
	if r.Err == nil {
		r.Err = ErrInjected
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rules = append(b.rules, &rule{Rule: r})
}

// FailSave makes the nth Save (0 = every Save) of type t ("" = any type)
// return err.
func (b *Backend) FailSave(nth int, t backend.FileType, err error) {
	b.Add(Rule{Op: OpSave, Type: t, Nth: nth, Action: Fail, Err: err})
}

// FailLoad makes every Load of h return err.
func (b *Backend) FailLoad(h backend.Handle, err error) {
	b.Add(Rule{Op: OpLoad, Type: h.Type, Name: h.Name, Action: Fail, Err: err})
}

// InterruptSave makes the nth Save (0 = every Save) of type t ("" = any)
// break off after `after` bytes with err, as a crash or a cut connection
// would.
func (b *Backend) InterruptSave(nth int, t backend.FileType, after int64, err error) {
	b.Add(Rule{Op: OpSave, Type: t, Nth: nth, Action: Interrupt, At: after, Err: err})
}

// TruncateLoad makes every Load of h see the file cut at size bytes.
func (b *Backend) TruncateLoad(h backend.Handle, size int64) {
	b.Add(Rule{Op: OpLoad, Type: h.Type, Name: h.Name, Action: Truncate, At: size})
}

// FlipByte makes every Load of h that covers offset see that byte inverted.
func (b *Backend) FlipByte(h backend.Handle, offset int64) {
	b.Add(Rule{Op: OpLoad, Type: h.Type, Name: h.Name, Action: Flip, At: offset})
}

// Reset removes all rules and zeroes the call counters.
func (b *Backend) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rules = nil
	b.calls = make(map[Op]int)
}

// Calls returns how many times op was called, faulty or not.
func (b *Backend) Calls(op Op) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls[op]
}

// triggered counts the call and returns the rules it triggers, in order.
func (b *Backend) triggered(op Op, h backend.Handle) []Rule {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls[op]++
	var out []Rule
	for _, r := range b.rules {
		if r.Op != op || (r.Type != "" && r.Type != h.Type) || (op != OpList && r.Name != "" && r.Name != h.Name) {
			continue
		}
		r.seen++
		if r.Nth == 0 || r.Nth == r.seen {
			out = append(out, r.Rule)
		}
	}
	return out
}

func failure(op Op, h backend.Handle, rs []Rule) error {
	for _, r := range rs {
		if r.Action == Fail {
			return fmt.Errorf("%s %v: injected: %w", op, h, r.Err)
		}
	}
	return nil
}

// Location returns the wrapped backend's location.
func (b *Backend) Location() string { return b.be.Location() }

// Save applies Fail and Interrupt rules, then saves through the wrapped
// backend.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd io.Reader, size int64) error {
	rs := b.triggered(OpSave, h)
	if err := failure(OpSave, h, rs); err != nil {
		return err
	}
	for _, r := range rs {
		if r.Action == Interrupt {
			rd = &interruptReader{r: rd, left: r.At, err: r.Err}
			break
		}
	}
	return b.be.Save(ctx, h, rd, size)
}

type interruptReader struct {
	r    io.Reader
	left int64
	err  error
}

func (r *interruptReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, r.err
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.r.Read(p)
	r.left -= int64(n)
	return n, err
}

// Load applies Fail, Truncate and Flip rules to a load through the wrapped
// backend.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64) (io.ReadCloser, error) {
	rs := b.triggered(OpLoad, h)
	if err := failure(OpLoad, h, rs); err != nil {
		return nil, err
	}
	rd, err := b.be.Load(ctx, h, offset, length)
	if err != nil {
		return nil, err
	}
	var damage []Rule
	for _, r := range rs {
		if r.Action == Truncate || r.Action == Flip {
			damage = append(damage, r)
		}
	}
	if len(damage) == 0 {
		return rd, nil
	}
	return &damageReader{rc: rd, pos: offset, rules: damage}, nil
}

// damageReader truncates and flips bytes by their offset in the file.
type damageReader struct {
	rc    io.ReadCloser
	pos   int64 // file offset of the next byte
	rules []Rule
}

func (d *damageReader) Read(p []byte) (int, error) {
	for _, r := range d.rules {
		if r.Action == Truncate {
			if d.pos >= r.At {
				return 0, io.EOF
			}
			if int64(len(p)) > r.At-d.pos {
				p = p[:r.At-d.pos]
			}
		}
	}
	n, err := d.rc.Read(p)
	for _, r := range d.rules {
		if r.Action == Flip && r.At >= d.pos && r.At < d.pos+int64(n) {
			p[r.At-d.pos] ^= 0xff
		}
	}
	d.pos += int64(n)
	return n, err
}

func (d *damageReader) Close() error { return d.rc.Close() }

// Stat applies Fail rules, then stats through the wrapped backend.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := failure(OpStat, h, b.triggered(OpStat, h)); err != nil {
		return backend.FileInfo{}, err
	}
	return b.be.Stat(ctx, h)
}

// List applies Fail rules (matched by type only), then lists through the
// wrapped backend.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	h := backend.Handle{Type: t}
	if err := failure(OpList, h, b.triggered(OpList, h)); err != nil {
		return err
	}
	return b.be.List(ctx, t, fn)
}

// Remove applies Fail rules, then removes through the wrapped backend.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := failure(OpRemove, h, b.triggered(OpRemove, h)); err != nil {
		return err
	}
	return b.be.Remove(ctx, h)
}

// Close closes the wrapped backend.
func (b *Backend) Close() error { return b.be.Close() }
