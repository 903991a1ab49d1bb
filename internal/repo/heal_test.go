package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/mem"
	"github.com/einvault/einvault/internal/replica"
)

// TestOpenBlobHeals: a blob whose bytes in the first copy fail
// authentication is read again from the copy whose pack is intact, and
// the copy list round-trips through the sealed copies/ files.
func TestOpenBlobHeals(t *testing.T) {
	ctx := context.Background()
	r, a := newTestRepo(t)
	data := make([]byte, 50000)
	_, _ = rand.Read(data)
	id := saveData(t, r, data)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b := mem.New()
	for _, ft := range backend.AllFileTypes {
		_ = a.List(ctx, ft, func(fi backend.FileInfo) error {
			h := backend.Handle{Type: ft, Name: fi.Name}
			buf, err := backend.LoadAll(ctx, a, h)
			if err != nil {
				return err
			}
			return b.Save(ctx, h, bytes.NewReader(buf), int64(len(buf)))
		})
	}
	// Flip a byte inside the blob in copy a.
	e, _ := r.Index().Lookup(id)
	p := r.Index().PackOf(e)
	h := backend.Handle{Type: backend.PackFile, Name: p.ID.String()}
	buf, _ := backend.LoadAll(ctx, a, h)
	buf[e.Offset+20] ^= 1
	if err := a.Save(ctx, h, bytes.NewReader(buf), int64(len(buf))); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadBlob(ctx, DataBlob, id, nil); !errors.Is(err, ErrDamaged) {
		t.Fatalf("damage not detected without copies: %v", err)
	}
	set := replica.NewSet([]replica.Member{
		{Copy: replica.Copy{Name: "a"}, Backend: a},
		{Copy: replica.Copy{Name: "b"}, Backend: b},
	}, nil)
	r.UseBackend(set)
	got, err := r.LoadBlob(ctx, DataBlob, id, nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("not healed: %v", err)
	}
	if ev := set.Events(); len(ev) != 1 || ev[0].Failed != "a" || ev[0].Served != "b" {
		t.Fatalf("events: %+v", ev)
	}

	// Copy list: save twice, the newest wins and the old version is gone.
	r.UseBackend(a)
	l := replica.List{Copies: []replica.Copy{{Name: "primary", Location: "/a", Kind: replica.KindDisk}}}
	if _, err := r.SaveCopies(ctx, l, nil); err != nil {
		t.Fatal(err)
	}
	got1, old, err := r.LoadCopies(ctx)
	if err != nil || len(old) != 1 || got1.Seq != 1 {
		t.Fatalf("load: %+v %v %v", got1, old, err)
	}
	got1.Copies = append(got1.Copies, replica.Copy{Name: "nas", Location: "/b", Kind: replica.KindNAS, Order: 1})
	if _, err := r.SaveCopies(ctx, got1, old); err != nil {
		t.Fatal(err)
	}
	got2, ids, err := r.LoadCopies(ctx)
	if err != nil || len(ids) != 1 || got2.Seq != 2 || len(got2.Copies) != 2 {
		t.Fatalf("second version: %+v %v %v", got2, ids, err)
	}
}
