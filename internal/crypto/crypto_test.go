package crypto

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k, err := NewKey(1)
	if err != nil {
		t.Fatal(err)
	}
	salt, _ := NewSalt()
	s, err := k.Sealer(salt)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		plaintext []byte
		ad        []byte
	}{
		{"empty", nil, nil},
		{"small", []byte("hello"), []byte("ad")},
		{"large", bytes.Repeat([]byte{7}, 1<<20), []byte("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := s.Seal(nil, tt.plaintext, tt.ad)
			if err != nil {
				t.Fatal(err)
			}
			if len(sealed) != len(tt.plaintext)+Overhead {
				t.Fatalf("sealed length %d", len(sealed))
			}
			out, err := s.Open(nil, sealed, tt.ad)
			if err != nil || !bytes.Equal(out, tt.plaintext) {
				t.Fatalf("open: %v", err)
			}
			for i := 0; i < len(sealed); i += 1 + len(sealed)/17 {
				bad := bytes.Clone(sealed)
				bad[i] ^= 1
				if _, err := s.Open(nil, bad, tt.ad); !errors.Is(err, ErrAuth) {
					t.Fatalf("flip at %d not detected: %v", i, err)
				}
			}
			if _, err := s.Open(nil, sealed, []byte("other")); !errors.Is(err, ErrAuth) {
				t.Fatal("wrong associated data not detected")
			}
			salt2, _ := NewSalt()
			s2, _ := k.Sealer(salt2)
			if _, err := s2.Open(nil, sealed, tt.ad); !errors.Is(err, ErrAuth) {
				t.Fatal("other subkey opened the message")
			}
		})
	}
}

func TestBlobIDKeyed(t *testing.T) {
	k1, _ := NewKey(1)
	k2, _ := NewKey(2)
	d := []byte("invoice")
	if a, b := k1.BlobID(d), k1.BlobID(d); a != b {
		t.Fatal("blob ID not deterministic")
	}
	if k1.BlobID(d) == k2.BlobID(d) {
		t.Fatal("blob IDs of different keys collide")
	}
	k1b, err := KeyFromSecret(1, k1.Secret())
	if err != nil {
		t.Fatal(err)
	}
	if k1b.BlobID(d) != k1.BlobID(d) || !bytes.Equal(k1b.ChunkerKey(), k1.ChunkerKey()) {
		t.Fatal("key rebuilt from secret differs")
	}
}

func TestWrappingKey(t *testing.T) {
	p := KDFParams{Time: 1, Memory: 1024, Threads: 1}
	salt := []byte("0123456789abcdef")
	a, err := WrappingKey([]byte("pw"), salt, p)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := a.Seal(nil, []byte("secret"), nil)
	b, _ := WrappingKey([]byte("other"), salt, p)
	if _, err := b.Open(nil, sealed, nil); !errors.Is(err, ErrAuth) {
		t.Fatal("wrong password opened key")
	}
	if _, err := WrappingKey([]byte("pw"), salt, KDFParams{Time: 0, Memory: 1024, Threads: 1}); err == nil {
		t.Fatal("invalid params accepted")
	}
}
