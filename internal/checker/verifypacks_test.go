package checker

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/repo"
)

// TestVerifyPacks writes a second backup's data, takes the packs that
// repository handle wrote, and verifies exactly those: intact they pass,
// and each kind of damage to one of them is found, while damage to an
// older pack (not a new one) is not looked at.
func TestVerifyPacks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	oldPacks := names(t, f.be, backend.PackFile)
	w := open(t, f.be)
	if err := w.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 40; i++ {
		data := randBytes(rng, 60_000)
		if _, _, err := w.SaveBlob(ctx, repo.DataBlob, w.BlobID(data), data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	written := w.WrittenPacks()
	if len(written) < 2 {
		t.Fatalf("want several new packs, got %d", len(written))
	}
	var ids repo.IDs
	for _, p := range written {
		ids = append(ids, p.ID)
		for _, o := range oldPacks {
			if o == p.ID.String() {
				t.Fatalf("pack %s reported as new but existed before", p.ID.Short())
			}
		}
	}
	verify := func(be backend.Backend) *Report {
		t.Helper()
		rep, err := VerifyPacks(ctx, open(t, be), ids, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := verify(f.be); rep.Damaged() || rep.Stats.PacksRead != len(ids) {
		t.Fatalf("intact new packs: damaged=%v read %d of %d\n%s", rep.Damaged(), rep.Stats.PacksRead, len(ids), dump(rep))
	}
	// Damage to an old pack is not this verification's business.
	be := f.clone(t)
	mutate(t, be, backend.Handle{Type: backend.PackFile, Name: oldPacks[0]}, mutation{fn: flipAt(func(n int) int { return n / 2 })})
	if rep := verify(be); rep.Damaged() {
		t.Fatalf("an old pack's damage was reported by the new-pack verification:\n%s", dump(rep))
	}
	for _, m := range []mutation{
		{name: "flip", fn: flipAt(func(n int) int { return n / 3 })},
		{name: "truncate", fn: func(b []byte) []byte { return bytes.Clone(b[:len(b)-100]) }},
		{name: "delete"},
	} {
		t.Run(m.name, func(t *testing.T) {
			be := f.clone(t)
			victim := ids[len(ids)-1]
			mutate(t, be, backend.Handle{Type: backend.PackFile, Name: victim.String()}, m)
			rep := verify(be)
			if !rep.Damaged() {
				t.Fatalf("damaged new pack not found:\n%s", dump(rep))
			}
			if findError(rep, "", packFile(victim)) == nil {
				t.Fatalf("the error does not name pack %s:\n%s", victim.Short(), dump(rep))
			}
		})
	}
}
