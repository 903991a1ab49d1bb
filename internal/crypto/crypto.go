// Package crypto owns einvault's cryptographic primitives: password-based
// key wrapping with argon2id, the per-epoch master keys, keyed BLAKE3 blob
// IDs, and AES-256-GCM sealing under per-container subkeys.
//
// Nothing here knows the repository layout; package repo decides what is
// sealed with which associated data.
package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/argon2"
)

// Sizes of the primitives.
const (
	KeySize   = 32
	SaltSize  = 16
	NonceSize = 12
	TagSize   = 16
	// Overhead is what Seal adds to a plaintext: nonce and tag.
	Overhead = NonceSize + TagSize
)

// ErrAuth is returned when a ciphertext does not authenticate: wrong key
// or tampered data.
var ErrAuth = errors.New("ciphertext verification failed (data damaged or tampered with, or wrong key)")

// Key is one epoch of the repository master key. A repository keeps every
// epoch it ever used so old data stays readable after a rotation; new data
// is sealed under the newest epoch.
type Key struct {
	Epoch  uint32
	secret [KeySize]byte
	enc    [KeySize]byte
	mac    [KeySize]byte
	chunk  [KeySize]byte

	hashers sync.Pool
}

// NewKey returns a fresh random key for the given epoch.
func NewKey(epoch uint32) (*Key, error) {
	var s [KeySize]byte
	if _, err := rand.Read(s[:]); err != nil {
		return nil, fmt.Errorf("read random bytes: %w", err)
	}
	return KeyFromSecret(epoch, s[:])
}

// KeyFromSecret rebuilds a key from its stored secret.
func KeyFromSecret(epoch uint32, secret []byte) (*Key, error) {
	if len(secret) != KeySize {
		return nil, fmt.Errorf("key secret has %d bytes, want %d", len(secret), KeySize)
	}
	k := &Key{Epoch: epoch}
	copy(k.secret[:], secret)
	blake3.DeriveKey("einvault v1 2026 encryption key", k.secret[:], k.enc[:])
	blake3.DeriveKey("einvault v1 2026 blob id key", k.secret[:], k.mac[:])
	blake3.DeriveKey("einvault v1 2026 chunker key", k.secret[:], k.chunk[:])
	k.hashers.New = func() any {
		h, err := blake3.NewKeyed(k.mac[:])
		if err != nil {
			panic(err) // key length is fixed; cannot happen
		}
		return h
	}
	return k, nil
}

// Secret returns the raw secret, for wrapping into key files only.
func (k *Key) Secret() []byte { s := k.secret; return s[:] }

// ChunkerKey is the secret that keys the content-defined chunker, so chunk
// boundaries do not reveal content to whoever holds the storage.
func (k *Key) ChunkerKey() []byte { c := k.chunk; return c[:] }

// BlobID is the keyed BLAKE3 of a blob's plaintext.
func (k *Key) BlobID(data []byte) [32]byte {
	h := k.hashers.Get().(*blake3.Hasher)
	h.Reset()
	_, _ = h.Write(data)
	var id [32]byte
	h.Sum(id[:0])
	k.hashers.Put(h)
	return id
}

// NewSalt returns a random salt for a container (a pack or a file).
func NewSalt() ([SaltSize]byte, error) {
	var s [SaltSize]byte
	if _, err := rand.Read(s[:]); err != nil {
		return s, fmt.Errorf("read random bytes: %w", err)
	}
	return s, nil
}

// Sealer seals and opens data under one container's subkey, derived from
// the epoch's encryption key and the container's random salt, so the number
// of random nonces used under any one AES key stays tiny.
type Sealer struct{ aead cipher.AEAD }

// Sealer returns the sealer for a container salt.
func (k *Key) Sealer(salt [SaltSize]byte) (*Sealer, error) {
	var material [KeySize + SaltSize]byte
	copy(material[:], k.enc[:])
	copy(material[KeySize:], salt[:])
	var sub [KeySize]byte
	blake3.DeriveKey("einvault v1 2026 container subkey", material[:], sub[:])
	block, err := aes.NewCipher(sub[:])
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal appends nonce || ciphertext || tag of plaintext to dst.
func (s *Sealer) Seal(dst, plaintext, ad []byte) ([]byte, error) {
	off := len(dst)
	dst = append(dst, make([]byte, NonceSize)...)
	if _, err := rand.Read(dst[off : off+NonceSize]); err != nil {
		return nil, fmt.Errorf("read random bytes: %w", err)
	}
	return s.aead.Seal(dst, dst[off:off+NonceSize], plaintext, ad), nil
}

// Open authenticates and decrypts a sealed message, appending the
// plaintext to dst.
func (s *Sealer) Open(dst, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, ErrAuth
	}
	out, err := s.aead.Open(dst, sealed[:NonceSize], sealed[NonceSize:], ad)
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

// KDFParams are the argon2id parameters stored in a key file.
type KDFParams struct {
	Time    uint32 `json:"time"`
	Memory  uint32 `json:"memory_kib"`
	Threads uint8  `json:"threads"`
}

// DefaultKDF costs about a fifth of a second on a small server and 16 MiB
// of memory: stronger than OWASP's argon2id recommendations (19 MiB with
// t=2, or 12 MiB with t=3), and small enough that opening a repository
// does not dominate the memory of a backup.
var DefaultKDF = KDFParams{Time: 4, Memory: 16 * 1024, Threads: 2}

// Validate refuses parameters that are too weak to be produced by einvault
// or too expensive to be anything but an attack on the opener.
func (p KDFParams) Validate() error {
	if p.Time < 1 || p.Time > 64 || p.Memory < 8*1024/8 || p.Memory > 1024*1024 || p.Threads < 1 {
		return fmt.Errorf("argon2id parameters out of range (time %d, memory %d KiB, threads %d)", p.Time, p.Memory, p.Threads)
	}
	return nil
}

// WrappingKey derives the key that wraps the repository keys in a key file.
func WrappingKey(password []byte, salt []byte, p KDFParams) (*Sealer, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	k := argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, KeySize)
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return &Sealer{aead: aead}, nil
}
