package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/repo"
	_ "modernc.org/sqlite" // the cache database
)

// Source is what the cache reads from a repository.
type Source interface {
	Config() repo.Config
	Snapshots(ctx context.Context) ([]*repo.Snapshot, error)
	LoadCatalog(ctx context.Context, id repo.ID) ([]byte, error)
	Backend() backend.Backend
}

// Cache is the local SQLite database built from a repository's catalogs.
// It holds nothing that is not in the repository: delete it or run
// Rebuild at any time.
type Cache struct {
	db   *sql.DB
	path string
	now  func() time.Time
}

const schemaVersion = "1"

const schema = `
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snaps(id INTEGER PRIMARY KEY, sid TEXT UNIQUE NOT NULL, time TEXT NOT NULL, catalog TEXT, host TEXT NOT NULL, paths TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs(id INTEGER PRIMARY KEY, content TEXT NOT NULL, inner TEXT NOT NULL, key TEXT NOT NULL,
  seller TEXT NOT NULL, form TEXT NOT NULL, series TEXT NOT NULL, number TEXT NOT NULL, num INTEGER, date TEXT NOT NULL,
  buyer TEXT NOT NULL, amount REAL, status TEXT NOT NULL, format TEXT NOT NULL, data TEXT NOT NULL, UNIQUE(content, inner));
CREATE INDEX IF NOT EXISTS docs_key ON docs(key);
CREATE INDEX IF NOT EXISTS docs_number ON docs(number);
CREATE INDEX IF NOT EXISTS docs_seller ON docs(seller, form, series, num);
CREATE INDEX IF NOT EXISTS docs_buyer ON docs(buyer);
CREATE INDEX IF NOT EXISTS docs_date ON docs(date);
CREATE INDEX IF NOT EXISTS docs_amount ON docs(amount);
CREATE TABLE IF NOT EXISTS occ(snap INTEGER NOT NULL, doc INTEGER NOT NULL, path TEXT NOT NULL, PRIMARY KEY(snap, doc, path)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS occ_doc ON occ(doc, snap);
CREATE TABLE IF NOT EXISTS rejected(snap INTEGER NOT NULL, path TEXT NOT NULL, content TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(id TEXT PRIMARY KEY, kind TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS status(key TEXT NOT NULL, status TEXT NOT NULL, detail TEXT NOT NULL, source TEXT NOT NULL, date TEXT NOT NULL, PRIMARY KEY(key, status, source));
CREATE TABLE IF NOT EXISTS sigcheck(content TEXT NOT NULL, inner TEXT NOT NULL, status TEXT NOT NULL, first_status TEXT NOT NULL, sigs TEXT NOT NULL, checked TEXT NOT NULL, PRIMARY KEY(content, inner));
`

// DefaultPath is where the cache of a repository lives: the user cache
// directory, keyed by repository ID.
func DefaultPath(repoID repo.ID) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the cache directory: %w (set XDG_CACHE_HOME or HOME)", err)
	}
	return filepath.Join(dir, "einvault", "catalog", repoID.String()+".sqlite"), nil
}

// OpenCache opens (creating if needed) the cache database at p.
func OpenCache(ctx context.Context, p string, now func() time.Time) (*Cache, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, fmt.Errorf("create catalog cache directory: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+p+"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(0)&_pragma=temp_store(MEMORY)&_pragma=cache_size(-65536)")
	if err != nil {
		return nil, fmt.Errorf("open catalog cache %s: %w", p, err)
	}
	db.SetMaxOpenConns(1)
	if now == nil {
		now = time.Now
	}
	c := &Cache{db: db, path: p, now: now}
	if err := c.init(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("catalog cache %s: %w (delete the file; it is rebuilt from the repository)", p, err)
	}
	return c, nil
}

func (c *Cache) init(ctx context.Context) error {
	var v string
	err := c.db.QueryRowContext(ctx, `SELECT v FROM meta WHERE k='schema'`).Scan(&v)
	if err == nil && v != schemaVersion {
		if err := c.drop(ctx); err != nil {
			return err
		}
	}
	if _, err := c.db.ExecContext(ctx, schema); err != nil {
		return err
	}
	_, err = c.db.ExecContext(ctx, `INSERT OR REPLACE INTO meta(k, v) VALUES('schema', ?)`, schemaVersion)
	return err
}

func (c *Cache) drop(ctx context.Context) error {
	for _, t := range []string{"meta", "snaps", "docs", "occ", "rejected", "files", "status", "sigcheck"} {
		if _, err := c.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+t); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the database.
func (c *Cache) Close() error { return c.db.Close() }

// Path returns the database file.
func (c *Cache) Path() string { return c.path }

// Rebuild empties the cache and builds it again from the repository.
func (c *Cache) Rebuild(ctx context.Context, src Source) (SyncStats, error) {
	if err := c.drop(ctx); err != nil {
		return SyncStats{}, err
	}
	if err := c.init(ctx); err != nil {
		return SyncStats{}, err
	}
	return c.Sync(ctx, src)
}

// SyncStats says what a Sync changed.
type SyncStats struct {
	SnapshotsAdded   int `json:"snapshots_added"`
	SnapshotsRemoved int `json:"snapshots_removed"`
	Entries          int `json:"entries_added"`
	StatusFiles      int `json:"status_files_added"`
	NoCatalog        int `json:"snapshots_without_catalog"`
}

// Sync brings the cache up to date: catalogs of new snapshots are added,
// forgotten snapshots removed, new status-record files imported.
func (c *Cache) Sync(ctx context.Context, src Source) (SyncStats, error) {
	var st SyncStats
	snaps, err := src.Snapshots(ctx)
	if err != nil && len(snaps) == 0 {
		return st, err
	}
	known := map[string]int64{}
	rows, err := c.db.QueryContext(ctx, `SELECT id, sid FROM snaps`)
	if err != nil {
		return st, err
	}
	for rows.Next() {
		var id int64
		var sid string
		if err := rows.Scan(&id, &sid); err != nil {
			rows.Close()
			return st, err
		}
		known[sid] = id
	}
	rows.Close()
	live := map[string]bool{}
	catalogIDs := map[string]bool{}
	for _, s := range snaps {
		live[s.ID.String()] = true
		if s.Catalog != nil {
			catalogIDs[s.Catalog.String()] = true
		}
		if _, ok := known[s.ID.String()]; ok {
			continue
		}
		n, err := c.addSnapshot(ctx, src, s)
		if err != nil {
			return st, err
		}
		st.SnapshotsAdded++
		st.Entries += n
		if s.Catalog == nil {
			st.NoCatalog++
		}
	}
	for sid, id := range known {
		if live[sid] {
			continue
		}
		if err := c.removeSnapshot(ctx, id); err != nil {
			return st, err
		}
		st.SnapshotsRemoved++
	}
	n, err := c.syncStatusFiles(ctx, src, catalogIDs)
	st.StatusFiles = n
	return st, err
}

func (c *Cache) removeSnapshot(ctx context.Context, id int64) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{`DELETE FROM occ WHERE snap=?`, `DELETE FROM rejected WHERE snap=?`, `DELETE FROM snaps WHERE id=?`} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// CatalogLoader reads catalog payloads from a repository.
type CatalogLoader interface {
	LoadCatalog(context.Context, repo.ID) ([]byte, error)
}

// LoadCatalog reads and decodes a snapshot's whole catalog.
func LoadCatalog(ctx context.Context, src CatalogLoader, s *repo.Snapshot) (*Catalog, error) {
	r, err := LoadReader(ctx, src, s)
	if err != nil {
		return nil, err
	}
	cat, err := r.Catalog()
	if err != nil {
		return nil, fmt.Errorf("catalog %s of snapshot %s: %w: %w", s.Catalog.Short(), s.ID.Short(), repo.ErrDamaged, err)
	}
	return cat, nil
}

// LoadReader reads a snapshot's catalog for decoding block by block.
func LoadReader(ctx context.Context, src CatalogLoader, s *repo.Snapshot) (*Reader, error) {
	if s.Catalog == nil {
		return nil, fmt.Errorf("snapshot %s: %w", s.ID.Short(), errNoCatalog)
	}
	data, err := src.LoadCatalog(ctx, *s.Catalog)
	if err != nil {
		return nil, fmt.Errorf("catalog of snapshot %s: %w", s.ID.Short(), err)
	}
	r, err := OpenReader(data)
	if err != nil {
		return nil, fmt.Errorf("catalog %s of snapshot %s: %w: %w", s.Catalog.Short(), s.ID.Short(), repo.ErrDamaged, err)
	}
	return r, nil
}

// IsNoCatalog reports whether err says a snapshot has no catalog.
func IsNoCatalog(err error) bool { return errors.Is(err, errNoCatalog) }

// storedEntry is an entry as the cache keeps it: self-contained, with the
// packs its blobs are in.
type storedEntry struct {
	Entry
	Packs map[int]Pack `json:"packs,omitempty"`
}

func numberOf(s string) sql.NullInt64 {
	n, err := strconv.ParseInt(strings.TrimLeft(s, "0"), 10, 64)
	if s != "" && strings.Trim(s, "0") == "" {
		return sql.NullInt64{Int64: 0, Valid: true}
	}
	if err != nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: n, Valid: true}
}

func amountOf(s string) sql.NullFloat64 {
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
	if err != nil {
		return sql.NullFloat64{}
	}
	return sql.NullFloat64{Float64: f, Valid: true}
}

// overall is the invoice's signature status: the worst of its
// signatures, unsigned when it has none.
func overall(e *Entry) string { return string(e.Invoice.SigStatus()) }

func (c *Cache) addSnapshot(ctx context.Context, src Source, s *repo.Snapshot) (int, error) {
	var cat *Reader
	if s.Catalog != nil {
		var err error
		if cat, err = LoadReader(ctx, src, s); err != nil {
			return 0, err
		}
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	paths, _ := json.Marshal(s.Paths)
	var catID sql.NullString
	if s.Catalog != nil {
		catID = sql.NullString{String: s.Catalog.String(), Valid: true}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO snaps(sid, time, catalog, host, paths) VALUES(?,?,?,?,?)`,
		s.ID.String(), s.Time.UTC().Format(time.RFC3339Nano), catID, s.Host, string(paths))
	if err != nil {
		return 0, err
	}
	snapRow, _ := res.LastInsertId()
	if cat == nil {
		return 0, tx.Commit()
	}
	upsert, err := tx.PrepareContext(ctx, `INSERT INTO docs(content, inner, key, seller, form, series, number, num, date, buyer, amount, status, format, data)
		VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(content, inner) DO UPDATE SET data=excluded.data RETURNING id`)
	if err != nil {
		return 0, err
	}
	defer upsert.Close()
	occ, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO occ(snap, doc, path) VALUES(?,?,?)`)
	if err != nil {
		return 0, err
	}
	defer occ.Close()
	packs := cat.Packs()
	n := 0
	err = cat.Each(func(e *Entry) error {
		se := storedEntry{Entry: *e, Packs: map[int]Pack{}}
		for _, f := range []*File{&e.File, e.PDF} {
			if f == nil {
				continue
			}
			for _, b := range f.Blobs {
				if b.Pack >= 0 {
					se.Packs[b.Pack] = packs[b.Pack]
				}
			}
		}
		data, err := json.Marshal(se)
		if err != nil {
			return err
		}
		var doc int64
		err = upsert.QueryRowContext(ctx, e.ContentID, e.Inner, e.Key(), e.SellerTaxCode, e.Form, e.Series, e.Number, numberOf(e.Number),
			e.IssueDate, e.BuyerTaxCode, amountOf(e.Total), overall(e), string(e.Format), string(data)).Scan(&doc)
		if err != nil {
			return err
		}
		if _, err := occ.ExecContext(ctx, snapRow, doc, e.Path); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("catalog %s of snapshot %s: %w", s.Catalog.Short(), s.ID.Short(), err)
	}
	for _, r := range cat.Rejected() {
		if _, err := tx.ExecContext(ctx, `INSERT INTO rejected(snap, path, content, reason) VALUES(?,?,?,?)`, snapRow, r.Path, r.ContentID, r.Reason); err != nil {
			return 0, err
		}
	}
	return n, tx.Commit()
}

// syncStatusFiles imports status-record files (catalogs/ files that no
// snapshot names) not seen before.
func (c *Cache) syncStatusFiles(ctx context.Context, src Source, catalogs map[string]bool) (int, error) {
	seen := map[string]bool{}
	rows, err := c.db.QueryContext(ctx, `SELECT id FROM files`)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		seen[id] = true
	}
	rows.Close()
	var todo []repo.ID
	err = src.Backend().List(ctx, backend.CatalogFile, func(fi backend.FileInfo) error {
		id, err := repo.ParseID(fi.Name)
		if err == nil && !seen[fi.Name] && !catalogs[fi.Name] {
			todo = append(todo, id)
		}
		return nil
	})
	if err != nil && !errors.Is(err, backend.ErrNotExist) {
		return 0, fmt.Errorf("list catalogs: %w", err)
	}
	n := 0
	for _, id := range todo {
		data, err := src.LoadCatalog(ctx, id)
		if err != nil {
			if errors.Is(err, backend.ErrNotExist) {
				continue
			}
			return n, err
		}
		kind := "catalog"
		if recs, err := DecodeStatus(data); err == nil {
			kind = "status"
			if err := c.addStatus(ctx, recs); err != nil {
				return n, err
			}
			n++
		}
		if _, err := c.db.ExecContext(ctx, `INSERT OR REPLACE INTO files(id, kind) VALUES(?,?)`, id.String(), kind); err != nil {
			return n, err
		}
	}
	return n, nil
}

func (c *Cache) addStatus(ctx context.Context, recs []StatusRecord) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, r := range recs {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO status(key, status, detail, source, date) VALUES(?,?,?,?,?)`,
			r.Key, r.Status, r.Detail, r.Source, r.Date); err != nil {
			return err
		}
	}
	return tx.Commit()
}
