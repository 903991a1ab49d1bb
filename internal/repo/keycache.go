package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/einvault/einvault/internal/backend"
)

// keyCacheJSON is the content of a key cache file: the repository's
// unwrapped keyring, so that short-lived processes (PostgreSQL's
// archive_command runs one per WAL segment) open the repository without
// running the password KDF. Whoever can read the file can read and
// write the repository: it must be readable only by the OS user that
// runs those processes.
type keyCacheJSON struct {
	Kind       string          `json:"kind"` // "einvault-key-cache"
	Version    int             `json:"version"`
	Repository ID              `json:"repository"`
	Keyring    json.RawMessage `json:"keyring"`
}

const keyCacheKind = "einvault-key-cache"

// ExportKeyCache returns the content of a key cache file for this
// repository (see OpenWithKeyCache). It holds every master-key epoch in
// the clear.
func (r *Repository) ExportKeyCache() ([]byte, error) {
	kr, err := r.keys.marshal(r.cfg.ID)
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(keyCacheJSON{Kind: keyCacheKind, Version: 1, Repository: r.cfg.ID, Keyring: kr}, "", "  ")
}

// ErrKeyCacheMismatch is returned when a key cache belongs to another
// repository or to a repository whose config changed.
var ErrKeyCacheMismatch = errors.New("key cache does not match this repository")

// OpenWithKeyCache opens a repository with the keys of a key cache file
// instead of a password: no key files are read and no KDF runs, and the
// index is not loaded. Operations that change key files (add, passwd,
// rotate) are not available on such a repository.
func OpenWithKeyCache(ctx context.Context, be backend.Backend, cache []byte, opts Options) (*Repository, error) {
	var kc keyCacheJSON
	if err := json.Unmarshal(cache, &kc); err != nil || kc.Kind != keyCacheKind {
		return nil, fmt.Errorf("%w: not an einvault key cache file (create it with 'einvault key cache')", ErrKeyCacheMismatch)
	}
	if kc.Version != 1 {
		return nil, fmt.Errorf("%w: key cache version %d is not supported by this einvault", ErrKeyCacheMismatch, kc.Version)
	}
	r, err := newRepository(be, opts)
	if err != nil {
		return nil, err
	}
	cfgData, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.ConfigFile, Name: "config"})
	if err != nil {
		if errors.Is(err, backend.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s: no config file", ErrNoRepository, be.Location())
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	if r.cfg, err = DecodeConfig(cfgData); err != nil {
		return nil, err
	}
	if kc.Repository != r.cfg.ID {
		return nil, fmt.Errorf("%w: the cache is for repository %s, this is %s (recreate it with 'einvault key cache')", ErrKeyCacheMismatch, kc.Repository.Short(), r.cfg.ID.Short())
	}
	kr, err := unmarshalKeyring(kc.Keyring, r.cfg.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyCacheMismatch, err)
	}
	if kr.config != Hash(cfgData) {
		return nil, fmt.Errorf("%w: the config file was changed after the repository was created: restore it from another copy", ErrDamaged)
	}
	r.keys = kr
	return r, nil
}
