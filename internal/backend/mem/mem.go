// Package mem owns an in-memory backend.Backend for tests and dry runs.
//
// It honours the whole backend contract (atomic saves, ranged loads,
// ErrNotExist, context cancellation) and copies bytes on every Save and
// Load, so callers can never alias stored content.
package mem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/einvault/einvault/internal/backend"
)

// Backend keeps files in memory. It is safe for concurrent use. The zero
// value is not usable; call New.
type Backend struct {
	location string

	mu    sync.RWMutex
	files map[backend.Handle][]byte
}

var instances atomic.Int64

// New returns an empty in-memory backend.
func New() *Backend {
	return &Backend{
		location: fmt.Sprintf("mem:%d", instances.Add(1)),
		files:    make(map[backend.Handle][]byte),
	}
}

// key validates h and returns the map key for it: the config file has a
// single key whatever name the handle carries.
func key(h backend.Handle) (backend.Handle, error) {
	if err := checkType(h.Type); err != nil {
		return backend.Handle{}, err
	}
	if err := h.Valid(); err != nil {
		return backend.Handle{}, err
	}
	if h.Type == backend.ConfigFile {
		return backend.Handle{Type: backend.ConfigFile, Name: "config"}, nil
	}
	return h, nil
}

func checkType(t backend.FileType) error {
	if !slices.Contains(backend.AllFileTypes, t) {
		return fmt.Errorf("invalid file type %q: want one of %v", t, backend.AllFileTypes)
	}
	return nil
}

// Location returns "mem:N", unique per backend.
func (b *Backend) Location() string { return b.location }

// Save stores a copy of the size bytes read from rd under h.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd io.Reader, size int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	k, err := key(h)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if size < 0 {
		return fmt.Errorf("save %v: negative size %d", h, size)
	}
	var buf bytes.Buffer
	buf.Grow(int(min(size, 64<<20)))
	n, err := buf.ReadFrom(io.LimitReader(rd, size+1))
	if err != nil {
		return fmt.Errorf("save %v: read source: %w", h, err)
	}
	if n != size {
		return fmt.Errorf("save %v: source yielded %d bytes, %d announced (source changed while being saved?)", h, n, size)
	}
	// The copy is complete: honour a cancellation that arrived meanwhile
	// rather than storing a file the caller gave up on.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	b.mu.Lock()
	b.files[k] = buf.Bytes()
	b.mu.Unlock()
	return nil
}

// Load returns a reader over a copy of length bytes at offset (0 = to the
// end).
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load %v: %w", h, err)
	}
	k, err := key(h)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("load %v: invalid range offset %d length %d", h, offset, length)
	}
	b.mu.RLock()
	data, ok := b.files[k]
	b.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("load %v from %s: %w", h, b.location, backend.ErrNotExist)
	}
	// Stored slices are never modified, only replaced, so reading data
	// outside the lock is safe.
	offset = min(offset, int64(len(data)))
	end := int64(len(data))
	if length > 0 {
		end = min(end, offset+length)
	}
	return io.NopCloser(bytes.NewReader(bytes.Clone(data[offset:end]))), nil
}

// Stat returns the size of h.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return backend.FileInfo{}, fmt.Errorf("stat %v: %w", h, err)
	}
	k, err := key(h)
	if err != nil {
		return backend.FileInfo{}, fmt.Errorf("stat: %w", err)
	}
	b.mu.RLock()
	data, ok := b.files[k]
	b.mu.RUnlock()
	if !ok {
		return backend.FileInfo{}, fmt.Errorf("stat %v in %s: %w", h, b.location, backend.ErrNotExist)
	}
	return backend.FileInfo{Name: k.Name, Size: int64(len(data))}, nil
}

// List calls fn for every file of type t. It works on a snapshot of the
// names taken at the start, so fn may call other methods of b.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %v: %w", t, err)
	}
	if err := checkType(t); err != nil {
		return fmt.Errorf("list: %w", err)
	}
	var infos []backend.FileInfo
	b.mu.RLock()
	for k, data := range b.files {
		if k.Type == t {
			infos = append(infos, backend.FileInfo{Name: k.Name, Size: int64(len(data))})
		}
	}
	b.mu.RUnlock()
	for _, fi := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list %v: %w", t, err)
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes h.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove %v: %w", h, err)
	}
	k, err := key(h)
	if err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.files[k]; !ok {
		return fmt.Errorf("remove %v from %s: %w", h, b.location, backend.ErrNotExist)
	}
	delete(b.files, k)
	return nil
}

// Close does nothing; the files stay available.
func (b *Backend) Close() error { return nil }

var _ backend.Backend = (*Backend)(nil)
