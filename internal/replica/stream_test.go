package replica

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/fault"
	"github.com/einvault/einvault/internal/backend/local"
	"github.com/einvault/einvault/internal/backend/mem"
	"github.com/zeebo/blake3"
)

func packData(i int) ([]byte, backend.Handle) {
	data := []byte(fmt.Sprintf("pack-%d-%s", i, bytes.Repeat([]byte{byte(i)}, 3000+i)))
	sum := blake3.Sum256(data)
	return data, backend.Handle{Type: backend.PackFile, Name: hex.EncodeToString(sum[:])}
}

func TestStreamerSendsPacksOnly(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"mem primary (Save)", "local primary (TempFile, CommitTemp)"} {
		t.Run(kind, func(t *testing.T) {
			var primary backend.Backend = mem.New()
			if kind != "mem primary (Save)" {
				lb, err := local.Create(ctx, t.TempDir()+"/repo")
				if err != nil {
					t.Fatal(err)
				}
				primary = lb
			}
			good := mem.New()
			broken := fault.New(mem.New())
			broken.FailSave(2, backend.PackFile, nil) // the second pack fails there
			s := NewStreamer(ctx, member("self", primary, 0), []Member{member("good", good, 1), member("broken", broken, 2)}, 2, nil)
			be := s.Backend()
			tf, isTF := be.(backend.TempFiler)
			if _, want := primary.(backend.TempFiler); isTF != want {
				t.Fatalf("streaming backend is a TempFiler: %v, primary: %v", isTF, want)
			}
			var hs []backend.Handle
			for i := range 6 {
				data, h := packData(i)
				hs = append(hs, h)
				if isTF {
					f, err := tf.TempFile(backend.PackFile)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := f.Write(data); err != nil {
						t.Fatal(err)
					}
					if err := tf.CommitTemp(ctx, h, f); err != nil {
						t.Fatal(err)
					}
				} else if err := be.Save(ctx, h, bytes.NewReader(data), int64(len(data))); err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					// Let the first pack arrive before the failure, so
					// "broken" holds exactly one pack.
					waitFor(t, func() bool { _, err := broken.Stat(ctx, h); return err == nil })
				}
			}
			idx := put(t, be, backend.IndexFile, "index-1") // not streamed: refers to data
			stats := s.Finish()
			if len(stats) != 2 {
				t.Fatalf("stats = %+v", stats)
			}
			if st := stats[0]; st.Copy != "good" || st.Files != 6 || st.Failed != "" {
				t.Fatalf("good: %+v, want 6 files", st)
			}
			for _, h := range hs {
				if _, err := good.Stat(ctx, h); err != nil {
					t.Fatalf("good copy lacks %v: %v", h, err)
				}
			}
			if _, err := good.Stat(ctx, idx); err == nil {
				t.Fatal("the index was streamed before the sync")
			}
			if st := stats[1]; st.Copy != "broken" || st.Failed == "" || st.Files >= 6 {
				t.Fatalf("broken: %+v, want a failure and fewer files", st)
			}
			// After Finish nothing more is sent.
			data, h := packData(99)
			if err := be.Save(ctx, h, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
			s.Abort()
			if _, err := good.Stat(ctx, h); err == nil {
				t.Fatal("a pack saved after Finish was streamed")
			}
		})
	}
}

func TestStreamerRejectsDamagedPrimary(t *testing.T) {
	ctx := context.Background()
	primary := fault.New(mem.New())
	dst := mem.New()
	s := NewStreamer(ctx, member("self", primary, 0), []Member{member("dst", dst, 1)}, 1, nil)
	data, h := packData(1)
	primary.FlipByte(h, 10) // bit rot between writing and reading back
	if err := s.Backend().Save(ctx, h, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	st := s.Finish()
	if st[0].Failed == "" || st[0].Files != 0 {
		t.Fatalf("stats = %+v, want the damaged pack refused", st[0])
	}
	if _, err := dst.Stat(ctx, h); err == nil {
		t.Fatal("a pack that does not hash to its name reached the copy")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within 5 s")
}
