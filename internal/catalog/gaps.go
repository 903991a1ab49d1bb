package catalog

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// GapQuery restricts gap detection.
type GapQuery struct {
	Seller, Series string
	Year           string // YYYY
	Snapshot       string // snapshot ID; "" = latest with a catalog
	MaxListed      int    // numbers listed per group and kind; default 10000
}

// Missing is one number absent from the snapshot.
type Missing struct {
	Number int64 `json:"number"`
	// LastSnapshot is the newest snapshot that still held the invoice
	// ("" when no snapshot ever did); restore it from there.
	LastSnapshot string `json:"last_snapshot,omitempty"`
	Key          string `json:"key,omitempty"`
}

// Recorded is a number absent from the files whose cancellation or
// replacement is on record.
type Recorded struct {
	Number int64  `json:"number"`
	Status string `json:"status"`
	Source string `json:"source,omitempty"`
}

// Duplicate is a number present with different bytes in one snapshot.
type Duplicate struct {
	Number   int64    `json:"number"`
	Key      string   `json:"key"`
	Contents []string `json:"content_ids"`
	Paths    []string `json:"paths"`
}

// GapGroup is one numbering sequence: seller, form, series and year.
type GapGroup struct {
	Seller     string      `json:"seller_tax_code"`
	Form       string      `json:"form"`
	Series     string      `json:"series"`
	Year       string      `json:"year"`
	First      int64       `json:"first"`
	Last       int64       `json:"last"`
	Present    int         `json:"present"`
	Missing    []Missing   `json:"missing"`
	Recorded   []Recorded  `json:"cancelled_or_replaced"`
	Duplicates []Duplicate `json:"duplicates"`
	Truncated  bool        `json:"truncated,omitempty"`
}

// GapReport is the result of Gaps.
type GapReport struct {
	Snapshot string     `json:"snapshot"`
	Groups   []GapGroup `json:"groups"`
	Missing  int        `json:"missing"`
	Dupes    int        `json:"duplicates"`
	Recorded int        `json:"cancelled_or_replaced"`
}

type gapKey struct{ seller, form, series, year string }

type docRow struct {
	id      int64
	num     int64
	key     string
	content string
	path    string
}

// Gaps finds, for every numbering sequence the snapshot's invoices
// belong to (and every sequence any snapshot held), the numbers missing
// between the lowest and highest number ever seen, the snapshot each
// missing invoice was last in, numbers present twice with different
// bytes, and numbers cancelled or replaced on record (not gaps).
func (c *Cache) Gaps(ctx context.Context, q GapQuery) (*GapReport, error) {
	snap, err := c.ResolveSnapshot(ctx, q.Snapshot)
	if err != nil {
		return nil, err
	}
	if q.MaxListed <= 0 {
		q.MaxListed = 10000
	}
	conds := []string{"d.num IS NOT NULL"}
	var args []any
	if q.Seller != "" {
		conds, args = append(conds, "d.seller = ?"), append(args, q.Seller)
	}
	if q.Series != "" {
		conds, args = append(conds, "d.series = ?"), append(args, q.Series)
	}
	if q.Year != "" {
		conds, args = append(conds, "substr(d.date,1,4) = ?"), append(args, q.Year)
	}
	snapTime, err := c.snapTimes(ctx)
	if err != nil {
		return nil, err
	}
	// Every version ever seen, with the newest snapshot holding it and
	// whether the chosen snapshot holds it.
	rows, err := c.db.QueryContext(ctx, `SELECT d.id, d.seller, d.form, d.series, substr(d.date,1,4), d.num, d.key, d.content,
		(SELECT s.sid FROM occ o JOIN snaps s ON s.id=o.snap WHERE o.doc=d.id ORDER BY s.time DESC, s.sid DESC LIMIT 1),
		(SELECT o.path FROM occ o WHERE o.doc=d.id AND o.snap=? LIMIT 1)
		FROM docs d WHERE `+strings.Join(conds, " AND ")+` AND EXISTS(SELECT 1 FROM occ o WHERE o.doc=d.id)`, append([]any{snap.row}, args...)...)
	if err != nil {
		return nil, err
	}
	type group struct {
		present map[int64][]docRow
		last    map[int64]Missing
		lo, hi  int64
	}
	groups := map[gapKey]*group{}
	for rows.Next() {
		var r docRow
		var k gapKey
		var lastSnap string
		var path *string
		if err := rows.Scan(&r.id, &k.seller, &k.form, &k.series, &k.year, &r.num, &r.key, &r.content, &lastSnap, &path); err != nil {
			rows.Close()
			return nil, err
		}
		g := groups[k]
		if g == nil {
			g = &group{present: map[int64][]docRow{}, last: map[int64]Missing{}, lo: r.num, hi: r.num}
			groups[k] = g
		}
		g.lo, g.hi = min(g.lo, r.num), max(g.hi, r.num)
		if path != nil {
			r.path = *path
			g.present[r.num] = append(g.present[r.num], r)
		}
		if m, ok := g.last[r.num]; !ok || snapTime[lastSnap] > snapTime[m.LastSnapshot] {
			g.last[r.num] = Missing{Number: r.num, LastSnapshot: lastSnap, Key: r.key}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	recorded, err := c.statusByNumber(ctx)
	if err != nil {
		return nil, err
	}
	rep := &GapReport{Snapshot: snap.ID}
	for k, g := range groups {
		gg := GapGroup{Seller: k.seller, Form: k.form, Series: k.series, Year: k.year, First: g.lo, Last: g.hi, Present: len(g.present)}
		if g.hi-g.lo > maxRange {
			// not a numbering sequence (20-digit Chinese numbers, IDs):
			// only duplicates are reported
			gg.Truncated = true
			for n, docs := range g.present {
				if d, ok := duplicateOf(n, docs); ok {
					gg.Duplicates = append(gg.Duplicates, d)
				}
			}
			rep.Dupes += len(gg.Duplicates)
			rep.Groups = append(rep.Groups, gg)
			continue
		}
		for n := g.lo; n <= g.hi; n++ {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if docs, ok := g.present[n]; ok {
				if d, ok := duplicateOf(n, docs); ok {
					gg.Duplicates = append(gg.Duplicates, d)
				}
				continue
			}
			if st, ok := recorded[recKey{k.seller, k.form, k.series, n}]; ok {
				gg.Recorded = append(gg.Recorded, Recorded{Number: n, Status: st.Status, Source: st.Source})
				continue
			}
			if len(gg.Missing) >= q.MaxListed {
				gg.Truncated = true
				rep.Missing++
				continue
			}
			m, ok := g.last[n]
			if !ok {
				m = Missing{Number: n}
			} else if snapTime[m.LastSnapshot] > snapTime[snap.ID] {
				// only newer snapshots held it: not a gap of this one's past
				m.LastSnapshot = ""
			}
			gg.Missing = append(gg.Missing, m)
		}
		rep.Missing += len(gg.Missing)
		rep.Dupes += len(gg.Duplicates)
		rep.Recorded += len(gg.Recorded)
		rep.Groups = append(rep.Groups, gg)
	}
	sort.Slice(rep.Groups, func(i, j int) bool {
		a, b := rep.Groups[i], rep.Groups[j]
		return fmt.Sprint(a.Seller, "\x00", a.Form, "\x00", a.Series, "\x00", a.Year) < fmt.Sprint(b.Seller, "\x00", b.Form, "\x00", b.Series, "\x00", b.Year)
	})
	return rep, nil
}

// maxRange is the widest number range checked for gaps.
const maxRange = 10_000_000

func duplicateOf(n int64, docs []docRow) (Duplicate, bool) {
	contents := map[string]bool{}
	for _, d := range docs {
		contents[d.content] = true
	}
	if len(contents) < 2 {
		return Duplicate{}, false
	}
	d := Duplicate{Number: n, Key: docs[0].key}
	for _, x := range docs {
		d.Contents = append(d.Contents, x.content)
		d.Paths = append(d.Paths, x.path)
	}
	return d, true
}

type recKey struct {
	seller, form, series string
	num                  int64
}

func (c *Cache) statusByNumber(ctx context.Context) (map[recKey]StatusRecord, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT key, status, detail, source, date FROM status WHERE status IN ('cancelled', 'replaced')`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[recKey]StatusRecord{}
	for rows.Next() {
		var r StatusRecord
		if err := rows.Scan(&r.Key, &r.Status, &r.Detail, &r.Source, &r.Date); err != nil {
			return nil, err
		}
		parts := strings.Split(r.Key, "/")
		if len(parts) != 4 {
			continue
		}
		n := numberOf(parts[3])
		if !n.Valid {
			continue
		}
		out[recKey{parts[0], parts[1], parts[2], n.Int64}] = r
	}
	return out, rows.Err()
}

func (c *Cache) snapTimes(ctx context.Context) (map[string]string, error) {
	snaps, err := c.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range snaps {
		out[s.ID] = s.Time.UTC().Format("2006-01-02T15:04:05.000000000Z")
	}
	return out, nil
}

// Stats counts the invoices of one snapshot.
type Stats struct {
	Snapshot  string         `json:"snapshot"`
	Time      string         `json:"time"`
	Total     int            `json:"total"`
	Files     int            `json:"files"`
	Rejected  int            `json:"rejected_files"`
	BySeller  map[string]int `json:"by_seller"`
	BySeries  map[string]int `json:"by_series"` // SELLERMST/FORM/SERIES
	ByMonth   map[string]int `json:"by_month"`  // YYYY-MM of the issue date
	ByStatus  map[string]int `json:"by_signature_status"`
	ByFormat  map[string]int `json:"by_format"`
	Duplicate int            `json:"duplicate_keys"`
}

// Stats counts the invoices in a snapshot ("" = latest with a catalog).
func (c *Cache) Stats(ctx context.Context, snapshot string) (*Stats, error) {
	snap, err := c.ResolveSnapshot(ctx, snapshot)
	if err != nil {
		return nil, err
	}
	st := &Stats{Snapshot: snap.ID, Time: snap.Time.UTC().Format("2006-01-02T15:04:05Z"), BySeller: map[string]int{}, BySeries: map[string]int{},
		ByMonth: map[string]int{}, ByStatus: map[string]int{}, ByFormat: map[string]int{}}
	rows, err := c.db.QueryContext(ctx, `SELECT d.seller, d.form, d.series, substr(d.date,1,7),
		COALESCE((SELECT sc.status FROM sigcheck sc WHERE sc.content=d.content AND sc.inner=d.inner), d.status), d.format, d.key, o.path
		FROM occ o JOIN docs d ON d.id=o.doc WHERE o.snap=?`, snap.row)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	keys := map[string]int{}
	files := map[string]bool{}
	for rows.Next() {
		var seller, form, series, month, status, format, key, p string
		if err := rows.Scan(&seller, &form, &series, &month, &status, &format, &key, &p); err != nil {
			return nil, err
		}
		st.Total++
		st.BySeller[seller]++
		st.BySeries[seller+"/"+form+"/"+series]++
		if month == "" {
			month = "unknown"
		}
		st.ByMonth[month]++
		st.ByStatus[status]++
		st.ByFormat[format]++
		keys[key]++
		files[p] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, n := range keys {
		if n > 1 {
			st.Duplicate++
		}
	}
	st.Files = len(files)
	if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM rejected WHERE snap=?`, snap.row).Scan(&st.Rejected); err != nil {
		return nil, err
	}
	return st, nil
}

// StatusRecords returns every imported status record, by key.
func (c *Cache) StatusRecords(ctx context.Context) ([]StatusRecord, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT key, status, detail, source, date FROM status ORDER BY key, status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StatusRecord
	for rows.Next() {
		var r StatusRecord
		if err := rows.Scan(&r.Key, &r.Status, &r.Detail, &r.Source, &r.Date); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
