package daemon

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"time"
)

// State is the daemon's record of its jobs and of itself, in the state
// database beside the journal. Writes that fail (disk full) are logged by
// the caller's journal path; the daemon keeps running.
type State struct{ db *sql.DB }

const stateSchema = `
CREATE TABLE IF NOT EXISTS daemon_jobs (
	name TEXT PRIMARY KEY,
	schedule TEXT NOT NULL DEFAULT '',
	last_start INTEGER NOT NULL DEFAULT 0,
	last_end INTEGER NOT NULL DEFAULT 0,
	last_result TEXT NOT NULL DEFAULT '',
	last_error TEXT NOT NULL DEFAULT '',
	prev_result TEXT NOT NULL DEFAULT '',
	next_run INTEGER NOT NULL DEFAULT 0,
	running INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS daemon_status (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	pid INTEGER NOT NULL,
	host TEXT NOT NULL,
	started INTEGER NOT NULL,
	heartbeat INTEGER NOT NULL,
	config TEXT NOT NULL,
	config_error TEXT NOT NULL,
	stopped INTEGER NOT NULL
);
`

// OpenState prepares the state tables in db.
func OpenState(ctx context.Context, db *sql.DB) (*State, error) {
	if _, err := db.ExecContext(ctx, stateSchema); err != nil {
		return nil, fmt.Errorf("daemon state: %w (is the state directory writable and not full?)", err)
	}
	return &State{db: db}, nil
}

// JobState is one job's row.
type JobState struct {
	Name       string    `json:"name"`
	Schedule   string    `json:"schedule"`
	LastStart  time.Time `json:"last_start"`
	LastEnd    time.Time `json:"last_end"`
	LastResult string    `json:"last_result"`
	LastError  string    `json:"last_error"`
	PrevResult string    `json:"-"`
	NextRun    time.Time `json:"next_run"`
	Running    bool      `json:"running"`
}

func ts(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromTS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func (s *State) exec(ctx context.Context, q string, args ...any) error {
	_, err := s.db.ExecContext(context.WithoutCancel(ctx), q, args...)
	return err
}

// Started marks a job running.
func (s *State) Started(ctx context.Context, name string, at time.Time) error {
	return s.exec(ctx, `INSERT INTO daemon_jobs (name, last_start, running) VALUES (?, ?, 1)
		ON CONFLICT(name) DO UPDATE SET last_start = excluded.last_start, running = 1`, name, ts(at))
}

// Finished records a job's result.
func (s *State) Finished(ctx context.Context, name string, start, end time.Time, result, errMsg string) error {
	return s.exec(ctx, `INSERT INTO daemon_jobs (name, last_start, last_end, last_result, last_error, running) VALUES (?, ?, ?, ?, ?, 0)
		ON CONFLICT(name) DO UPDATE SET prev_result = daemon_jobs.last_result, last_start = excluded.last_start, last_end = excluded.last_end,
		last_result = excluded.last_result, last_error = excluded.last_error, running = 0`, name, ts(start), ts(end), result, errMsg)
}

// Planned records a job's schedule and next run.
func (s *State) Planned(ctx context.Context, name, sched string, next time.Time) error {
	return s.exec(ctx, `INSERT INTO daemon_jobs (name, schedule, next_run) VALUES (?, ?, ?)
		ON CONFLICT(name) DO UPDATE SET schedule = excluded.schedule, next_run = excluded.next_run`, name, sched, ts(next))
}

// ClearRunning resets jobs marked running by a daemon that died.
func (s *State) ClearRunning(ctx context.Context) error {
	return s.exec(ctx, `UPDATE daemon_jobs SET running = 0`)
}

// Job returns one job's state.
func (s *State) Job(ctx context.Context, name string) (JobState, bool) {
	js, err := s.Jobs(ctx)
	if err != nil {
		return JobState{}, false
	}
	for _, j := range js {
		if j.Name == name {
			return j, true
		}
	}
	return JobState{}, false
}

// Jobs returns every job's state, sorted by name.
func (s *State) Jobs(ctx context.Context) ([]JobState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, schedule, last_start, last_end, last_result, last_error, prev_result, next_run, running FROM daemon_jobs ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("daemon state: %w", err)
	}
	defer rows.Close()
	var out []JobState
	for rows.Next() {
		var j JobState
		var ls, le, nr int64
		var running int
		if err := rows.Scan(&j.Name, &j.Schedule, &ls, &le, &j.LastResult, &j.LastError, &j.PrevResult, &nr, &running); err != nil {
			return nil, fmt.Errorf("daemon state: %w", err)
		}
		j.LastStart, j.LastEnd, j.NextRun, j.Running = fromTS(ls), fromTS(le), fromTS(nr), running != 0
		out = append(out, j)
	}
	return out, rows.Err()
}

// Status is the daemon process's row.
type Status struct {
	PID         int       `json:"pid"`
	Host        string    `json:"host"`
	Started     time.Time `json:"started"`
	Heartbeat   time.Time `json:"heartbeat"`
	Config      string    `json:"config"`
	ConfigError string    `json:"config_error,omitempty"`
	Stopped     bool      `json:"stopped"`
}

// SetStatus writes the daemon's row.
func (s *State) SetStatus(ctx context.Context, st Status) error {
	stopped := 0
	if st.Stopped {
		stopped = 1
	}
	return s.exec(ctx, `INSERT INTO daemon_status (id, pid, host, started, heartbeat, config, config_error, stopped) VALUES (1, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET pid = excluded.pid, host = excluded.host, started = excluded.started, heartbeat = excluded.heartbeat,
		config = excluded.config, config_error = excluded.config_error, stopped = excluded.stopped`,
		st.PID, st.Host, ts(st.Started), ts(st.Heartbeat), st.Config, st.ConfigError, stopped)
}

// GetStatus reads the daemon's row; ok is false when no daemon ever ran.
func (s *State) GetStatus(ctx context.Context) (Status, bool, error) {
	var st Status
	var started, hb int64
	var stopped int
	err := s.db.QueryRowContext(ctx, `SELECT pid, host, started, heartbeat, config, config_error, stopped FROM daemon_status WHERE id = 1`).
		Scan(&st.PID, &st.Host, &started, &hb, &st.Config, &st.ConfigError, &stopped)
	if err == sql.ErrNoRows {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("daemon state: %w", err)
	}
	st.Started, st.Heartbeat, st.Stopped = fromTS(started), fromTS(hb), stopped != 0
	return st, true, nil
}

// Alive reports whether the recorded daemon looks alive at now: not
// stopped, a heartbeat within two minutes and, on this host, its process
// present.
func (st Status) Alive(now time.Time, host string) bool {
	if st.Stopped || now.Sub(st.Heartbeat) > 2*time.Minute {
		return false
	}
	if st.Host == host {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", st.PID)); err != nil {
			return false
		}
	}
	return true
}
