package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/backend"
)

// Backup kinds recorded in snapshots.
const (
	KindFull         = "full"
	KindIncremental  = "incremental"
	KindDifferential = "differential"
)

// Summary is what a backup did.
type Summary struct {
	FilesNew        uint64  `json:"files_new"`
	FilesChanged    uint64  `json:"files_changed"`
	FilesUnchanged  uint64  `json:"files_unchanged"`
	DirsNew         uint64  `json:"dirs_new"`
	DirsChanged     uint64  `json:"dirs_changed"`
	DirsUnchanged   uint64  `json:"dirs_unchanged"`
	FilesUnreadable uint64  `json:"files_unreadable"`
	BlobsAdded      uint64  `json:"blobs_added"`
	BytesRead       uint64  `json:"bytes_read"`
	BytesAdded      uint64  `json:"bytes_added"`
	BytesStored     uint64  `json:"bytes_stored"`
	TotalFiles      uint64  `json:"total_files"`
	TotalBytes      uint64  `json:"total_bytes"`
	Duration        float64 `json:"duration_seconds"`
}

// Snapshot records one backup.
type Snapshot struct {
	Time     time.Time `json:"time"`
	Host     string    `json:"host"`
	Username string    `json:"username,omitempty"`
	Paths    []string  `json:"paths"`
	Tags     []string  `json:"tags,omitempty"`
	Source   string    `json:"source"` // "files", "stdin", later databases
	Kind     string    `json:"kind"`
	Tree     ID        `json:"tree"`
	Parent   *ID       `json:"parent,omitempty"`
	Excludes []string  `json:"excludes,omitempty"`
	Program  string    `json:"program"`
	Summary  Summary   `json:"summary"`
	Catalog  *ID       `json:"catalog,omitempty"`
	// Meta holds what a source recorded about itself (a database's
	// server version, size and per-table row counts under "source", say).
	// The repository stores it and knows nothing of its contents.
	Meta map[string]json.RawMessage `json:"meta,omitempty"`

	// ID is the snapshot file's name; not stored.
	ID ID `json:"-"`
}

// HasTag reports whether the snapshot carries tag.
func (s *Snapshot) HasTag(tag string) bool {
	for _, t := range s.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// DecodeSnapshot parses a snapshot's plaintext.
func DecodeSnapshot(data []byte) (*Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%w: snapshot: %v", ErrDamaged, err)
	}
	if s.Tree.IsNull() {
		return nil, fmt.Errorf("%w: snapshot has no tree", ErrDamaged)
	}
	switch s.Kind {
	case KindFull, KindIncremental, KindDifferential:
	default:
		return nil, fmt.Errorf("%w: snapshot has unknown kind %q", ErrDamaged, s.Kind)
	}
	return &s, nil
}

// SaveSnapshot writes a snapshot file. Call it only after Flush, so the
// snapshot never references data that is not yet stored and indexed.
func (r *Repository) SaveSnapshot(ctx context.Context, s *Snapshot) (ID, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return ID{}, err
	}
	id, err := r.saveFile(ctx, backend.SnapshotFile, KindSnapshot, data)
	if err != nil {
		return ID{}, fmt.Errorf("save snapshot: %w", err)
	}
	s.ID = id
	return id, nil
}

// SaveCatalog stores an invoice catalog (sealed file of kind 5, see
// package catalog for its content) and returns its ID for Snapshot.Catalog.
func (r *Repository) SaveCatalog(ctx context.Context, payload []byte) (ID, error) {
	id, err := r.saveFile(ctx, backend.CatalogFile, KindCatalog, payload)
	if err != nil {
		return ID{}, fmt.Errorf("save catalog: %w", err)
	}
	return id, nil
}

// SaveCatalogCompressed stores a catalog payload that is compressed
// already (catalog format 2 is made of zstd blocks): sealed without a
// second compression, which would cost CPU and a copy of the payload.
func (r *Repository) SaveCatalogCompressed(ctx context.Context, payload []byte) (ID, error) {
	data, err := r.sealFileWith(KindCatalog, payload, nil)
	if err != nil {
		return ID{}, fmt.Errorf("save catalog: %w", err)
	}
	id := Hash(data)
	if err := r.be.Save(ctx, backend.Handle{Type: backend.CatalogFile, Name: id.String()}, bytes.NewReader(data), int64(len(data))); err != nil {
		return ID{}, fmt.Errorf("save catalog: %w", err)
	}
	return id, nil
}

// LoadCatalog reads and opens one catalog file, returning its payload.
func (r *Repository) LoadCatalog(ctx context.Context, id ID) ([]byte, error) {
	return r.loadFile(ctx, backend.Handle{Type: backend.CatalogFile, Name: id.String()}, KindCatalog)
}

// LoadSnapshot reads one snapshot by full ID.
func (r *Repository) LoadSnapshot(ctx context.Context, id ID) (*Snapshot, error) {
	plain, err := r.loadFile(ctx, backend.Handle{Type: backend.SnapshotFile, Name: id.String()}, KindSnapshot)
	if err != nil {
		return nil, err
	}
	s, err := DecodeSnapshot(plain)
	if err != nil {
		return nil, fmt.Errorf("snapshots/%s: %w", id.Short(), err)
	}
	s.ID = id
	return s, nil
}

// Snapshots loads every snapshot, oldest first. Damaged snapshot files
// are reported through the returned error after the rest are loaded.
func (r *Repository) Snapshots(ctx context.Context) ([]*Snapshot, error) {
	var ids IDs
	err := r.be.List(ctx, backend.SnapshotFile, func(fi backend.FileInfo) error {
		if id, err := ParseID(fi.Name); err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	out := make([]*Snapshot, 0, len(ids))
	var errs []error
	for _, id := range ids {
		s, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			if errors.Is(err, backend.ErrNotExist) {
				continue // removed by forget meanwhile
			}
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	SortSnapshots(out)
	return out, errors.Join(errs...)
}

// SortSnapshots orders snapshots oldest first (ties by ID).
func SortSnapshots(s []*Snapshot) {
	sort.Slice(s, func(i, j int) bool {
		if !s[i].Time.Equal(s[j].Time) {
			return s[i].Time.Before(s[j].Time)
		}
		return s[i].ID.String() < s[j].ID.String()
	})
}

// ErrNoSnapshot is returned when a snapshot reference matches nothing.
var ErrNoSnapshot = errors.New("no matching snapshot")

// SnapshotFilter selects snapshots.
type SnapshotFilter struct {
	Hosts []string
	Tags  []string // a snapshot must carry every tag
	Paths []string // a snapshot must have exactly these paths (any order)
}

// Match reports whether s passes the filter.
func (f SnapshotFilter) Match(s *Snapshot) bool {
	if len(f.Hosts) > 0 && !contains(f.Hosts, s.Host) {
		return false
	}
	for _, t := range f.Tags {
		if !s.HasTag(t) {
			return false
		}
	}
	if len(f.Paths) > 0 {
		if len(f.Paths) != len(s.Paths) {
			return false
		}
		for _, p := range f.Paths {
			if !contains(s.Paths, p) {
				return false
			}
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// FindSnapshot resolves "latest", a full ID or a unique ID prefix among
// the snapshots matching f.
func FindSnapshot(all []*Snapshot, ref string, f SnapshotFilter) (*Snapshot, error) {
	var cands []*Snapshot
	for _, s := range all {
		if f.Match(s) {
			cands = append(cands, s)
		}
	}
	if ref == "latest" {
		if len(cands) == 0 {
			return nil, fmt.Errorf("%w: the repository has no snapshot matching the filter", ErrNoSnapshot)
		}
		return cands[len(cands)-1], nil
	}
	var match []*Snapshot
	for _, s := range cands {
		if strings.HasPrefix(s.ID.String(), strings.ToLower(ref)) {
			match = append(match, s)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("%w: %q (list them with 'einvault snapshots')", ErrNoSnapshot, ref)
	case 1:
		return match[0], nil
	}
	return nil, fmt.Errorf("snapshot prefix %q is ambiguous (%d matches): give more characters", ref, len(match))
}
