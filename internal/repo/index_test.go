package repo

import (
	"testing"
)

func TestIndexMergeAndLookup(t *testing.T) {
	idx := NewIndex()
	const packs, per = 150, 1000 // crosses mergeAt twice
	var all []ID
	for p := 0; p < packs; p++ {
		var blobs []PackedBlob
		for b := 0; b < per; b++ {
			id := RandomID()
			all = append(all, id)
			blobs = append(blobs, PackedBlob{Type: DataBlob, ID: id, Offset: uint32(b), Length: 100, RawLength: uint32(p)})
		}
		idx.AddPack(PackInfo{ID: RandomID()}, blobs)
	}
	// A duplicate in a later pack keeps its first location.
	idx.AddPack(PackInfo{ID: RandomID()}, []PackedBlob{{Type: DataBlob, ID: all[5], Offset: 999999, Length: 1}})
	if idx.Len() != packs*per {
		t.Fatalf("Len %d, want %d", idx.Len(), packs*per)
	}
	for i, id := range all {
		e, ok := idx.Lookup(id)
		if !ok || e.RawLength != uint32(i/per) || e.Offset != uint32(i%per) {
			t.Fatalf("blob %d: %+v %v", i, e, ok)
		}
	}
	if idx.Has(RandomID()) {
		t.Fatal("unknown blob found")
	}
	n := 0
	idx.Each(func(ID, PackInfo, IndexEntry) { n++ })
	if n != packs*per {
		t.Fatalf("Each visited %d", n)
	}
}
