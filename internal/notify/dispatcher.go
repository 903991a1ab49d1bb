package notify

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the alert store
)

// ErrNoAlert is matched when an alert ID is unknown.
var ErrNoAlert = errors.New("no such alert")

// Dispatcher turns events into alerts, delivers them through a
// persistent outbox and escalates what nobody acknowledges.
type Dispatcher struct {
	cfg     Config
	db      *sql.DB
	senders map[string]Sender
	recips  map[string]Recipient
	sched   []time.Duration
	now     func() time.Time
	log     *slog.Logger
}

// Options configures a Dispatcher.
type Options struct {
	Env    Env                                 // secrets, HTTP client, clock for signatures
	Now    func() time.Time                    // the clock for escalation and retries
	Logger *slog.Logger                        // default slog.Default()
	Sender func(ChannelConfig) (Sender, error) // tests replace how senders are built; nil: NewSender
}

const schema = `
CREATE TABLE IF NOT EXISTS alerts (
	id TEXT PRIMARY KEY,
	created INTEGER NOT NULL,
	kind TEXT NOT NULL,
	severity TEXT NOT NULL,
	job TEXT NOT NULL,
	event TEXT NOT NULL,
	levels TEXT NOT NULL,
	next_level INTEGER NOT NULL,
	acked_at INTEGER,
	acked_by TEXT
);
CREATE TABLE IF NOT EXISTS deliveries (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	alert_id TEXT NOT NULL REFERENCES alerts(id),
	level INTEGER NOT NULL,
	recipient TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_try INTEGER NOT NULL,
	last_error TEXT NOT NULL DEFAULT '',
	delivered_at INTEGER,
	UNIQUE(alert_id, level, recipient)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(delivered_at, next_try);
`

// Open opens (creating if needed) the alert store at path and prepares
// the channels of cfg. A channel that cannot be built (a missing token)
// is an error: alerts must not be dropped because of a typo.
func Open(ctx context.Context, path string, cfg Config, opts Options) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Sender == nil {
		env := opts.Env
		opts.Sender = func(ch ChannelConfig) (Sender, error) { return NewSender(ch, env) }
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("alert store: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		return nil, fmt.Errorf("alert store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("alert store %s: %w (is the state directory writable and not full?)", path, err)
	}
	d := &Dispatcher{cfg: cfg, db: db, senders: map[string]Sender{}, recips: map[string]Recipient{},
		sched: cfg.EscalationSchedule(), now: opts.Now, log: opts.Logger}
	for _, ch := range cfg.Channels {
		s, err := opts.Sender(ch)
		if err != nil {
			db.Close()
			return nil, err
		}
		d.senders[ch.Name] = s
	}
	for _, r := range cfg.Recipients {
		d.recips[r.Name] = r
	}
	return d, nil
}

// Close closes the alert store.
func (d *Dispatcher) Close() error { return d.db.Close() }

func newAlertID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "A" + hex.EncodeToString(b[:])
}

// Notify records ev as an alert, queues its first level and tries to
// deliver at once. It returns the alert ID ("" when no rule matches).
// Delivery failures are not errors here: they stay in the outbox and
// Tick retries them; only a failure to record the alert is returned.
func (d *Dispatcher) Notify(ctx context.Context, ev Event) (string, error) {
	if ev.Time.IsZero() {
		ev.Time = d.now()
	}
	var levels [][]string
	for _, ru := range d.cfg.Rules {
		if !ru.matches(ev) {
			continue
		}
		for i, lv := range ru.Levels {
			if ev.Kind == KindSuccess && i > 0 {
				break // digests are never escalated
			}
			for len(levels) <= i {
				levels = append(levels, nil)
			}
			levels[i] = appendUnique(levels[i], lv...)
		}
	}
	if len(levels) == 0 {
		return "", nil
	}
	if ev.ID == "" {
		ev.ID = newAlertID()
	}
	evJSON, _ := json.Marshal(ev)
	lvJSON, _ := json.Marshal(levels)
	if _, err := d.db.ExecContext(ctx, `INSERT INTO alerts(id, created, kind, severity, job, event, levels, next_level) VALUES(?,?,?,?,?,?,?,0)`,
		ev.ID, d.now().UnixNano(), string(ev.Kind), string(ev.Severity), ev.Job, string(evJSON), string(lvJSON)); err != nil {
		return "", fmt.Errorf("record alert: %w", err)
	}
	if err := d.Tick(ctx); err != nil {
		d.log.Warn("alert queued, delivery will be retried", "alert", ev.ID, "err", err)
	}
	return ev.ID, nil
}

func appendUnique(dst []string, add ...string) []string {
	for _, a := range add {
		found := false
		for _, x := range dst {
			found = found || x == a
		}
		if !found {
			dst = append(dst, a)
		}
	}
	return dst
}

// Tick escalates unacknowledged alerts whose next level is due and
// delivers every queued message whose retry time has come. Call it
// every minute (the daemon does).
func (d *Dispatcher) Tick(ctx context.Context) error {
	if err := d.escalate(ctx); err != nil {
		return err
	}
	return d.deliver(ctx)
}

func (d *Dispatcher) escalate(ctx context.Context) error {
	rows, err := d.db.QueryContext(ctx, `SELECT id, created, levels, next_level FROM alerts WHERE acked_at IS NULL`)
	if err != nil {
		return fmt.Errorf("read alerts: %w", err)
	}
	type due struct {
		id     string
		level  int
		recips []string
	}
	var work []due
	now := d.now()
	for rows.Next() {
		var id, lvJSON string
		var created int64
		var next int
		if err := rows.Scan(&id, &created, &lvJSON, &next); err != nil {
			rows.Close()
			return err
		}
		var levels [][]string
		if err := json.Unmarshal([]byte(lvJSON), &levels); err != nil {
			continue
		}
		for next < len(levels) && next < len(d.sched) && !now.Before(time.Unix(0, created).Add(d.sched[next])) {
			work = append(work, due{id, next, levels[next]})
			next++
		}
	}
	rows.Close()
	for _, w := range work {
		tx, err := d.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, r := range w.recips {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO deliveries(alert_id, level, recipient, next_try) VALUES(?,?,?,?)`,
				w.id, w.level, r, now.UnixNano()); err != nil {
				tx.Rollback()
				return fmt.Errorf("queue alert %s: %w", w.id, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE alerts SET next_level = ? WHERE id = ? AND next_level <= ?`, w.level+1, w.id, w.level); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("queue alert %s: %w", w.id, err)
		}
		if w.level > 0 {
			d.log.Info("alert escalated", "alert", w.id, "level", w.level, "recipients", w.recips)
		}
	}
	return nil
}

// retryDelay is the wait before the attempt after n failed ones.
func retryDelay(n int, permanent bool) time.Duration {
	if permanent {
		return 30 * time.Minute
	}
	d := 30 * time.Second
	for i := 1; i < n && d < 30*time.Minute; i++ {
		d *= 2
	}
	return min(d, 30*time.Minute)
}

func (d *Dispatcher) deliver(ctx context.Context) error {
	now := d.now()
	rows, err := d.db.QueryContext(ctx, `SELECT d.id, d.alert_id, d.level, d.recipient, d.attempts, a.event, a.created, a.acked_at
		FROM deliveries d JOIN alerts a ON a.id = d.alert_id
		WHERE d.delivered_at IS NULL AND d.next_try <= ? ORDER BY d.id`, now.UnixNano())
	if err != nil {
		return fmt.Errorf("read outbox: %w", err)
	}
	type item struct {
		id              int64
		alert           string
		level, attempts int
		recipient       string
		ev              Event
		created         int64
		acked           bool
	}
	var items []item
	for rows.Next() {
		var it item
		var evJSON string
		var acked sql.NullInt64
		if err := rows.Scan(&it.id, &it.alert, &it.level, &it.recipient, &it.attempts, &evJSON, &it.created, &acked); err != nil {
			rows.Close()
			return err
		}
		_ = json.Unmarshal([]byte(evJSON), &it.ev)
		it.acked = acked.Valid
		items = append(items, it)
	}
	rows.Close()
	var failed []error
	for _, it := range items {
		if it.acked && it.level > 0 {
			// Acknowledged before this level went out: nobody else needs waking.
			if _, err := d.db.ExecContext(ctx, `UPDATE deliveries SET delivered_at = ?, last_error = 'skipped: acknowledged' WHERE id = ?`, now.UnixNano(), it.id); err != nil {
				return err
			}
			continue
		}
		r, ok := d.recips[it.recipient]
		var sendErr error
		if !ok {
			sendErr = &DeliveryError{Err: fmt.Errorf("recipient %q is no longer configured", it.recipient), Permanent: true}
		} else if s := d.senders[r.Channel]; s == nil {
			sendErr = &DeliveryError{Err: fmt.Errorf("channel %q is no longer configured", r.Channel), Permanent: true}
		} else {
			after := ""
			if it.level < len(d.sched) {
				after = d.sched[it.level].String()
			}
			sendErr = s.Send(ctx, r, Render(it.alert, it.ev, r.Lang, it.level, after))
		}
		if sendErr == nil {
			if _, err := d.db.ExecContext(ctx, `UPDATE deliveries SET delivered_at = ?, attempts = attempts + 1, last_error = '' WHERE id = ?`, d.now().UnixNano(), it.id); err != nil {
				return err
			}
			continue
		}
		var de *DeliveryError
		perm := errors.As(sendErr, &de) && de.Permanent
		next := d.now().Add(retryDelay(it.attempts+1, perm))
		if _, err := d.db.ExecContext(ctx, `UPDATE deliveries SET attempts = attempts + 1, next_try = ?, last_error = ? WHERE id = ?`,
			next.UnixNano(), sendErr.Error(), it.id); err != nil {
			return err
		}
		d.log.Warn("alert not delivered yet; will retry", "alert", it.alert, "recipient", it.recipient, "next", next.Format(time.RFC3339), "err", sendErr)
		failed = append(failed, fmt.Errorf("alert %s to %s: %w", it.alert, it.recipient, sendErr))
	}
	return errors.Join(failed...)
}

// Ack acknowledges an alert: no further escalation levels are sent.
func (d *Dispatcher) Ack(ctx context.Context, id, by string) error {
	res, err := d.db.ExecContext(ctx, `UPDATE alerts SET acked_at = ?, acked_by = ? WHERE id = ? AND acked_at IS NULL`, d.now().UnixNano(), by, id)
	if err != nil {
		return fmt.Errorf("acknowledge %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var exists int
		if err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM alerts WHERE id = ?`, id).Scan(&exists); err == nil && exists > 0 {
			return nil // already acknowledged
		}
		return fmt.Errorf("%w %q (list them with 'einvault alerts list')", ErrNoAlert, id)
	}
	return nil
}

// Delivery is the state of one queued message.
type Delivery struct {
	Level       int        `json:"level"`
	Recipient   string     `json:"recipient"`
	Attempts    int        `json:"attempts"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	NextTry     *time.Time `json:"next_try,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

// Alert is an alert with its delivery state.
type Alert struct {
	ID         string     `json:"id"`
	Created    time.Time  `json:"created"`
	Event      Event      `json:"event"`
	Level      int        `json:"level"` // highest level queued so far
	AckedAt    *time.Time `json:"acked_at,omitempty"`
	AckedBy    string     `json:"acked_by,omitempty"`
	Deliveries []Delivery `json:"deliveries"`
}

// List returns alerts, newest first; with all false only those not yet
// acknowledged or with undelivered messages.
func (d *Dispatcher) List(ctx context.Context, all bool) ([]Alert, error) {
	q := `SELECT id, created, event, next_level, acked_at, acked_by FROM alerts`
	if !all {
		q += ` WHERE acked_at IS NULL OR id IN (SELECT alert_id FROM deliveries WHERE delivered_at IS NULL)`
	}
	q += ` ORDER BY created DESC`
	rows, err := d.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	var out []Alert
	for rows.Next() {
		var a Alert
		var created int64
		var evJSON string
		var acked sql.NullInt64
		var by sql.NullString
		if err := rows.Scan(&a.ID, &created, &evJSON, &a.Level, &acked, &by); err != nil {
			rows.Close()
			return nil, err
		}
		a.Level--
		a.Created = time.Unix(0, created)
		_ = json.Unmarshal([]byte(evJSON), &a.Event)
		if acked.Valid {
			t := time.Unix(0, acked.Int64)
			a.AckedAt, a.AckedBy = &t, by.String
		}
		out = append(out, a)
	}
	rows.Close()
	for i := range out {
		drows, err := d.db.QueryContext(ctx, `SELECT level, recipient, attempts, delivered_at, next_try, last_error FROM deliveries WHERE alert_id = ? ORDER BY level, recipient`, out[i].ID)
		if err != nil {
			return nil, err
		}
		for drows.Next() {
			var dl Delivery
			var del sql.NullInt64
			var next int64
			if err := drows.Scan(&dl.Level, &dl.Recipient, &dl.Attempts, &del, &next, &dl.LastError); err != nil {
				drows.Close()
				return nil, err
			}
			if del.Valid {
				t := time.Unix(0, del.Int64)
				dl.DeliveredAt = &t
			} else {
				t := time.Unix(0, next)
				dl.NextTry = &t
			}
			out[i].Deliveries = append(out[i].Deliveries, dl)
		}
		drows.Close()
		if out[i].Deliveries == nil {
			out[i].Deliveries = []Delivery{}
		}
	}
	return out, nil
}

// SendTest sends a test message to one recipient right now, outside the
// outbox, and returns the delivery error if any.
func (d *Dispatcher) SendTest(ctx context.Context, recipient string) error {
	r, ok := d.recips[recipient]
	if !ok {
		return fmt.Errorf("no recipient named %q in the notifications section", recipient)
	}
	lang := r.Lang
	if !ValidLanguage(lang) {
		lang = "en"
	}
	ev := Event{Kind: KindSuccess, Severity: SeverityInfo, Message: phrase(lang, "test_body"), Time: d.now()}
	m := Render("", ev, lang, 0, "")
	m.Subject = "[einvault] " + phrase(lang, "test_title")
	return d.senders[r.Channel].Send(ctx, r, m)
}
