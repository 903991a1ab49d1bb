package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/einvault/einvault/internal/config"
	"github.com/einvault/einvault/internal/notify"
)

// WALLocation is the newest archived WAL file in one place: the
// repository or one of its copies.
type WALLocation struct {
	Name     string    // "repository" or the copy's name
	Location string    // where it is
	Newest   string    // newest WAL file name ("" when none is archived)
	Time     time.Time // when it was stored
	Err      string    // the place could not be listed
}

// WALProber finds the newest archived WAL file in the repository and in
// each copy (the command line lists wal/ of each storage).
type WALProber interface {
	NewestWAL(ctx context.Context, cfg *config.Config) []WALLocation
}

// WALState is one place's WAL freshness as last checked, for 'daemon
// status'.
type WALState struct {
	Name     string        `json:"name"`
	Location string        `json:"location"`
	Newest   string        `json:"newest,omitempty"`
	Time     time.Time     `json:"newest_time,omitempty"`
	Checked  time.Time     `json:"checked"`
	MaxAge   time.Duration `json:"max_age_ns"`
	Error    string        `json:"error,omitempty"`
}

// Age is how old the newest WAL file was at now (-1 when none).
func (w WALState) Age(now time.Time) time.Duration {
	if w.Time.IsZero() {
		return -1
	}
	return now.Sub(w.Time)
}

// Stale reports whether the WAL at this place is older than allowed.
func (w WALState) Stale(now time.Time) bool {
	return w.Error != "" || w.Time.IsZero() || now.Sub(w.Time) > w.MaxAge
}

const walSchema = `CREATE TABLE IF NOT EXISTS daemon_wal (
	name TEXT PRIMARY KEY,
	location TEXT NOT NULL,
	newest TEXT NOT NULL,
	newest_time INTEGER NOT NULL,
	checked INTEGER NOT NULL,
	max_age INTEGER NOT NULL,
	error TEXT NOT NULL
)`

func (s *State) saveWAL(ctx context.Context, w WALState) error {
	if err := s.exec(ctx, walSchema); err != nil {
		return err
	}
	return s.exec(ctx, `INSERT INTO daemon_wal (name, location, newest, newest_time, checked, max_age, error) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET location = excluded.location, newest = excluded.newest, newest_time = excluded.newest_time,
		checked = excluded.checked, max_age = excluded.max_age, error = excluded.error`,
		w.Name, w.Location, w.Newest, ts(w.Time), ts(w.Checked), int64(w.MaxAge), w.Error)
}

// WAL returns the WAL freshness of every place as last checked.
func (s *State) WAL(ctx context.Context) ([]WALState, error) {
	if _, err := s.db.ExecContext(ctx, walSchema); err != nil {
		return nil, fmt.Errorf("daemon state: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT name, location, newest, newest_time, checked, max_age, error FROM daemon_wal ORDER BY name = 'repository' DESC, name`)
	if err != nil {
		return nil, fmt.Errorf("daemon state: %w", err)
	}
	defer rows.Close()
	var out []WALState
	for rows.Next() {
		var w WALState
		var nt, ch, ma int64
		if err := rows.Scan(&w.Name, &w.Location, &w.Newest, &nt, &ch, &ma, &w.Error); err != nil {
			return nil, fmt.Errorf("daemon state: %w", err)
		}
		w.Time, w.Checked, w.MaxAge = fromTS(nt), fromTS(ch), time.Duration(ma)
		out = append(out, w)
	}
	return out, rows.Err()
}

// walMaxAge is the tightest wal_max_age of the classes with continuous
// WAL that a job uses (0: no job archives WAL continuously).
func walMaxAge(cfg *config.Config) (time.Duration, string) {
	var maxAge time.Duration
	var class string
	for _, name := range cfg.JobNames() {
		j := cfg.Jobs[name]
		cl := cfg.Classes[j.Class]
		if cl == nil || !cl.ContinuousWAL || cl.WALMaxAgeDur <= 0 {
			continue
		}
		db := false
		for _, s := range j.Sources {
			db = db || (cfg.Sources[s] != nil && cfg.Sources[s].Type() == "database")
		}
		if db && (maxAge == 0 || cl.WALMaxAgeDur < maxAge) {
			maxAge, class = cl.WALMaxAgeDur, cl.Name
		}
	}
	return maxAge, class
}

// CheckWAL checks that the newest archived WAL file in the repository
// and in each copy is younger than the wal_max_age of the continuous-WAL
// classes, and raises a stale-WAL alert for each place where it is not
// (once per episode: again only after that place was fresh in between).
// A place where no WAL was ever archived counts as stale once the daemon
// has run longer than the maximum age; a place that cannot be listed is
// reported too. The daemon calls it every daemon.wal_check_interval.
func (d *Daemon) CheckWAL(ctx context.Context) {
	cfg := d.Config()
	if d.opts.WAL == nil {
		return
	}
	maxAge, class := walMaxAge(cfg)
	if maxAge <= 0 {
		return
	}
	now := d.clock.Now()
	for _, loc := range d.opts.WAL.NewestWAL(ctx, cfg) {
		w := WALState{Name: loc.Name, Location: loc.Location, Newest: loc.Newest, Time: loc.Time, Checked: now, MaxAge: maxAge, Error: loc.Err}
		if err := d.state.saveWAL(ctx, w); err != nil {
			d.log.Error("daemon state not written", "err", err)
		}
		stale := w.Stale(now)
		var msg string
		fields := map[string]string{"place": w.Name, "location": w.Location, "max_age": maxAge.String(), "class": class}
		switch {
		case w.Error != "":
			msg = fmt.Sprintf("The archived WAL in %s (%s) cannot be checked: %s", w.Name, w.Location, w.Error)
			fields["error"] = w.Error
		case w.Time.IsZero():
			if now.Sub(d.startedAt()) <= maxAge {
				stale = false // give archiving time to deliver its first file
			}
			msg = fmt.Sprintf("No WAL has been archived in %s (%s): continuous archiving of %s is not working (check archive_command)", w.Name, w.Location, class)
		default:
			age := now.Sub(w.Time)
			fields["age"], fields["newest"] = age.Round(time.Second).String(), w.Newest
			msg = fmt.Sprintf("The newest archived WAL in %s (%s) is %s old, more than the %s allowed for %s: invoices written since are not protected (check archive_command, archive_timeout and the storage)",
				w.Name, w.Location, age.Round(time.Second), maxAge, class)
		}
		key := "wal:" + w.Name
		d.mu.Lock()
		if !stale {
			delete(d.stale, key)
			d.mu.Unlock()
			continue
		}
		already := d.stale[key]
		d.stale[key] = true
		d.mu.Unlock()
		if already {
			continue
		}
		d.log.Warn(msg)
		d.notify(ctx, notify.Event{Kind: notify.KindStale, Severity: notify.SeverityCritical, Op: "wal", Message: msg, Fields: fields})
	}
}
