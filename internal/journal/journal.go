// Package journal is the operation log the procedures call log_file:
// every backup, restore, sync, check, drill, forget and prune with its
// start, end, job, source, copies, kind, counts, result, error and who
// or what started it. Entries go to the state database (SQLite), a
// human-readable log file and a JSON-lines file. An entry that cannot be
// written (disk full, read-only state directory) is kept in memory and
// spooled to a fallback directory, reported loudly and written later:
// never dropped silently.
package journal

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Results.
const (
	ResultOK       = "ok"
	ResultDegraded = "degraded" // done, but a copy, a pre-flight check or the verification had a problem
	ResultFailed   = "failed"
	ResultMissed   = "missed" // a scheduled run did not happen (daemon down, job could not start)
)

// Entry is one operation.
type Entry struct {
	ID         int64     `json:"id"`
	UID        string    `json:"uid"`
	Op         string    `json:"op"` // backup, restore, sync, check, drill, forget, prune, job
	Job        string    `json:"job"`
	Source     string    `json:"source,omitempty"`
	Copies     []string  `json:"copies,omitempty"`
	Kind       string    `json:"kind"` // full, incremental, differential ("" for non-backups)
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	Duration   float64   `json:"duration_seconds"`
	Files      int64     `json:"files"`
	BytesRead  int64     `json:"bytes_read"`
	BytesAdded int64     `json:"bytes_added"`
	Result     string    `json:"result"`
	Error      string    `json:"error"`
	ExitCode   int       `json:"exit_code"`
	StartedBy  string    `json:"started_by"` // user@host, daemon, schedule
	Snapshot   string    `json:"snapshot,omitempty"`
	Host       string    `json:"host,omitempty"`
	// Drills: the measured recovery time and recovery point (seconds)
	// and the class's targets (0: none).
	RTO       float64 `json:"rto_seconds,omitempty"`
	RPO       float64 `json:"rpo_seconds,omitempty"`
	TargetRTO float64 `json:"target_rto_seconds,omitempty"`
	TargetRPO float64 `json:"target_rpo_seconds,omitempty"`
	// Detail says what was done beyond the counts (e.g. which packs a
	// job's verification read).
	Detail string `json:"detail,omitempty"`
}

// Options configure a journal.
type Options struct {
	// SpoolDir receives entries that cannot be written to the state
	// directory; default os.TempDir()/einvault-journal-spool.
	SpoolDir string
	Logger   *slog.Logger
	// FailWrite, when set, is asked before each write to a sink
	// ("db", "log", "jsonl"); an error fails that write. Fault injection
	// for tests.
	FailWrite func(sink string) error
}

// Journal appends entries and reads them back.
type Journal struct {
	dir  string
	opts Options
	db   *sql.DB
	mu   sync.Mutex
	// pending entries, each with the sinks still to write.
	pending []pendingEntry
}

type pendingEntry struct {
	Entry Entry           `json:"entry"`
	Sinks map[string]bool `json:"sinks"`
}

const schema = `
CREATE TABLE IF NOT EXISTS journal (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	uid TEXT NOT NULL UNIQUE,
	op TEXT NOT NULL,
	job TEXT NOT NULL,
	source TEXT NOT NULL,
	copies TEXT NOT NULL,
	kind TEXT NOT NULL,
	start INTEGER NOT NULL,
	end INTEGER NOT NULL,
	files INTEGER NOT NULL,
	bytes_read INTEGER NOT NULL,
	bytes_added INTEGER NOT NULL,
	result TEXT NOT NULL,
	error TEXT NOT NULL,
	exit_code INTEGER NOT NULL,
	started_by TEXT NOT NULL,
	snapshot TEXT NOT NULL,
	host TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_start ON journal(start);
CREATE INDEX IF NOT EXISTS journal_job ON journal(job, start);
`

// addedColumns were added after the first schema; a journal written
// before them gets them (with their defaults) when it is opened.
var addedColumns = []struct{ name, def string }{
	{"rto", "REAL NOT NULL DEFAULT 0"},
	{"rpo", "REAL NOT NULL DEFAULT 0"},
	{"target_rto", "REAL NOT NULL DEFAULT 0"},
	{"target_rpo", "REAL NOT NULL DEFAULT 0"},
	{"detail", "TEXT NOT NULL DEFAULT ''"},
}

// migrate adds the columns a journal of an older version lacks.
func migrate(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info('journal')`)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		have[n] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range addedColumns {
		if !have[c.name] {
			if _, err := db.ExecContext(ctx, `ALTER TABLE journal ADD COLUMN `+c.name+` `+c.def); err != nil {
				// Another process opening the same journal (the daemon
				// and a command started at the same moment) may have
				// added it between our look and our ALTER.
				var n int
				if qerr := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('journal') WHERE name = ?`, c.name).Scan(&n); qerr != nil || n == 0 {
					return err
				}
			}
		}
	}
	return nil
}

// File names in the state directory.
const (
	DBFile    = "einvault.db"
	LogFile   = "journal.log"
	JSONLFile = "journal.jsonl"
)

var sinks = []string{"db", "log", "jsonl"}

// Open opens (creating) the journal in the state directory dir. It fails
// only when dir cannot be used at all; entries spooled by earlier runs
// are written now.
func Open(ctx context.Context, dir string, opts Options) (*Journal, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SpoolDir == "" {
		opts.SpoolDir = filepath.Join(os.TempDir(), "einvault-journal-spool")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w (create it, or give --state-dir)", err)
	}
	db, err := OpenDB(ctx, filepath.Join(dir, DBFile))
	if err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("journal in %s: %w (is the state directory writable and not full?)", dir, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("journal in %s: upgrade the table: %w (is the state directory writable and not full?)", dir, err)
	}
	j := &Journal{dir: dir, opts: opts, db: db}
	j.loadSpool()
	if len(j.pending) > 0 {
		_ = j.Flush(ctx)
	}
	return j, nil
}

// OpenDB opens the state database at path, shared by the journal and the
// daemon's job state.
func OpenDB(ctx context.Context, path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("state database %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("state database %s: %w (is the state directory writable and not full?)", path, err)
	}
	return db, nil
}

// DB is the state database, for the daemon's own tables.
func (j *Journal) DB() *sql.DB { return j.db }

// Dir is the state directory.
func (j *Journal) Dir() string { return j.dir }

// Close writes what it can of the queue and closes the database. Entries
// still pending stay in the spool for the next Open.
func (j *Journal) Close() error {
	_ = j.Flush(context.Background())
	return j.db.Close()
}

func newUID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ErrNotRecorded matches the error of Record when an entry could not be
// written everywhere; it is queued and written later.
var ErrNotRecorded = errors.New("journal entry not recorded")

// Record appends e (its UID, End and Duration are filled in when empty).
// On failure the entry is queued (in memory and in the spool directory)
// and the error, matching ErrNotRecorded, says where it waits.
func (j *Journal) Record(ctx context.Context, e Entry) (Entry, error) {
	if e.UID == "" {
		e.UID = newUID()
	}
	if e.End.IsZero() {
		e.End = e.Start
	}
	e.Duration = e.End.Sub(e.Start).Seconds()
	e.Start, e.End = e.Start.UTC(), e.End.UTC()
	j.mu.Lock()
	defer j.mu.Unlock()
	p := pendingEntry{Entry: e, Sinks: map[string]bool{"db": true, "log": true, "jsonl": true}}
	err := j.write(ctx, &p)
	if err == nil {
		return p.Entry, nil
	}
	j.pending = append(j.pending, p)
	where := j.saveSpool()
	return p.Entry, fmt.Errorf("%w: %v; the entry is queued (%s) and will be written when the state directory %s works again (free space there)", ErrNotRecorded, err, where, j.dir)
}

// write writes p to every sink it still needs; p.Sinks keeps the failed.
func (j *Journal) write(ctx context.Context, p *pendingEntry) error {
	var errs []error
	for _, s := range sinks {
		if !p.Sinks[s] {
			continue
		}
		var err error
		if j.opts.FailWrite != nil {
			err = j.opts.FailWrite(s)
		}
		if err == nil {
			switch s {
			case "db":
				err = j.insert(ctx, &p.Entry)
			case "log":
				err = appendFile(filepath.Join(j.dir, LogFile), []byte(FormatLine(p.Entry)+"\n"))
			case "jsonl":
				var b []byte
				if b, err = json.Marshal(p.Entry); err == nil {
					err = appendFile(filepath.Join(j.dir, JSONLFile), append(b, '\n'))
				}
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
			continue
		}
		delete(p.Sinks, s)
	}
	return errors.Join(errs...)
}

func (j *Journal) insert(ctx context.Context, e *Entry) error {
	res, err := j.db.ExecContext(ctx, `INSERT OR IGNORE INTO journal (uid, op, job, source, copies, kind, start, end, files, bytes_read, bytes_added, result, error, exit_code, started_by, snapshot, host,
		rto, rpo, target_rto, target_rpo, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.UID, e.Op, e.Job, e.Source, strings.Join(e.Copies, ","), e.Kind, e.Start.UnixNano(), e.End.UnixNano(), e.Files, e.BytesRead, e.BytesAdded,
		e.Result, e.Error, e.ExitCode, e.StartedBy, e.Snapshot, e.Host, e.RTO, e.RPO, e.TargetRTO, e.TargetRPO, e.Detail)
	if err != nil {
		return err
	}
	if id, err := res.LastInsertId(); err == nil && id > 0 {
		e.ID = id
	}
	return nil
}

// appendFile appends b and syncs; a short write is undone so that the
// file never holds half a line.
func appendFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fi, _ := f.Stat()
	n, err := f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if err != nil && n > 0 && fi != nil {
		_ = f.Truncate(fi.Size())
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Pending is the number of queued entries.
func (j *Journal) Pending() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.pending)
}

// Flush writes queued entries; it returns the first error if some are
// still pending.
func (j *Journal) Flush(ctx context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.pending) == 0 {
		return nil
	}
	var left []pendingEntry
	var first error
	for _, p := range j.pending {
		if err := j.write(ctx, &p); err != nil {
			left = append(left, p)
			if first == nil {
				first = err
			}
		}
	}
	j.pending = left
	j.saveSpool()
	if first != nil {
		return fmt.Errorf("%w: %d entr(ies) still queued: %v", ErrNotRecorded, len(left), first)
	}
	j.opts.Logger.Info("journal: queued entries written")
	return nil
}

// spoolPaths are where the queue is kept between processes: the state
// directory (normal) and the spool directory (when the state directory
// is full).
func (j *Journal) spoolPaths() []string {
	return []string{filepath.Join(j.dir, "journal.pending.json"), filepath.Join(j.opts.SpoolDir, spoolName(j.dir))}
}

func spoolName(dir string) string {
	r := strings.NewReplacer("/", "_", "\\", "_", ":", "_")
	return "pending" + r.Replace(dir) + ".json"
}

// saveSpool writes the queue to the first spool path that takes it, and
// removes it from the others; it returns where it went.
func (j *Journal) saveSpool() string {
	paths := j.spoolPaths()
	if len(j.pending) == 0 {
		for _, p := range paths {
			_ = os.Remove(p)
		}
		return ""
	}
	b, _ := json.Marshal(j.pending)
	for i, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			continue
		}
		tmp := p + ".tmp"
		err := os.WriteFile(tmp, b, 0o600)
		if err == nil {
			err = os.Rename(tmp, p)
		}
		if err != nil {
			_ = os.Remove(tmp)
			continue
		}
		for k, o := range paths {
			if k != i {
				_ = os.Remove(o)
			}
		}
		return "spooled to " + p
	}
	return "in memory only: no spool directory is writable"
}

func (j *Journal) loadSpool() {
	seen := map[string]bool{}
	for _, p := range j.spoolPaths() {
		b, err := os.ReadFile(p)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				j.opts.Logger.Warn("journal spool unreadable", "file", p, "err", err)
			}
			continue
		}
		var ps []pendingEntry
		if err := json.Unmarshal(b, &ps); err != nil {
			j.opts.Logger.Warn("journal spool damaged; kept for inspection", "file", p, "err", err)
			_ = os.Rename(p, p+".damaged")
			continue
		}
		for _, e := range ps {
			if !seen[e.Entry.UID] {
				seen[e.Entry.UID] = true
				j.pending = append(j.pending, e)
			}
		}
	}
}

// FormatLine is the human-readable log line of an entry.
func FormatLine(e Entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-8s %-7s", e.Start.Local().Format("2006-01-02 15:04:05"), strings.ToUpper(e.Result), e.Op)
	if e.Job != "" {
		fmt.Fprintf(&b, " job=%s", e.Job)
	}
	if e.Kind != "" {
		fmt.Fprintf(&b, " kind=%s", e.Kind)
	}
	fmt.Fprintf(&b, " duration=%s", (time.Duration(e.Duration * float64(time.Second))).Round(time.Millisecond))
	if e.Files > 0 || e.BytesRead > 0 || e.BytesAdded > 0 {
		fmt.Fprintf(&b, " files=%d read=%d added=%d", e.Files, e.BytesRead, e.BytesAdded)
	}
	if e.Source != "" {
		fmt.Fprintf(&b, " source=%q", e.Source)
	}
	if len(e.Copies) > 0 {
		fmt.Fprintf(&b, " copies=%s", strings.Join(e.Copies, ","))
	}
	if e.Snapshot != "" {
		fmt.Fprintf(&b, " snapshot=%s", e.Snapshot)
	}
	if e.RTO > 0 || e.TargetRTO > 0 {
		fmt.Fprintf(&b, " rto=%s", secs(e.RTO))
		if e.TargetRTO > 0 {
			fmt.Fprintf(&b, "/%s", secs(e.TargetRTO))
		}
	}
	if e.RPO > 0 || e.TargetRPO > 0 {
		fmt.Fprintf(&b, " rpo=%s", secs(e.RPO))
		if e.TargetRPO > 0 {
			fmt.Fprintf(&b, "/%s", secs(e.TargetRPO))
		}
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, " detail=%q", e.Detail)
	}
	fmt.Fprintf(&b, " by=%s exit=%d", e.StartedBy, e.ExitCode)
	if e.Error != "" {
		fmt.Fprintf(&b, " error=%q", e.Error)
	}
	return b.String()
}

func secs(s float64) string {
	d := time.Duration(s * float64(time.Second))
	if d >= time.Minute {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

// Filter selects entries.
type Filter struct {
	Since  time.Time
	Job    string
	Op     string
	Failed bool // failed, degraded and missed
	Limit  int  // newest N; 0: all
}

// List returns matching entries, oldest first, including queued ones.
func (j *Journal) List(ctx context.Context, f Filter) ([]Entry, error) {
	q := `SELECT id, uid, op, job, source, copies, kind, start, end, files, bytes_read, bytes_added, result, error, exit_code, started_by, snapshot, host,
		rto, rpo, target_rto, target_rpo, detail FROM journal WHERE 1=1`
	var args []any
	if !f.Since.IsZero() {
		q += ` AND start >= ?`
		args = append(args, f.Since.UnixNano())
	}
	if f.Job != "" {
		q += ` AND job = ?`
		args = append(args, f.Job)
	}
	if f.Op != "" {
		q += ` AND op = ?`
		args = append(args, f.Op)
	}
	if f.Failed {
		q += ` AND result != 'ok'`
	}
	q += ` ORDER BY start DESC, id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := j.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var copies string
		var start, end int64
		if err := rows.Scan(&e.ID, &e.UID, &e.Op, &e.Job, &e.Source, &copies, &e.Kind, &start, &end, &e.Files, &e.BytesRead, &e.BytesAdded,
			&e.Result, &e.Error, &e.ExitCode, &e.StartedBy, &e.Snapshot, &e.Host, &e.RTO, &e.RPO, &e.TargetRTO, &e.TargetRPO, &e.Detail); err != nil {
			return nil, fmt.Errorf("read journal: %w", err)
		}
		if copies != "" {
			e.Copies = strings.Split(copies, ",")
		}
		e.Start, e.End = time.Unix(0, start).UTC(), time.Unix(0, end).UTC()
		e.Duration = e.End.Sub(e.Start).Seconds()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	j.mu.Lock()
	for _, p := range j.pending {
		if p.Sinks["db"] && match(p.Entry, f) {
			out = append(out, p.Entry)
		}
	}
	j.mu.Unlock()
	// oldest first
	for a, b := 0, len(out)-1; a < b; a, b = a+1, b-1 {
		out[a], out[b] = out[b], out[a]
	}
	return out, nil
}

func match(e Entry, f Filter) bool {
	return (f.Since.IsZero() || !e.Start.Before(f.Since)) && (f.Job == "" || e.Job == f.Job) && (f.Op == "" || e.Op == f.Op) && (!f.Failed || e.Result != ResultOK)
}

// ReadJSONL reads a JSON-lines journal file (for tests and tools).
func ReadJSONL(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return out, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// SpoolOnly queues e in the spool when the journal cannot even be opened
// (state directory missing and not creatable); the next Open of dir
// writes it. It returns where the entry waits.
func SpoolOnly(dir string, opts Options, e Entry) (string, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SpoolDir == "" {
		opts.SpoolDir = filepath.Join(os.TempDir(), "einvault-journal-spool")
	}
	if e.UID == "" {
		e.UID = newUID()
	}
	j := &Journal{dir: dir, opts: opts}
	j.loadSpool()
	j.pending = append(j.pending, pendingEntry{Entry: e, Sinks: map[string]bool{"db": true, "log": true, "jsonl": true}})
	where := j.saveSpool()
	if strings.HasPrefix(where, "in memory") {
		return "", errors.New("no spool directory is writable")
	}
	return where, nil
}
