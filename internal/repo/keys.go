package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"sort"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/crypto"
)

// ErrWrongPassword is returned when no key file opens with the password.
var ErrWrongPassword = errors.New("wrong password: no key file of this repository opens with it")

// KeyFile is the JSON stored in keys/<id>. It wraps the keyring (every
// master-key epoch) with a key derived from one password by argon2id.
type KeyFile struct {
	Version  int              `json:"version"`
	Created  time.Time        `json:"created"`
	Host     string           `json:"host,omitempty"`
	Username string           `json:"username,omitempty"`
	Label    string           `json:"label,omitempty"`
	Kind     string           `json:"kind"` // "password" or "recovery"
	KDF      crypto.KDFParams `json:"kdf"`
	Salt     []byte           `json:"salt"`
	Data     []byte           `json:"data"`
}

type keyringJSON struct {
	Repository ID `json:"repository"`
	// Config is the BLAKE3 of the config file, which is stored in the
	// clear: sealing its hash here authenticates it.
	Config ID          `json:"config"`
	Epochs []epochJSON `json:"epochs"`
}

type epochJSON struct {
	Epoch   uint32    `json:"epoch"`
	Secret  []byte    `json:"secret"`
	Created time.Time `json:"created"`
}

// keyring holds every epoch of the master key; the highest is current.
type keyring struct {
	keys    map[uint32]*crypto.Key
	created map[uint32]time.Time
	cur     *crypto.Key
	config  ID
}

func (kr *keyring) current() *crypto.Key { return kr.cur }

func (kr *keyring) epoch(e uint32) (*crypto.Key, error) {
	k, ok := kr.keys[e]
	if !ok {
		return nil, fmt.Errorf("%w: data sealed under key epoch %d, which this key file does not hold (it was created before a key rotation: open with a current password)", ErrDamaged, e)
	}
	return k, nil
}

func newKeyring() (*keyring, error) {
	k, err := crypto.NewKey(1)
	if err != nil {
		return nil, err
	}
	return &keyring{keys: map[uint32]*crypto.Key{1: k}, created: map[uint32]time.Time{1: time.Now().UTC()}, cur: k}, nil
}

func (kr *keyring) marshal(repoID ID) ([]byte, error) {
	j := keyringJSON{Repository: repoID, Config: kr.config}
	for e, k := range kr.keys {
		j.Epochs = append(j.Epochs, epochJSON{Epoch: e, Secret: k.Secret(), Created: kr.created[e]})
	}
	sort.Slice(j.Epochs, func(a, b int) bool { return j.Epochs[a].Epoch < j.Epochs[b].Epoch })
	return json.Marshal(j)
}

func unmarshalKeyring(data []byte, repoID ID) (*keyring, error) {
	var j keyringJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("%w: keyring: %v", ErrDamaged, err)
	}
	if j.Repository != repoID {
		return nil, fmt.Errorf("%w: key file belongs to repository %s, not %s", ErrDamaged, j.Repository.Short(), repoID.Short())
	}
	if len(j.Epochs) == 0 {
		return nil, fmt.Errorf("%w: keyring holds no keys", ErrDamaged)
	}
	kr := &keyring{keys: map[uint32]*crypto.Key{}, created: map[uint32]time.Time{}, config: j.Config}
	for _, e := range j.Epochs {
		k, err := crypto.KeyFromSecret(e.Epoch, e.Secret)
		if err != nil {
			return nil, fmt.Errorf("%w: keyring: %v", ErrDamaged, err)
		}
		kr.keys[e.Epoch] = k
		kr.created[e.Epoch] = e.Created
		if kr.cur == nil || e.Epoch > kr.cur.Epoch {
			kr.cur = k
		}
	}
	return kr, nil
}

// DecodeKeyFile parses a key file without opening it.
func DecodeKeyFile(data []byte) (KeyFile, error) {
	var kf KeyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return kf, fmt.Errorf("%w: key file: %v", ErrDamaged, err)
	}
	if kf.Version != 1 {
		return kf, fmt.Errorf("%w: key file version %d unsupported", ErrDamaged, kf.Version)
	}
	if len(kf.Salt) < 16 || len(kf.Data) < crypto.Overhead {
		return kf, fmt.Errorf("%w: key file is truncated", ErrDamaged)
	}
	if err := kf.KDF.Validate(); err != nil {
		return kf, fmt.Errorf("%w: key file: %v", ErrDamaged, err)
	}
	return kf, nil
}

func (kf KeyFile) open(password []byte, repoID ID) (*keyring, error) {
	w, err := crypto.WrappingKey(password, kf.Salt, kf.KDF)
	if err != nil {
		return nil, err
	}
	plain, err := w.Open(nil, kf.Data, repoID[:])
	if err != nil {
		return nil, ErrWrongPassword
	}
	return unmarshalKeyring(plain, repoID)
}

func sealKeyFile(kr *keyring, repoID ID, password []byte, kind, label string, p crypto.KDFParams) ([]byte, error) {
	salt, err := crypto.NewSalt()
	if err != nil {
		return nil, err
	}
	w, err := crypto.WrappingKey(password, salt[:], p)
	if err != nil {
		return nil, err
	}
	plain, err := kr.marshal(repoID)
	if err != nil {
		return nil, err
	}
	sealed, err := w.Seal(nil, plain, repoID[:])
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	kf := KeyFile{Version: 1, Created: time.Now().UTC(), Host: host, Kind: kind, Label: label, KDF: p, Salt: salt[:], Data: sealed}
	if u, err := user.Current(); err == nil {
		kf.Username = u.Username
	}
	return json.MarshalIndent(kf, "", "  ")
}

// KeyInfo describes a key file for listings.
type KeyInfo struct {
	ID       string    `json:"id"`
	Current  bool      `json:"current"`
	Kind     string    `json:"kind"`
	Label    string    `json:"label,omitempty"`
	Username string    `json:"username,omitempty"`
	Host     string    `json:"host,omitempty"`
	Created  time.Time `json:"created"`
}

// Keys lists the key files.
func (r *Repository) Keys(ctx context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	err := r.be.List(ctx, backend.KeyFile, func(fi backend.FileInfo) error {
		if _, err := ParseID(fi.Name); err != nil {
			return nil
		}
		data, err := backend.LoadAll(ctx, r.be, backend.Handle{Type: backend.KeyFile, Name: fi.Name})
		if err != nil {
			return err
		}
		kf, err := DecodeKeyFile(data)
		if err != nil {
			return fmt.Errorf("keys/%s: %w", fi.Name, err)
		}
		out = append(out, KeyInfo{ID: fi.Name, Current: fi.Name == r.keyName, Kind: kf.Kind, Label: kf.Label, Username: kf.Username, Host: kf.Host, Created: kf.Created})
		return nil
	})
	sort.Slice(out, func(a, b int) bool { return out[a].Created.Before(out[b].Created) })
	return out, err
}

// AddKey stores a new key file for password and returns its ID.
func (r *Repository) AddKey(ctx context.Context, password []byte, kind, label string) (string, error) {
	data, err := sealKeyFile(r.keys, r.cfg.ID, password, kind, label, r.kdf)
	if err != nil {
		return "", err
	}
	name := Hash(data).String()
	if err := r.be.Save(ctx, backend.Handle{Type: backend.KeyFile, Name: name}, bytesReader(data), int64(len(data))); err != nil {
		return "", fmt.Errorf("save key file: %w", err)
	}
	return name, nil
}

// RemoveKey deletes a key file. The key in use and the last key cannot be
// removed.
func (r *Repository) RemoveKey(ctx context.Context, id string) error {
	keys, err := r.Keys(ctx)
	if err != nil {
		return err
	}
	var match []string
	for _, k := range keys {
		if len(id) >= 4 && len(id) <= len(k.ID) && k.ID[:len(id)] == id {
			match = append(match, k.ID)
		}
	}
	switch {
	case len(match) == 0:
		return fmt.Errorf("no key with ID %q (see 'einvault key list')", id)
	case len(match) > 1:
		return fmt.Errorf("key ID prefix %q is ambiguous: give more characters", id)
	case match[0] == r.keyName:
		return fmt.Errorf("refusing to remove the key in use: open the repository with another password first")
	case len(keys) == 1:
		return fmt.Errorf("refusing to remove the last key")
	}
	return r.be.Remove(ctx, backend.Handle{Type: backend.KeyFile, Name: match[0]})
}

// ChangePassword replaces the key in use by one for newPassword.
func (r *Repository) ChangePassword(ctx context.Context, newPassword []byte) (string, error) {
	old := r.keyName
	kf := r.keyFile
	name, err := r.AddKey(ctx, newPassword, kf.Kind, kf.Label)
	if err != nil {
		return "", err
	}
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.KeyFile, Name: old}); err != nil {
		return name, fmt.Errorf("new key %s saved but old key not removed: %w", name[:8], err)
	}
	r.keyName = name
	return name, nil
}

// RotateMasterKey adds a new master-key epoch: everything written from now
// on is sealed and identified under it, while old snapshots stay readable
// through the old epochs. Every key file is rewritten for newPassword
// (the password in use if nil); all other key files are removed, because
// after a suspected compromise any of them may be the leak. It returns the
// new key file's ID and the IDs of the removed keys.
func (r *Repository) RotateMasterKey(ctx context.Context, password []byte) (string, []string, error) {
	keys, err := r.Keys(ctx)
	if err != nil {
		return "", nil, err
	}
	k, err := crypto.NewKey(r.keys.cur.Epoch + 1)
	if err != nil {
		return "", nil, err
	}
	// Make sure everything buffered under the old epoch is written first.
	if err := r.Flush(ctx); err != nil {
		return "", nil, err
	}
	nk := &keyring{keys: map[uint32]*crypto.Key{}, created: map[uint32]time.Time{}, cur: k, config: r.keys.config}
	for e, old := range r.keys.keys {
		nk.keys[e] = old
		nk.created[e] = r.keys.created[e]
	}
	nk.keys[k.Epoch] = k
	nk.created[k.Epoch] = time.Now().UTC()
	r.keys = nk
	name, err := r.AddKey(ctx, password, "password", r.keyFile.Label)
	if err != nil {
		return "", nil, err
	}
	var removed []string
	for _, ki := range keys {
		if err := r.be.Remove(ctx, backend.Handle{Type: backend.KeyFile, Name: ki.ID}); err != nil {
			return name, removed, fmt.Errorf("remove old key %s: %w", ki.ID[:8], err)
		}
		removed = append(removed, ki.ID)
	}
	r.keyName = name
	return name, removed, nil
}

// KeyEpoch returns the current master-key epoch.
func (r *Repository) KeyEpoch() uint32 { return r.keys.cur.Epoch }
