package repo

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/einvault/einvault/internal/backend/mem"
)

func TestKeyCacheAndWAL(t *testing.T) {
	ctx := context.Background()
	r, be := newTestRepo(t)
	cache, err := r.ExportKeyCache()
	if err != nil {
		t.Fatal(err)
	}
	seg := bytes.Repeat([]byte("wal record "), 100000)
	sealed, err := r.SealWAL("000000010000000000000003", seg)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) >= len(seg) {
		t.Errorf("sealed WAL %d bytes, content %d: not compressed", len(sealed), len(seg))
	}

	r2, err := OpenWithKeyCache(ctx, be, cache, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r2.OpenWAL("000000010000000000000003", sealed)
	if err != nil || !bytes.Equal(got, seg) {
		t.Fatalf("OpenWAL = %d bytes, %v", len(got), err)
	}
	if _, err := r2.OpenWAL("000000010000000000000004", sealed); !errors.Is(err, ErrDamaged) {
		t.Errorf("renamed segment: err = %v, want ErrDamaged", err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-5] ^= 1
	if _, err := r2.OpenWAL("000000010000000000000003", flipped); !errors.Is(err, ErrDamaged) {
		t.Errorf("tampered segment: err = %v, want ErrDamaged", err)
	}

	other, _ := newTestRepo(t)
	otherCache, _ := other.ExportKeyCache()
	for name, c := range map[string][]byte{"other repository": otherCache, "garbage": []byte("{}"), "not json": []byte("x")} {
		if _, err := OpenWithKeyCache(ctx, be, c, Options{}); !errors.Is(err, ErrKeyCacheMismatch) {
			t.Errorf("%s: err = %v, want ErrKeyCacheMismatch", name, err)
		}
	}
	if _, err := OpenWithKeyCache(ctx, mem.New(), cache, Options{}); !errors.Is(err, ErrNoRepository) {
		t.Errorf("empty backend: err = %v, want ErrNoRepository", err)
	}
}
