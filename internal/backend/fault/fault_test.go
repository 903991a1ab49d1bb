package fault_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/backendtest"
	"github.com/einvault/einvault/internal/backend/fault"
	"github.com/einvault/einvault/internal/backend/local"
	"github.com/einvault/einvault/internal/backend/mem"
)

func TestConformance(t *testing.T) {
	backendtest.RunConformance(t, func(t *testing.T) backend.Backend { return fault.New(mem.New()) })
}

var (
	pack1 = backend.Handle{Type: backend.PackFile, Name: "aa01"}
	pack2 = backend.Handle{Type: backend.PackFile, Name: "bb02"}
	idx1  = backend.Handle{Type: backend.IndexFile, Name: "cc03"}
)

func saveStr(ctx context.Context, be backend.Backend, h backend.Handle, s string) error {
	return be.Save(ctx, h, strings.NewReader(s), int64(len(s)))
}

func TestFailSave(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	tests := []struct {
		name      string
		nth       int
		ft        backend.FileType
		err       error
		seq       []backend.Handle
		wantFail  []bool
		transient bool
	}{
		{"second save of any type", 2, "", boom, []backend.Handle{pack1, idx1, pack2}, []bool{false, true, false}, false},
		{"first index save", 1, backend.IndexFile, boom, []backend.Handle{pack1, pack2, idx1}, []bool{false, false, true}, false},
		{"every pack save, transient", 0, backend.PackFile, backend.Transient(boom), []backend.Handle{pack1, idx1, pack2}, []bool{true, false, true}, true},
		{"default error", 1, "", nil, []backend.Handle{pack1}, []bool{true}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be := fault.New(mem.New())
			be.FailSave(tc.nth, tc.ft, tc.err)
			for i, h := range tc.seq {
				err := saveStr(ctx, be, h, "data")
				if (err != nil) != tc.wantFail[i] {
					t.Fatalf("save #%d (%v): err %v, want failure %v", i+1, h, err, tc.wantFail[i])
				}
				if err == nil {
					continue
				}
				want := tc.err
				if want == nil {
					want = fault.ErrInjected
				}
				if !errors.Is(err, want) {
					t.Errorf("error %v does not wrap %v", err, want)
				}
				if backend.IsTransient(err) != tc.transient {
					t.Errorf("IsTransient(%v) = %v, want %v", err, !tc.transient, tc.transient)
				}
				if _, serr := be.Stat(ctx, h); !errors.Is(serr, backend.ErrNotExist) {
					t.Errorf("failed save of %v left a file: %v", h, serr)
				}
			}
			if got := be.Calls(fault.OpSave); got != len(tc.seq) {
				t.Errorf("Calls(Save) = %d, want %d", got, len(tc.seq))
			}
		})
	}
}

func TestFailOtherOps(t *testing.T) {
	ctx := context.Background()
	be := fault.New(mem.New())
	for _, h := range []backend.Handle{pack1, pack2, idx1} {
		if err := saveStr(ctx, be, h, "data"); err != nil {
			t.Fatal(err)
		}
	}
	be.FailLoad(pack1, backend.ErrNotExist)
	be.Add(fault.Rule{Op: fault.OpStat, Name: pack2.Name})
	be.Add(fault.Rule{Op: fault.OpList, Type: backend.IndexFile, Nth: 1})
	be.Add(fault.Rule{Op: fault.OpRemove, Type: backend.IndexFile})

	for range 2 {
		if _, err := backend.LoadAll(ctx, be, pack1); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("Load %v: %v, want the injected ErrNotExist", pack1, err)
		}
	}
	if _, err := backend.LoadAll(ctx, be, pack2); err != nil {
		t.Errorf("Load %v: %v", pack2, err)
	}
	if _, err := be.Stat(ctx, pack2); !errors.Is(err, fault.ErrInjected) {
		t.Errorf("Stat %v: %v", pack2, err)
	}
	if _, err := be.Stat(ctx, pack1); err != nil {
		t.Errorf("Stat %v: %v", pack1, err)
	}
	nop := func(backend.FileInfo) error { return nil }
	if err := be.List(ctx, backend.IndexFile, nop); !errors.Is(err, fault.ErrInjected) {
		t.Errorf("first List index: %v", err)
	}
	if err := be.List(ctx, backend.IndexFile, nop); err != nil {
		t.Errorf("second List index: %v", err)
	}
	if err := be.List(ctx, backend.PackFile, nop); err != nil {
		t.Errorf("List data: %v", err)
	}
	if err := be.Remove(ctx, idx1); !errors.Is(err, fault.ErrInjected) {
		t.Errorf("Remove %v: %v", idx1, err)
	}
	if err := be.Remove(ctx, pack1); err != nil {
		t.Errorf("Remove %v: %v", pack1, err)
	}
	for op, want := range map[fault.Op]int{fault.OpLoad: 3, fault.OpStat: 2, fault.OpList: 3, fault.OpRemove: 2, fault.OpSave: 3} {
		if got := be.Calls(op); got != want {
			t.Errorf("Calls(%s) = %d, want %d", op, got, want)
		}
	}
	be.Reset()
	if _, err := be.Stat(ctx, pack2); err != nil {
		t.Errorf("Stat after Reset: %v", err)
	}
	if got := be.Calls(fault.OpStat); got != 1 {
		t.Errorf("Calls after Reset = %d, want 1", got)
	}
}

func TestDamageLoad(t *testing.T) {
	ctx := context.Background()
	data := []byte("0123456789abcdefghij")
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0xff
		return c
	}
	tests := []struct {
		name           string
		setup          func(*fault.Backend)
		offset, length int64
		want           []byte
	}{
		{"truncate whole", func(b *fault.Backend) { b.TruncateLoad(pack1, 5) }, 0, 0, data[:5]},
		{"truncate range across cut", func(b *fault.Backend) { b.TruncateLoad(pack1, 5) }, 3, 10, data[3:5]},
		{"truncate range after cut", func(b *fault.Backend) { b.TruncateLoad(pack1, 5) }, 8, 4, nil},
		{"truncate beyond end", func(b *fault.Backend) { b.TruncateLoad(pack1, 100) }, 0, 0, data},
		{"flip whole", func(b *fault.Backend) { b.FlipByte(pack1, 7) }, 0, 0, flip(data, 7)},
		{"flip in range", func(b *fault.Backend) { b.FlipByte(pack1, 7) }, 5, 5, flip(data, 7)[5:10]},
		{"flip outside range", func(b *fault.Backend) { b.FlipByte(pack1, 7) }, 10, 5, data[10:15]},
		{"flip and truncate", func(b *fault.Backend) { b.FlipByte(pack1, 1); b.TruncateLoad(pack1, 3) }, 0, 0, flip(data, 1)[:3]},
		{"other file untouched", func(b *fault.Backend) { b.FlipByte(pack2, 1) }, 0, 0, data},
		{"only second load", func(b *fault.Backend) {
			b.Add(fault.Rule{Op: fault.OpLoad, Nth: 2, Action: fault.Flip, At: 0})
		}, 0, 0, data},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be := fault.New(mem.New())
			if err := be.Save(ctx, pack1, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
			tc.setup(be)
			rd, err := be.Load(ctx, pack1, tc.offset, tc.length)
			if err != nil {
				t.Fatal(err)
			}
			// Read one byte at a time to exercise the offset bookkeeping.
			got, err := io.ReadAll(io.LimitReader(oneByteReader{rd}, 1000))
			rd.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if fi, err := be.Stat(ctx, pack1); err != nil || fi.Size != int64(len(data)) {
				t.Errorf("Stat: %+v, %v; damage must only affect Load", fi, err)
			}
		})
	}
}

type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

// TestInterruptSaveLocal cuts saves to a real directory at several points
// and checks that the local backend leaves neither the file nor a
// temporary file behind.
func TestInterruptSaveLocal(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "repo")
	lb, err := local.Create(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 100000)
	cut := errors.New("connection cut")
	for _, after := range []int64{0, 1, 50000, int64(len(data))} {
		be := fault.New(lb)
		be.InterruptSave(1, backend.PackFile, after, backend.Transient(cut))
		err := be.Save(ctx, pack1, bytes.NewReader(data), int64(len(data)))
		if !errors.Is(err, cut) || !backend.IsTransient(err) {
			t.Errorf("after %d bytes: %v, want the transient injected error", after, err)
		}
		var names []string
		if err := lb.List(ctx, backend.PackFile, func(fi backend.FileInfo) error {
			names = append(names, fi.Name)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(names) != 0 {
			t.Errorf("after %d bytes: interrupted save left %v", after, names)
		}
		// The rule fired once; the next save goes through.
		if err := be.Save(ctx, pack2, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Errorf("second save: %v", err)
		}
		if err := lb.Remove(ctx, pack2); err != nil {
			t.Fatal(err)
		}
	}
	if got := fault.New(lb).Unwrap(); got != backend.Backend(lb) {
		t.Errorf("Unwrap returned %v", got)
	}
}

func TestConcurrentRules(t *testing.T) {
	ctx := context.Background()
	be := fault.New(mem.New())
	be.FailSave(50, "", nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for w := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				h := backend.Handle{Type: backend.PackFile, Name: string(rune('a'+w)) + string(rune('a'+i)) + "x"}
				if err := saveStr(ctx, be, h, "d"); err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
				}
				be.Calls(fault.OpSave)
			}
		}()
	}
	wg.Wait()
	if failed != 1 || be.Calls(fault.OpSave) != 100 {
		t.Errorf("%d saves failed out of %d, want exactly 1", failed, be.Calls(fault.OpSave))
	}
}
