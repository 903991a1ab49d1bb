package repo

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/zeebo/blake3"
)

// IDSize is the length of every ID in bytes.
const IDSize = 32

// ID names a blob (keyed BLAKE3 of its plaintext) or a file (plain BLAKE3
// of its bytes).
type ID [IDSize]byte

// String is the lowercase hex form used in file names.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short is the 8-character prefix shown to users.
func (id ID) Short() string { return id.String()[:8] }

// IsNull reports whether id is all zeroes.
func (id ID) IsNull() bool { return id == ID{} }

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	p, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// ParseID parses a 64-character hex ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("invalid ID %q: want %d hex characters", s, 2*IDSize)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid ID %q: %w", s, err)
	}
	return id, nil
}

// Hash is the plain BLAKE3 of data: the ID of a stored file.
func Hash(data []byte) ID { return ID(blake3.Sum256(data)) }

// RandomID returns a random ID (repository IDs, lock names).
func RandomID() ID {
	var id ID
	if _, err := rand.Read(id[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return id
}

// IDs is a sortable list of IDs.
type IDs []ID

func (s IDs) Len() int           { return len(s) }
func (s IDs) Less(i, j int) bool { return bytes.Compare(s[i][:], s[j][:]) < 0 }
func (s IDs) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }

// Sort sorts the list in place.
func (s IDs) Sort() { sort.Sort(s) }

// IDSet is a set of IDs.
type IDSet map[ID]struct{}

// Has reports membership.
func (s IDSet) Has(id ID) bool { _, ok := s[id]; return ok }

// Insert adds id.
func (s IDSet) Insert(id ID) { s[id] = struct{}{} }
