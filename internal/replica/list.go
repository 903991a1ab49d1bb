// Package replica owns the copies of a repository: the copy list, the
// pre-flight probe of each destination, sync between copies, reads that
// heal themselves from the next copy, repair and the 3-2-1-1-0 status.
//
// It works on storage-level facts only: file types and names, sizes, and
// that every file except config is named by the plain BLAKE3 of its bytes.
// It knows nothing of the repository format beyond that; the caller (cli)
// seals the copy list into the repository and checks passwords.
package replica

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
)

// ListVersion is the version of the copy list document.
const ListVersion = 1

// Kind is the medium a copy lives on; the 3-2-1-1-0 rule counts kinds.
type Kind string

// Media kinds.
const (
	KindDisk  Kind = "disk"
	KindNAS   Kind = "nas"
	KindS3    Kind = "s3"
	KindSFTP  Kind = "sftp"
	KindCloud Kind = "cloud"
)

// Kinds lists the valid media kinds.
var Kinds = []Kind{KindDisk, KindNAS, KindS3, KindSFTP, KindCloud}

// Copy is one member of a repository's copy set as recorded in the
// repository. Location never holds secrets (credentials come from the
// environment or the configuration of the machine).
type Copy struct {
	Name      string `json:"name"`
	Location  string `json:"location"`
	Kind      Kind   `json:"kind"`
	Offsite   bool   `json:"offsite"`
	Immutable bool   `json:"immutable"`
	// Order ranks copies for reads and fail-over: lower first.
	Order int `json:"order"`
	// Behind marks a copy that missed writes (a backup went to another
	// copy while it failed pre-flight). Sync catches it up from the
	// others before any deletion is propagated.
	Behind bool `json:"behind,omitempty"`
	// LastSync is the end of the last sync that left this copy complete.
	LastSync time.Time `json:"last_sync,omitzero"`
	// LastVerify is the time of the last full verification (check
	// --read-data) of this copy and VerifyErrors what it found.
	LastVerify   time.Time `json:"last_verify,omitzero"`
	VerifyErrors int       `json:"verify_errors"`
}

// List is the copy list of a repository. Every change writes a new
// version with a higher Seq; readers use the highest.
type List struct {
	Version int       `json:"version"`
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Copies  []Copy    `json:"copies"`
}

// Encode returns the JSON form of l.
func (l List) Encode() ([]byte, error) {
	l.Version = ListVersion
	return json.Marshal(l)
}

// ErrBadList marks a copy list that cannot be decoded or is inconsistent.
var ErrBadList = errors.New("bad copy list")

// DecodeList parses and validates a copy list.
func DecodeList(data []byte) (List, error) {
	var l List
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&l); err != nil {
		return List{}, fmt.Errorf("%w: %v", ErrBadList, err)
	}
	if l.Version != ListVersion {
		return List{}, fmt.Errorf("%w: version %d is not supported (this program reads version %d; upgrade einvault)", ErrBadList, l.Version, ListVersion)
	}
	if err := l.Validate(); err != nil {
		return List{}, err
	}
	return l, nil
}

// Validate checks names, kinds and uniqueness.
func (l List) Validate() error {
	names := map[string]bool{}
	locs := map[string]bool{}
	for _, c := range l.Copies {
		if err := ValidName(c.Name); err != nil {
			return fmt.Errorf("%w: %v", ErrBadList, err)
		}
		if c.Location == "" {
			return fmt.Errorf("%w: copy %q has no location", ErrBadList, c.Name)
		}
		if !slices.Contains(Kinds, c.Kind) {
			return fmt.Errorf("%w: copy %q has unknown kind %q", ErrBadList, c.Name, c.Kind)
		}
		if names[c.Name] {
			return fmt.Errorf("%w: copy name %q appears twice", ErrBadList, c.Name)
		}
		k := NormalizeLocation(c.Location)
		if locs[k] {
			return fmt.Errorf("%w: location %q appears twice", ErrBadList, c.Location)
		}
		names[c.Name], locs[k] = true, true
	}
	return nil
}

// ValidName reports whether s can name a copy: 1 to 64 letters, digits,
// '-', '_' or '.', starting with a letter or digit.
func ValidName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("copy name %q: use 1 to 64 characters", s)
	}
	for i, r := range s {
		ok := r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || (i > 0 && (r == '-' || r == '_' || r == '.')))
		if !ok {
			return fmt.Errorf("copy name %q: use letters, digits, '-', '_' and '.', starting with a letter or digit", s)
		}
	}
	return nil
}

// ParseKind parses a media kind.
func ParseKind(s string) (Kind, error) {
	k := Kind(strings.ToLower(strings.TrimSpace(s)))
	if !slices.Contains(Kinds, k) {
		return "", fmt.Errorf("unknown media kind %q: use one of disk, nas, s3, sftp, cloud", s)
	}
	return k, nil
}

// GuessKind returns the media kind a location most likely is: s3, sftp,
// cloud for rclone remotes, and disk for local paths (say --kind nas for
// a NAS mount).
func GuessKind(loc string) Kind {
	switch {
	case strings.HasPrefix(loc, "s3:"):
		return KindS3
	case strings.HasPrefix(loc, "sftp:"):
		return KindSFTP
	case strings.HasPrefix(loc, "rclone:"):
		return KindCloud
	}
	return KindDisk
}

// IsLocal reports whether loc is a local path (read first by restores).
func IsLocal(loc string) bool {
	for _, p := range []string{"s3:", "sftp:", "rclone:"} {
		if strings.HasPrefix(loc, p) {
			return false
		}
	}
	return true
}

// NormalizeLocation returns the canonical form of a location: local paths
// become absolute and clean (without "local:"), others are unchanged but
// for a trailing slash.
func NormalizeLocation(loc string) string {
	if IsLocal(loc) {
		p := strings.TrimPrefix(loc, "local:")
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		return filepath.Clean(p)
	}
	return strings.TrimRight(loc, "/")
}

// Find returns the index of the copy called name, or -1.
func (l List) Find(name string) int {
	return slices.IndexFunc(l.Copies, func(c Copy) bool { return c.Name == name })
}

// FindLocation returns the index of the copy at loc, or -1.
func (l List) FindLocation(loc string) int {
	n := NormalizeLocation(loc)
	return slices.IndexFunc(l.Copies, func(c Copy) bool { return NormalizeLocation(c.Location) == n })
}

// Sorted returns the copies by Order, then name.
func (l List) Sorted() []Copy {
	out := slices.Clone(l.Copies)
	slices.SortStableFunc(out, func(a, b Copy) int {
		if a.Order != b.Order {
			return a.Order - b.Order
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// NextOrder returns an order value after every existing copy.
func (l List) NextOrder() int {
	n := 0
	for _, c := range l.Copies {
		if c.Order >= n {
			n = c.Order + 1
		}
	}
	return n
}

// Newer reports whether a should be preferred over b as the current
// version of the list.
func Newer(a, b List) bool {
	if a.Seq != b.Seq {
		return a.Seq > b.Seq
	}
	return a.Time.After(b.Time)
}
