package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// SnapshotRef is a snapshot as the cache knows it.
type SnapshotRef struct {
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	Host       string    `json:"host"`
	Paths      []string  `json:"paths"`
	HasCatalog bool      `json:"has_catalog"`
	row        int64
}

// Snapshots lists the cached snapshots, oldest first.
func (c *Cache) Snapshots(ctx context.Context) ([]SnapshotRef, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT id, sid, time, catalog IS NOT NULL, host, paths FROM snaps ORDER BY time, sid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SnapshotRef
	for rows.Next() {
		var s SnapshotRef
		var t, paths string
		if err := rows.Scan(&s.row, &s.ID, &t, &s.HasCatalog, &s.Host, &paths); err != nil {
			return nil, err
		}
		s.Time, _ = time.Parse(time.RFC3339Nano, t)
		_ = json.Unmarshal([]byte(paths), &s.Paths)
		out = append(out, s)
	}
	return out, rows.Err()
}

// ErrNoSnapshot is returned when no cataloged snapshot matches.
var ErrNoSnapshot = errors.New("no snapshot with an invoice catalog matches")

// ResolveSnapshot finds a cataloged snapshot by "latest", ID or unique
// ID prefix.
func (c *Cache) ResolveSnapshot(ctx context.Context, ref string) (SnapshotRef, error) {
	all, err := c.Snapshots(ctx)
	if err != nil {
		return SnapshotRef{}, err
	}
	var match []SnapshotRef
	for _, s := range all {
		if !s.HasCatalog {
			continue
		}
		if ref == "" || ref == "latest" || strings.HasPrefix(s.ID, strings.ToLower(ref)) {
			match = append(match, s)
		}
	}
	switch {
	case len(match) == 0:
		return SnapshotRef{}, fmt.Errorf("%w %q (list them with 'einvault snapshots'; backups made with --no-catalog have none)", ErrNoSnapshot, ref)
	case ref == "" || ref == "latest":
		return match[len(match)-1], nil
	case len(match) > 1:
		return SnapshotRef{}, fmt.Errorf("snapshot prefix %q is ambiguous (%d matches): give more characters", ref, len(match))
	}
	return match[0], nil
}

// Query selects invoices. Empty fields match everything; From and To are
// inclusive YYYY-MM-DD dates, Min and Max inclusive amounts payable.
type Query struct {
	Key, Content         string
	Number, Series, Form string
	Seller, Buyer        string
	From, To             string
	Min, Max             *float64
	Snapshot             string // restrict to invoices in this snapshot ID
	Limit                int
}

func (q Query) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) { conds = append(conds, cond); args = append(args, v) }
	if q.Key != "" {
		add("d.key = ?", q.Key)
	}
	if q.Content != "" {
		add("d.content = ?", strings.ToLower(q.Content))
	}
	if q.Number != "" {
		if n := numberOf(q.Number); n.Valid {
			add("d.num = ?", n.Int64)
		} else {
			add("d.number = ?", q.Number)
		}
	}
	if q.Series != "" {
		add("d.series = ?", q.Series)
	}
	if q.Form != "" {
		add("d.form = ?", q.Form)
	}
	if q.Seller != "" {
		add("d.seller = ?", q.Seller)
	}
	if q.Buyer != "" {
		add("d.buyer = ?", q.Buyer)
	}
	if q.From != "" {
		add("d.date >= ?", q.From)
	}
	if q.To != "" {
		add("d.date <= ?", q.To)
	}
	if q.Min != nil {
		add("d.amount >= ?", *q.Min)
	}
	if q.Max != nil {
		add("d.amount <= ?", *q.Max)
	}
	if q.Snapshot != "" {
		add("EXISTS(SELECT 1 FROM occ o JOIN snaps s ON s.id=o.snap WHERE o.doc=d.id AND s.sid=?)", q.Snapshot)
	} else {
		conds = append(conds, "EXISTS(SELECT 1 FROM occ o WHERE o.doc=d.id)")
	}
	return strings.Join(conds, " AND "), args
}

// Seen is one snapshot a version of an invoice is in.
type Seen struct {
	Snapshot string    `json:"snapshot"`
	Time     time.Time `json:"time"`
	Path     string    `json:"path"`
}

// Version is one content of an invoice (one set of bytes).
type Version struct {
	ContentID string `json:"content_id"`
	Inner     string `json:"inner,omitempty"`
	Size      uint64 `json:"size"`
	Total     string `json:"total,omitempty"`
	IssueDate string `json:"issue_date,omitempty"`
	Status    string `json:"signature_status"`
	FirstSeen Seen   `json:"first_seen"`
	LastSeen  Seen   `json:"last_seen"`
	Snapshots []Seen `json:"snapshots"`
	entry     *storedEntry
}

// Match is one invoice (one key) with its history across snapshots.
type Match struct {
	Key       string    `json:"key"`
	Seller    string    `json:"seller_tax_code"`
	Buyer     string    `json:"buyer_tax_code,omitempty"`
	Form      string    `json:"form"`
	Series    string    `json:"series"`
	Number    string    `json:"number"`
	IssueDate string    `json:"issue_date,omitempty"`
	Currency  string    `json:"currency,omitempty"`
	Total     string    `json:"total,omitempty"`
	Format    string    `json:"format"`
	FirstSeen Seen      `json:"first_seen"`
	LastSeen  Seen      `json:"last_seen"`
	Deleted   bool      `json:"deleted"`   // not in the latest snapshot of the paths it was last seen in
	Changed   bool      `json:"changed"`   // more than one version over time
	Duplicate bool      `json:"duplicate"` // different versions in the same snapshot
	Versions  []Version `json:"versions"`
}

// Find returns every invoice matching q with its history, ordered by key.
func (c *Cache) Find(ctx context.Context, q Query) ([]Match, error) {
	where, args := q.where()
	limit := q.Limit
	if limit <= 0 {
		limit = 1000
	}
	rows, err := c.db.QueryContext(ctx, `SELECT DISTINCT d.key FROM docs d WHERE `+where+` ORDER BY d.key LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return nil, err
		}
		keys = append(keys, k)
	}
	rows.Close()
	snaps, err := c.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Match, 0, len(keys))
	for _, k := range keys {
		m, err := c.history(ctx, k, snaps)
		if err != nil {
			return nil, err
		}
		if m != nil {
			out = append(out, *m)
		}
	}
	return out, nil
}

// versions loads every version of one key with the snapshots it is in.
func (c *Cache) versions(ctx context.Context, where string, args ...any) ([]Version, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT d.data, s.sid, s.time, o.path,
		COALESCE((SELECT sc.status FROM sigcheck sc WHERE sc.content=d.content AND sc.inner=d.inner), d.status)
		FROM docs d JOIN occ o ON o.doc=d.id JOIN snaps s ON s.id=o.snap
		WHERE `+where+` ORDER BY d.id, s.time, s.sid`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Version
	var last string
	for rows.Next() {
		var data, sid, t, p, status string
		if err := rows.Scan(&data, &sid, &t, &p, &status); err != nil {
			return nil, err
		}
		tm, _ := time.Parse(time.RFC3339Nano, t)
		seen := Seen{Snapshot: sid, Time: tm, Path: p}
		if len(out) == 0 || data != last {
			var se storedEntry
			if err := json.Unmarshal([]byte(data), &se); err != nil {
				return nil, fmt.Errorf("catalog cache entry: %w (run 'einvault invoices cache rebuild')", err)
			}
			out = append(out, Version{ContentID: se.ContentID, Inner: se.Inner, Size: se.Size, Total: se.Total,
				IssueDate: se.IssueDate, Status: status, FirstSeen: seen, entry: &se})
			last = data
		}
		v := &out[len(out)-1]
		v.Snapshots = append(v.Snapshots, seen)
		v.LastSeen = seen
	}
	return out, rows.Err()
}

func (c *Cache) history(ctx context.Context, key string, snaps []SnapshotRef) (*Match, error) {
	vs, err := c.versions(ctx, "d.key = ?", key)
	if err != nil || len(vs) == 0 {
		return nil, err
	}
	return matchOf(key, vs, snaps), nil
}

// matchOf sums up the versions of one key (at least one).
func matchOf(key string, vs []Version, snaps []SnapshotRef) *Match {
	latest := vs[0]
	m := &Match{Key: key, FirstSeen: vs[0].FirstSeen, LastSeen: vs[0].LastSeen, Versions: vs, Changed: len(vs) > 1}
	inSnap := map[string]int{}
	for _, v := range vs {
		if v.FirstSeen.Time.Before(m.FirstSeen.Time) {
			m.FirstSeen = v.FirstSeen
		}
		if v.LastSeen.Time.After(m.LastSeen.Time) {
			m.LastSeen = v.LastSeen
		}
		if v.LastSeen.Time.After(latest.LastSeen.Time) {
			latest = v
		}
		seenHere := map[string]bool{}
		for _, s := range v.Snapshots {
			if !seenHere[s.Snapshot] {
				seenHere[s.Snapshot] = true
				inSnap[s.Snapshot]++
			}
		}
	}
	for _, n := range inSnap {
		if n > 1 {
			m.Duplicate = true
		}
	}
	e := latest.entry
	m.Seller, m.Buyer, m.Form, m.Series, m.Number = e.SellerTaxCode, e.BuyerTaxCode, e.Form, e.Series, e.Number
	m.IssueDate, m.Currency, m.Total, m.Format = e.IssueDate, e.Currency, e.Total, string(e.Format)
	m.Deleted = deletedAfter(m.LastSeen.Snapshot, snaps)
	return m
}

// deletedAfter reports whether a newer cataloged snapshot of the same
// paths exists than the one an invoice was last seen in.
func deletedAfter(last string, snaps []SnapshotRef) bool {
	var ref *SnapshotRef
	for i := range snaps {
		if snaps[i].ID == last {
			ref = &snaps[i]
		}
	}
	if ref == nil {
		return false
	}
	for _, s := range snaps {
		if s.HasCatalog && s.Time.After(ref.Time) && samePaths(s.Paths, ref.Paths) {
			return true
		}
	}
	return false
}

func samePaths(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Located is one stored invoice file ready to be read back.
type Located struct {
	Entry    Entry
	Packs    map[int]Pack
	Snapshot string
	Path     string // path in that snapshot
}

// ErrNotFound is returned when no cataloged invoice matches a key.
var ErrNotFound = errors.New("no invoice matches")

// Locate finds the stored file of one invoice: ref is a key
// (SELLERMST/FORM/SERIES/NUMBER) or a content ID; snapshot restricts it
// to one snapshot, otherwise the newest snapshot holding it is used. Two
// different versions in that snapshot are an error naming their content
// IDs.
func (c *Cache) Locate(ctx context.Context, ref, snapshot string) (*Located, error) {
	where, args := "d.key = ?", []any{ref}
	if isContentID(ref) {
		where, args = "d.content = ?", []any{strings.ToLower(ref)}
	}
	if snapshot != "" {
		where += " AND s.sid = ?"
		args = append(args, snapshot)
	}
	rows, err := c.db.QueryContext(ctx, `SELECT d.data, s.sid, o.path FROM docs d JOIN occ o ON o.doc=d.id JOIN snaps s ON s.id=o.snap
		WHERE `+where+` ORDER BY s.time DESC, s.sid DESC LIMIT 64`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var found []Located
	for rows.Next() {
		var data, sid, p string
		if err := rows.Scan(&data, &sid, &p); err != nil {
			return nil, err
		}
		if len(found) > 0 && found[0].Snapshot != sid {
			break
		}
		var se storedEntry
		if err := json.Unmarshal([]byte(data), &se); err != nil {
			return nil, fmt.Errorf("catalog cache entry: %w (run 'einvault invoices cache rebuild')", err)
		}
		found = append(found, Located{Entry: se.Entry, Packs: se.Packs, Snapshot: sid, Path: p})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(found) == 0 {
		where := ""
		if snapshot != "" {
			where = " in snapshot " + snapshot[:8]
		}
		return nil, fmt.Errorf("%w %q%s (search with 'einvault invoices find')", ErrNotFound, ref, where)
	}
	distinct := map[string]bool{}
	for _, f := range found {
		distinct[f.Entry.ContentID] = true
	}
	if len(distinct) > 1 {
		var ids []string
		for id := range distinct {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return nil, fmt.Errorf("%q has %d different versions in snapshot %s: restore one by content ID (%s)", ref, len(ids), found[0].Snapshot[:8], strings.Join(ids, ", "))
	}
	f := found[0]
	f.Entry.Path = f.Path
	return &f, nil
}

func isContentID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range strings.ToLower(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Entries returns every entry of one cached snapshot (for verify).
func (c *Cache) Entries(ctx context.Context, snapshot string) ([]Located, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT d.data, o.path FROM docs d JOIN occ o ON o.doc=d.id JOIN snaps s ON s.id=o.snap WHERE s.sid=? ORDER BY o.path, d.inner`, snapshot)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Located
	for rows.Next() {
		var data, p string
		if err := rows.Scan(&data, &p); err != nil {
			return nil, err
		}
		var se storedEntry
		if err := json.Unmarshal([]byte(data), &se); err != nil {
			return nil, err
		}
		se.Path = p
		out = append(out, Located{Entry: se.Entry, Packs: se.Packs, Snapshot: snapshot, Path: p})
	}
	return out, rows.Err()
}
