package repo

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/mem"
	"github.com/einvault/einvault/internal/crypto"
)

var fastKDF = crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1}

func newTestRepo(t testing.TB) (*Repository, backend.Backend) {
	t.Helper()
	be := mem.New()
	r, err := Init(context.Background(), be, []byte("pw"), Options{KDF: fastKDF, PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return r, be
}

func saveData(t *testing.T, r *Repository, data []byte) ID {
	t.Helper()
	id := r.BlobID(data)
	if _, _, err := r.SaveBlob(context.Background(), DataBlob, id, data); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestOpenPasswords(t *testing.T) {
	ctx := context.Background()
	r, be := newTestRepo(t)
	if _, err := Init(ctx, be, []byte("pw"), Options{KDF: fastKDF}); !errors.Is(err, ErrRepoExists) {
		t.Fatalf("second init: %v", err)
	}
	if _, err := r.AddKey(ctx, []byte("second"), "password", "ops"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		pw   string
		want error
	}{
		{"pw", nil},
		{"second", nil},
		{"wrong", ErrWrongPassword},
		{"", ErrWrongPassword},
	}
	for _, tt := range tests {
		_, err := Open(ctx, be, []byte(tt.pw), Options{KDF: fastKDF})
		if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
			t.Errorf("open with %q: %v, want %v", tt.pw, err, tt.want)
		}
	}
	if _, err := Open(ctx, mem.New(), []byte("pw"), Options{}); !errors.Is(err, ErrNoRepository) {
		t.Fatalf("open empty backend: %v", err)
	}
	keys, err := r.Keys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	if err := r.RemoveKey(ctx, r.keyName); err == nil {
		t.Fatal("removed the key in use")
	}
}

func TestBlobRoundTripAndTamper(t *testing.T) {
	ctx := context.Background()
	r, be := newTestRepo(t)
	blobs := map[ID][]byte{}
	for i := 0; i < 200; i++ {
		data := bytes.Repeat([]byte{byte(i)}, 1000+i*37)
		if i%2 == 0 {
			data = make([]byte, 5000)
			for j := range data {
				data[j] = byte(j*7919 + i)
			}
		}
		blobs[saveData(t, r, data)] = data
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(ctx, be, []byte("pw"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range blobs {
		got, err := r2.LoadBlob(ctx, DataBlob, id, nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("blob %v: %v", id.Short(), err)
		}
	}
	// Flip one byte inside a blob of every pack: LoadBlob must fail with
	// ErrDamaged, never return other bytes.
	for _, p := range r2.Index().Packs() {
		h := backend.Handle{Type: backend.PackFile, Name: p.ID.String()}
		data, err := backend.LoadAll(ctx, be, h)
		if err != nil {
			t.Fatal(err)
		}
		data[20] ^= 0x40
		if err := be.Save(ctx, h, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	damaged := 0
	for id, want := range blobs {
		got, err := r2.LoadBlob(ctx, DataBlob, id, nil)
		if err != nil {
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("unexpected error: %v", err)
			}
			damaged++
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatal("damaged pack returned wrong bytes")
		}
	}
	if damaged == 0 {
		t.Fatal("no damage detected")
	}
}

func TestRotateMasterKey(t *testing.T) {
	ctx := context.Background()
	r, be := newTestRepo(t)
	if _, err := r.AddKey(ctx, []byte("other"), "password", ""); err != nil {
		t.Fatal(err)
	}
	old := []byte("invoice 1")
	oldID := saveData(t, r, old)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, removed, err := r.RotateMasterKey(ctx, []byte("new")); err != nil || len(removed) != 2 {
		t.Fatalf("rotate: removed %v, %v", removed, err)
	}
	if r.KeyEpoch() != 2 {
		t.Fatalf("epoch %d", r.KeyEpoch())
	}
	newID := saveData(t, r, old)
	if newID == oldID {
		t.Fatal("blob ID not rekeyed after rotation")
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"pw", "other"} {
		if _, err := Open(ctx, be, []byte(pw), Options{}); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("old password %q still opens: %v", pw, err)
		}
	}
	r2, err := Open(ctx, be, []byte("new"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []ID{oldID, newID} {
		got, err := r2.LoadBlob(ctx, DataBlob, id, nil)
		if err != nil || !bytes.Equal(got, old) {
			t.Fatalf("blob %s after rotation: %v", id.Short(), err)
		}
	}
	packs := r2.Index().Packs()
	epochs := map[uint32]bool{}
	for _, p := range packs {
		epochs[p.Epoch] = true
	}
	if !epochs[1] || !epochs[2] {
		t.Fatalf("pack epochs %v", epochs)
	}
}

func TestSnapshotFind(t *testing.T) {
	mk := func(id byte, host string) *Snapshot {
		s := &Snapshot{Host: host, Kind: KindFull}
		s.ID[0] = id
		s.Time = s.Time.AddDate(0, 0, int(id))
		return s
	}
	all := []*Snapshot{mk(0x11, "a"), mk(0x12, "b"), mk(0x21, "a")}
	tests := []struct {
		ref     string
		f       SnapshotFilter
		want    byte
		wantErr bool
	}{
		{"latest", SnapshotFilter{}, 0x21, false},
		{"latest", SnapshotFilter{Hosts: []string{"b"}}, 0x12, false},
		{"12", SnapshotFilter{}, 0x12, false},
		{"1", SnapshotFilter{}, 0, true},
		{"ff", SnapshotFilter{}, 0, true},
	}
	for _, tt := range tests {
		s, err := FindSnapshot(all, tt.ref, tt.f)
		if (err != nil) != tt.wantErr || (err == nil && s.ID[0] != tt.want) {
			t.Errorf("FindSnapshot(%q) = %v, %v", tt.ref, s, err)
		}
	}
}

func TestDictionary(t *testing.T) {
	ctx := context.Background()
	r, be := newTestRepo(t)
	var content []byte
	for i := 0; len(content) < 64<<10; i++ {
		content = append(content, []byte("<HDon><DLHDon><TTChung><KHMSHDon>1</KHMSHDon><KHHDon>C24TAA</KHHDon><SHDon>")...)
		content = append(content, byte('0'+i%10))
		content = append(content, []byte("</SHDon></TTChung></DLHDon></HDon>\n")...)
	}
	if err := r.AddDictionary(ctx, []byte("too small")); !errors.Is(err, ErrTooFewSamples) {
		t.Fatalf("tiny dictionary: %v", err)
	}
	if err := r.AddDictionary(ctx, content); err != nil || !r.HasDictionary() {
		t.Fatalf("add dictionary: %v", err)
	}
	inv := []byte("<HDon><DLHDon><TTChung><KHMSHDon>1</KHMSHDon><KHHDon>C24TAA</KHHDon><SHDon>42</SHDon></TTChung></DLHDon></HDon>\n<HDon><DLHDon><TTChung><KHMSHDon>1</KHMSHDon><KHHDon>C24TAB</KHHDon><SHDon>43</SHDon></TTChung></DLHDon></HDon>\n")
	id := saveData(t, r, inv)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e, _ := r.Index().Lookup(id)
	if e.Flags&blobCompressed == 0 || e.Length >= uint32(len(inv))/2 {
		t.Fatalf("blob not compressed with the dictionary: %d of %d bytes", e.Length, len(inv))
	}
	// A fresh open loads the dictionary and reads the blob.
	r2, err := Open(ctx, be, []byte("pw"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := r2.LoadBlob(ctx, DataBlob, id, nil)
	if err != nil || !bytes.Equal(got, inv) {
		t.Fatalf("read back: %v", err)
	}
	// Without the dictionary file the blob is reported damaged, never wrong.
	err = be.List(ctx, backend.DictFile, func(fi backend.FileInfo) error {
		return be.Remove(ctx, backend.Handle{Type: backend.DictFile, Name: fi.Name})
	})
	if err != nil {
		t.Fatal(err)
	}
	r3, err := Open(ctx, be, []byte("pw"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r3.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r3.LoadBlob(ctx, DataBlob, id, nil); !errors.Is(err, ErrDamaged) {
		t.Fatalf("missing dictionary: %v", err)
	}
}

func FuzzDecodeDict(f *testing.F) {
	f.Add([]byte("EVD1\x01\x00\x01\x00content"))
	f.Add([]byte("EVD1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDict(b)
		if err == nil && (d.id == 0 || len(d.content) == 0) {
			t.Fatal("accepted an empty dictionary")
		}
	})
}

func TestConfigIsAuthenticated(t *testing.T) {
	ctx := context.Background()
	_, be := newTestRepo(t)
	h := backend.Handle{Type: backend.ConfigFile, Name: "config"}
	data, err := backend.LoadAll(ctx, be, h)
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(data, []byte(`"pack_size": 1048576`), []byte(`"pack_size": 2097152`), 1)
	if bytes.Equal(edited, data) {
		t.Fatal("test did not change the config")
	}
	if err := be.Save(ctx, h, bytes.NewReader(edited), int64(len(edited))); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, be, []byte("pw"), Options{}); !errors.Is(err, ErrDamaged) {
		t.Fatalf("edited config accepted: %v", err)
	}
}

func TestRecoverFromLostIndexAndMissingPack(t *testing.T) {
	ctx := context.Background()
	r, be := newTestRepo(t)
	var ids []ID
	for i := 0; i < 50; i++ {
		ids = append(ids, saveData(t, r, bytes.Repeat([]byte{byte(i), 1, 2}, 3000+i)))
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Lose every index file: a fresh open sees no blobs until the pack
	// headers are read.
	err := be.List(ctx, backend.IndexFile, func(fi backend.FileInfo) error {
		return be.Remove(ctx, backend.Handle{Type: backend.IndexFile, Name: fi.Name})
	})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Open(ctx, be, []byte("pw"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.LoadIndex(ctx); err != nil || r2.Index().Len() != 0 {
		t.Fatalf("index after loss: %d blobs, %v", r2.Index().Len(), err)
	}
	n, errs := r2.IndexUnindexedPacks(ctx)
	if n == 0 || len(errs) != 0 {
		t.Fatalf("recovered %d packs, errors %v", n, errs)
	}
	for _, id := range ids {
		if _, err := r2.LoadBlob(ctx, DataBlob, id, nil); err != nil {
			t.Fatalf("blob after recovery: %v", err)
		}
	}
	// A pack deleted under an index entry is damage, not a generic error.
	p := r2.Index().Packs()[0]
	if err := be.Remove(ctx, backend.Handle{Type: backend.PackFile, Name: p.ID.String()}); err != nil {
		t.Fatal(err)
	}
	damaged := 0
	for _, id := range ids {
		if _, err := r2.LoadBlob(ctx, DataBlob, id, nil); err != nil {
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("missing pack gave %v, want damage", err)
			}
			damaged++
		}
	}
	if damaged == 0 {
		t.Fatal("deleted pack not noticed")
	}
}
