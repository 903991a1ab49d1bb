package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"   // MySQL and MariaDB
	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL
)

// ReconcileColumns documents the columns the reconcile query returns, by
// name (case-insensitive, any order). seller_tax_code and number are
// required; the others are compared when present.
var ReconcileColumns = []string{"seller_tax_code", "form", "series", "number", "issue_date", "total", "currency"}

// OpenDB opens the database a DSN names:
//
//	postgres://user:pass@host:port/db?sslmode=disable  (or postgresql://)
//	mysql://user:pass@host:port/db                      (MySQL, MariaDB; also mariadb://, or go-sql-driver
//	                                                    syntax after mysql://: user:pass@tcp(host:port)/db)
//	sqlite:/path/to/file.db                             (or a path ending in .db, .sqlite, .sqlite3)
func OpenDB(dsn string) (*sql.DB, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return sql.Open("pgx", dsn)
	case strings.HasPrefix(dsn, "mysql://"), strings.HasPrefix(dsn, "mariadb://"):
		cfg, err := mysqlConfig(dsn)
		if err != nil {
			return nil, err
		}
		return sql.Open("mysql", cfg)
	case strings.HasPrefix(dsn, "sqlite:"):
		return sql.Open("sqlite", "file:"+strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "//")+"?mode=ro")
	case strings.HasSuffix(dsn, ".db"), strings.HasSuffix(dsn, ".sqlite"), strings.HasSuffix(dsn, ".sqlite3"):
		return sql.Open("sqlite", "file:"+dsn+"?mode=ro")
	}
	return nil, fmt.Errorf("database %q: unknown kind: use postgres://..., mysql://user:pass@tcp(host:port)/db or sqlite:/path/file.db", redact(dsn))
}

// mysqlConfig turns mysql://user:pass@host:port/db (or the driver's own
// syntax after mysql://) into a go-sql-driver DSN.
func mysqlConfig(dsn string) (string, error) {
	rest := dsn[strings.Index(dsn, "://")+3:]
	if strings.Contains(rest, "@tcp(") || strings.Contains(rest, "@unix(") {
		return rest, nil
	}
	u, err := url.Parse("mysql://" + rest)
	if err != nil {
		return "", fmt.Errorf("database %q: %w", redact(dsn), err)
	}
	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net, cfg.Addr = "tcp", u.Host
	if u.Port() == "" {
		cfg.Addr = u.Host + ":3306"
	}
	if sock := u.Query().Get("socket"); sock != "" {
		cfg.Net, cfg.Addr = "unix", sock
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	cfg.ParseTime = true
	return cfg.FormatDSN(), nil
}

func redact(dsn string) string {
	if i := strings.Index(dsn, "@"); i > 0 {
		if j := strings.Index(dsn, "://"); j >= 0 && j < i {
			return dsn[:j+3] + "***" + dsn[i:]
		}
		return "***" + dsn[i:]
	}
	return dsn
}

// DBRow is one invoice row from the database.
type DBRow struct {
	Seller    string `json:"seller_tax_code"`
	Form      string `json:"form,omitempty"`
	Series    string `json:"series,omitempty"`
	Number    string `json:"number"`
	IssueDate string `json:"issue_date,omitempty"`
	Total     string `json:"total,omitempty"`
	Currency  string `json:"currency,omitempty"`
	has       map[string]bool
}

// ReadRows runs the query and reads its rows (see ReconcileColumns).
func ReadRows(ctx context.Context, db *sql.DB, query string) ([]DBRow, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("run the reconcile query: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	pos := map[string]int{}
	for i, c := range cols {
		pos[strings.ToLower(c)] = i
	}
	for _, need := range []string{"seller_tax_code", "number"} {
		if _, ok := pos[need]; !ok {
			return nil, fmt.Errorf("the reconcile query returns no column %q: name the columns %s (e.g. SELECT mst AS seller_tax_code, ...)", need, strings.Join(ReconcileColumns, ", "))
		}
	}
	var out []DBRow
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		get := func(name string) string {
			i, ok := pos[name]
			if !ok {
				return ""
			}
			return asString(vals[i])
		}
		r := DBRow{Seller: get("seller_tax_code"), Form: get("form"), Series: get("series"), Number: get("number"),
			IssueDate: get("issue_date"), Total: get("total"), Currency: get("currency"), has: map[string]bool{}}
		for _, c := range ReconcileColumns {
			_, r.has[c] = pos[c]
		}
		if len(r.IssueDate) > 10 {
			r.IssueDate = r.IssueDate[:10]
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func asString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		return string(x)
	case string:
		return x
	case time.Time:
		return x.Format("2006-01-02")
	}
	return fmt.Sprint(v)
}

// Mismatch is a row and a file that disagree.
type Mismatch struct {
	Key   string `json:"key"`
	Field string `json:"field"`
	DB    string `json:"database"`
	File  string `json:"file"`
	Path  string `json:"path"`
}

// ReconcileReport is the result of Reconcile.
type ReconcileReport struct {
	Rows            int        `json:"rows"`
	Files           int        `json:"invoices"`
	Matched         int        `json:"matched"`
	RowsWithoutFile []DBRow    `json:"rows_without_file"`
	FilesWithoutRow []Located  `json:"files_without_row"`
	Mismatches      []Mismatch `json:"mismatches"`
	// With imported status records: what the tax authority has that the
	// files or the database lack, and invoices of a series on record the
	// authority does not list.
	AuthorityWithoutFile []StatusRecord `json:"authority_without_file,omitempty"`
	AuthorityWithoutRow  []StatusRecord `json:"authority_without_row,omitempty"`
	FilesNotOnRecord     []string       `json:"files_not_on_record,omitempty"`
}

// Clean reports whether database and files agree.
func (r *ReconcileReport) Clean() bool {
	return len(r.RowsWithoutFile) == 0 && len(r.FilesWithoutRow) == 0 && len(r.Mismatches) == 0 &&
		len(r.AuthorityWithoutFile) == 0 && len(r.AuthorityWithoutRow) == 0 && len(r.FilesNotOnRecord) == 0
}

// matchKey normalises seller/form/series/number; numbers compare as
// integers when they are numeric (00000011 = 11).
func matchKey(seller, form, series, number string) string {
	if n := numberOf(number); n.Valid {
		number = fmt.Sprint(n.Int64)
	}
	return strings.Join([]string{strings.TrimSpace(seller), strings.TrimSpace(form), strings.TrimSpace(series), strings.TrimSpace(number)}, "/")
}

func sameAmount(a, b string) bool {
	x, ok1 := new(big.Rat).SetString(strings.ReplaceAll(a, ",", ""))
	y, ok2 := new(big.Rat).SetString(strings.ReplaceAll(b, ",", ""))
	if !ok1 || !ok2 {
		return strings.TrimSpace(a) == strings.TrimSpace(b)
	}
	return x.Cmp(y) == 0
}

// Reconcile compares database rows, invoice files and status records.
// When the query has no form or series column, rows match files by
// seller and number alone.
func Reconcile(rows []DBRow, files []Located, status []StatusRecord) *ReconcileReport {
	rep := &ReconcileReport{Rows: len(rows), Files: len(files)}
	noForm := len(rows) > 0 && !rows[0].has["form"]
	noSeries := len(rows) > 0 && !rows[0].has["series"]
	fileKey := func(e *Entry) string {
		form, series := e.Form, e.Series
		if noForm {
			form = ""
		}
		if noSeries {
			series = ""
		}
		return matchKey(e.SellerTaxCode, form, series, e.Number)
	}
	byKey := map[string][]int{}
	for i := range files {
		k := fileKey(&files[i].Entry)
		byKey[k] = append(byKey[k], i)
	}
	used := make([]bool, len(files))
	rowKeys := map[string]bool{}
	for _, r := range rows {
		k := matchKey(r.Seller, r.Form, r.Series, r.Number)
		rowKeys[k] = true
		idx := byKey[k]
		if len(idx) == 0 {
			rep.RowsWithoutFile = append(rep.RowsWithoutFile, r)
			continue
		}
		rep.Matched++
		for _, i := range idx {
			used[i] = true
			e := &files[i].Entry
			if r.has["issue_date"] && r.IssueDate != "" && r.IssueDate != e.IssueDate {
				rep.Mismatches = append(rep.Mismatches, Mismatch{Key: e.Key(), Field: "issue_date", DB: r.IssueDate, File: e.IssueDate, Path: e.Path})
			}
			if r.has["total"] && r.Total != "" && !sameAmount(r.Total, e.Total) {
				rep.Mismatches = append(rep.Mismatches, Mismatch{Key: e.Key(), Field: "total", DB: r.Total, File: e.Total, Path: e.Path})
			}
			if r.has["currency"] && r.Currency != "" && e.Currency != "" && !strings.EqualFold(r.Currency, e.Currency) {
				rep.Mismatches = append(rep.Mismatches, Mismatch{Key: e.Key(), Field: "currency", DB: r.Currency, File: e.Currency, Path: e.Path})
			}
		}
	}
	for i := range files {
		if !used[i] {
			rep.FilesWithoutRow = append(rep.FilesWithoutRow, files[i])
		}
	}
	if len(status) > 0 {
		onRecord := map[string]bool{}
		series := map[string]bool{}
		for _, s := range status {
			p := strings.Split(s.Key, "/")
			if len(p) != 4 {
				continue
			}
			k := matchKey(p[0], p[1], p[2], p[3])
			onRecord[k] = true
			series[strings.Join(p[:3], "/")] = true
			if s.Status == "cancelled" {
				continue
			}
			fk := matchKey(p[0], ifEmpty(noForm, p[1]), ifEmpty(noSeries, p[2]), p[3])
			if len(byKey[matchKey(p[0], p[1], p[2], p[3])]) == 0 && len(byKey[fk]) == 0 {
				rep.AuthorityWithoutFile = append(rep.AuthorityWithoutFile, s)
			}
			if len(rows) > 0 && !rowKeys[fk] {
				rep.AuthorityWithoutRow = append(rep.AuthorityWithoutRow, s)
			}
		}
		for i := range files {
			e := &files[i].Entry
			if series[strings.Join([]string{e.SellerTaxCode, e.Form, e.Series}, "/")] && !onRecord[matchKey(e.SellerTaxCode, e.Form, e.Series, e.Number)] {
				rep.FilesNotOnRecord = append(rep.FilesNotOnRecord, e.Key())
			}
		}
	}
	sort.Slice(rep.RowsWithoutFile, func(i, j int) bool {
		a, b := rep.RowsWithoutFile[i], rep.RowsWithoutFile[j]
		return matchKey(a.Seller, a.Form, a.Series, a.Number) < matchKey(b.Seller, b.Form, b.Series, b.Number)
	})
	return rep
}

func ifEmpty(empty bool, s string) string {
	if empty {
		return ""
	}
	return s
}
