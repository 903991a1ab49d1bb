// Package config reads einvault.yaml: the repository and its copies,
// sources, data classes with their schedules and retention, legal
// minimum retention per class and jurisdiction, jobs, maintenance
// windows, daemon settings and the notifications section. Every error
// names the line it is on. Validation needs no network, repository,
// password or files: it checks only what the file says.
package config

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/forget"
	"github.com/einvault/einvault/internal/notify"
	"github.com/einvault/einvault/internal/schedule"
)

// Config is einvault.yaml after defaults and environment overrides.
type Config struct {
	Repository    Repository                   `yaml:"repository"`
	Sources       map[string]*Source           `yaml:"sources"`
	Classes       map[string]*Class            `yaml:"classes"`
	Jurisdictions []string                     `yaml:"jurisdictions"`
	LegalMinimums map[string]map[string]string `yaml:"legal_minimums"`
	Jobs          map[string]*Job              `yaml:"jobs"`
	Maintenance   []*Window                    `yaml:"maintenance"`
	Daemon        Daemon                       `yaml:"daemon"`
	Notifications notify.Config                `yaml:"notifications"`

	// Path is the file the config was read from.
	Path string `yaml:"-"`
	// Overrides lists the environment variables that replaced settings.
	Overrides []string `yaml:"-"`
	// Warnings are things a valid file should still change (a secret
	// written inline).
	Warnings []Problem `yaml:"-"`

	legal map[string]map[string]forget.Duration // jurisdiction → class → minimum
}

// Repository is where backups go, and the copies kept of it. An S3 or
// SFTP location may carry its credentials (s3_*, sftp_* settings).
type Repository struct {
	Location     string  `yaml:"location"`
	PasswordFile string  `yaml:"password_file"`
	Copies       []*Copy `yaml:"copies"`
	Credentials  `yaml:",inline"`

	// written is the location as the file gives it: its credentials
	// belong to it, not to a location EINVAULT_REPO puts in its place.
	written string
}

// Copy is one more place the repository is kept (synced after each job),
// with its own credentials when it is on S3 or SFTP.
type Copy struct {
	Name        string `yaml:"name"`
	Location    string `yaml:"location"`
	Credentials `yaml:",inline"`
}

// Source is one thing to back up: paths, a database or a command's output.
type Source struct {
	Paths         []string `yaml:"paths"`
	Exclude       []string `yaml:"exclude"`
	OneFileSystem bool     `yaml:"one_file_system"`
	// Database is a DSN: pg://user@host/db, postgres://..., mysql://...,
	// mariadb://..., sqlite:/path/to/file.db.
	Database string `yaml:"database"`
	// PasswordFile holds the database password (kept out of the DSN).
	PasswordFile string `yaml:"password_file"`
	// Command is run and its standard output stored as one file.
	Command       []string `yaml:"command"`
	StdinFilename string   `yaml:"stdin_filename"`

	Name string `yaml:"-"`
}

// Type is "files", "database" or "command".
// IsMySQLDSN reports whether a source's database location is a
// MariaDB/MySQL server (mysql:// or mariadb://).
func IsMySQLDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "mysql://") || strings.HasPrefix(dsn, "mariadb://")
}

func (s *Source) Type() string {
	switch {
	case s.Database != "":
		return "database"
	case len(s.Command) > 0:
		return "command"
	}
	return "files"
}

// Keep holds optional count-based retention rules of a class, added to
// its retention duration.
type Keep struct {
	Last    int `yaml:"last"`
	Hourly  int `yaml:"hourly"`
	Daily   int `yaml:"daily"`
	Weekly  int `yaml:"weekly"`
	Monthly int `yaml:"monthly"`
	Yearly  int `yaml:"yearly"`
}

// Class is a kind of data with a schedule and a retention policy.
type Class struct {
	Description string `yaml:"description"`
	Schedule    string `yaml:"schedule"`
	// Retention keeps every snapshot this young (7y, 90d, 36h).
	Retention string `yaml:"retention"`
	Keep      Keep   `yaml:"keep"`
	// Full makes every backup of the class a full one.
	Full bool `yaml:"full"`
	// ContinuousWAL asks database sources of the class for continuous
	// write-ahead-log archiving besides the scheduled backups.
	ContinuousWAL bool `yaml:"continuous_wal"`
	// RPO is the most data the class may lose: when its newest
	// successful backup is older, the daemon raises a "stale" alert
	// ("2h", "26h"; "off" for none).
	RPO string `yaml:"rpo"`
	// RTO is the longest a recovery of the class may take: a drill that
	// restores and verifies more slowly fails its target ("2h"; "off").
	RTO string `yaml:"rto"`
	// WALMaxAge is, for a class with continuous_wal, the most the newest
	// archived WAL file may lag behind: older, the daemon raises a
	// stale-WAL alert (default 15m).
	WALMaxAge string `yaml:"wal_max_age"`

	Name string `yaml:"-"`
	// RPODur is RPO parsed; 0 means no RPO alerting.
	RPODur time.Duration `yaml:"-"`
	// RTODur is RTO parsed; 0 means no RTO target.
	RTODur time.Duration `yaml:"-"`
	// WALMaxAgeDur is WALMaxAge parsed (0 without continuous_wal).
	WALMaxAgeDur time.Duration `yaml:"-"`
	Spec         schedule.Spec `yaml:"-"`
	// Policy is the retention by policy; Legal the legal minimum and
	// LegalBy the jurisdictions that set it.
	Policy  forget.Duration `yaml:"-"`
	Legal   forget.Duration `yaml:"-"`
	LegalBy []string        `yaml:"-"`
}

// Job is a named backup: sources of one class on a schedule.
type Job struct {
	Class    string   `yaml:"class"`
	Sources  []string `yaml:"sources"`
	Schedule string   `yaml:"schedule"` // default: the class's
	Tags     []string `yaml:"tags"`
	// Verify is the share of the packs the backup wrote that is read
	// back and verified after it: "all" (default), a share ("25%",
	// "2/10") or "off". When the chosen packs exceed VerifyBudget, a
	// random sample of them within the budget is read.
	Verify string `yaml:"verify"`
	// VerifyBudget caps the bytes the verification reads (default 1GiB).
	VerifyBudget string `yaml:"verify_budget"`
	// Drill schedules recovery drills of the job: its newest snapshot is
	// restored into a scratch place and verified, and the RTO and RPO
	// measured against the class's targets ("0 3 * * 0"; empty: none).
	Drill string `yaml:"drill"`
	// Binlog schedules archiving of the binary logs of the job's
	// MariaDB/MySQL sources ("every 5m" or "*/5 * * * *"; empty: none): the
	// interval is the RPO of point-in-time restores between dumps.
	Binlog string `yaml:"binlog"`
	// Retries of transient failures (default: the daemon's).
	Retries *int `yaml:"retries"`

	Name string        `yaml:"-"`
	Spec schedule.Spec `yaml:"-"`
	// VerifyBytes is VerifyBudget parsed.
	VerifyBytes int64 `yaml:"-"`
	// DrillSpec is Drill parsed (zero Kind: no drills).
	DrillSpec schedule.Spec `yaml:"-"`
	// BinlogSpec is Binlog parsed (zero Kind: no archiving).
	BinlogSpec schedule.Spec `yaml:"-"`
}

// Window holds jobs back while something else happens on the systems.
type Window struct {
	Name     string   `yaml:"name"`
	Start    string   `yaml:"start"`    // cron expression of each start
	Duration string   `yaml:"duration"` // Go duration: 2h, 90m
	Jobs     []string `yaml:"jobs"`     // empty: every job

	Window schedule.Window `yaml:"-"`
}

// Daemon holds the daemon's own settings.
type Daemon struct {
	StateDir    string `yaml:"state_dir"`
	Concurrency int    `yaml:"concurrency"`
	// Retention applies each class's retention (forget) on this schedule.
	Retention string `yaml:"retention_schedule"`
	// Prune frees the data of forgotten snapshots on this schedule.
	Prune string `yaml:"prune_schedule"`
	// Retries of a job's transient failures, waiting Backoff, doubled
	// each time (capped at MaxBackoff).
	Retries    *int   `yaml:"retries"`
	Backoff    string `yaml:"backoff"`
	MaxBackoff string `yaml:"max_backoff"`
	// MinFreeSpace is the free space a local destination must have for
	// the pre-flight to pass (e.g. 1GiB).
	MinFreeSpace string `yaml:"min_free_space"`
	// Report is the monthly report the daemon writes and mails.
	Report Report `yaml:"report"`
	// WALCheck is how often the freshness of the archived WAL of
	// continuous_wal classes is checked (default 5m; "off").
	WALCheck string `yaml:"wal_check_interval"`

	RetentionSpec schedule.Spec `yaml:"-"`
	PruneSpec     schedule.Spec `yaml:"-"`
	RetryCount    int           `yaml:"-"`
	BackoffDur    time.Duration `yaml:"-"`
	MaxBackoffDur time.Duration `yaml:"-"`
	MinFreeBytes  int64         `yaml:"-"`
	WALCheckDur   time.Duration `yaml:"-"`
}

// Report schedules the monthly report: written to Out (default
// STATE_DIR/reports) on Schedule (default 07:00 on the 1st, for the month
// before) and e-mailed to Recipients of the notifications section.
type Report struct {
	Schedule   string   `yaml:"schedule"`
	Recipients []string `yaml:"recipients"`
	Lang       string   `yaml:"lang"` // en (default), vi, zh
	Out        string   `yaml:"out"`
	Org        string   `yaml:"organisation"`

	Spec schedule.Spec `yaml:"-"`
}

// Windows returns the maintenance windows for the scheduler.
func (c *Config) Windows() []schedule.Window {
	out := make([]schedule.Window, 0, len(c.Maintenance))
	for _, w := range c.Maintenance {
		out = append(out, w.Window)
	}
	return out
}

// DefaultPath is where the config lives when neither --config nor
// EINVAULT_CONFIG says: /etc/einvault/einvault.yaml for root, else
// $XDG_CONFIG_HOME/einvault/einvault.yaml (~/.config/...).
func DefaultPath(getenv func(string) string) string {
	if os.Geteuid() == 0 {
		return "/etc/einvault/einvault.yaml"
	}
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "einvault", "einvault.yaml")
}

// DefaultStateDir is /var/lib/einvault for root, else
// $XDG_STATE_HOME/einvault (~/.local/state/einvault).
func DefaultStateDir(getenv func(string) string) string {
	if os.Geteuid() == 0 {
		return "/var/lib/einvault"
	}
	dir := getenv("XDG_STATE_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			home, _ = os.UserHomeDir()
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "einvault")
}

// Resolve picks the config file: the flag, then EINVAULT_CONFIG, then
// the default path. explicit reports whether the user named one (a
// missing explicit file is an error; a missing default is "no config").
func Resolve(flag string, getenv func(string) string) (path string, explicit bool) {
	if flag != "" {
		return flag, true
	}
	if p := getenv("EINVAULT_CONFIG"); p != "" {
		return p, true
	}
	return DefaultPath(getenv), false
}

// ClassNames lists the classes, sorted.
func (c *Config) ClassNames() []string { return sortedKeys(c.Classes) }

// JobNames lists the jobs, sorted.
func (c *Config) JobNames() []string { return sortedKeys(c.Jobs) }
