// Package pg backs up and restores PostgreSQL: logical dumps (pg_dump
// custom format streamed into the repository, restored under a new name
// with pg_restore and verified), physical base backups (pg_basebackup
// streamed as tar), WAL archiving (wal-push/wal-fetch, one sealed file per
// WAL file, opened with a key cache so each call is cheap) and
// point-in-time recovery within a recovery window it computes and
// enforces.
package pg

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// DSN is a parsed connection string. The password never leaves this
// struct except through Env (for the PostgreSQL programs) and the pgx
// configuration; Display and URI do not contain it.
type DSN struct {
	URI      string // postgresql://user@host:port/db?params, without the password
	Password string // from the connection string; empty means PGPASSWORD or ~/.pgpass
	Database string
	User     string
	Host     string // host name or socket directory; empty means libpq's default
	Port     string
}

// ErrNotPostgres is returned by ParseDSN for strings of another scheme.
var ErrNotPostgres = errors.New("not a PostgreSQL connection string")

// IsDSN reports whether s names a PostgreSQL database (pg://,
// postgres:// or postgresql://).
func IsDSN(s string) bool {
	for _, p := range []string{"pg://", "postgres://", "postgresql://"} {
		if strings.HasPrefix(strings.ToLower(s), p) {
			return true
		}
	}
	return false
}

// ParseDSN parses pg://user[:password]@host[:port]/db[?params] (also
// postgres:// and postgresql://). A unix socket directory is given as
// ?host=/path or as a percent-encoded host. The database is required.
func ParseDSN(s string) (DSN, error) {
	if !IsDSN(s) {
		return DSN{}, fmt.Errorf("%w: %q (use pg://user@host:port/database)", ErrNotPostgres, s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return DSN{}, fmt.Errorf("invalid PostgreSQL connection string: %v (use pg://user@host:port/database)", redactErr(err))
	}
	u.Scheme = "postgresql"
	var d DSN
	if u.User != nil {
		d.User = u.User.Username()
		d.Password, _ = u.User.Password()
		u.User = url.User(d.User)
		if d.User == "" {
			u.User = nil
		}
	}
	d.Database = strings.TrimPrefix(u.Path, "/")
	if d.Database == "" || strings.Contains(d.Database, "/") {
		return DSN{}, fmt.Errorf("PostgreSQL connection string %s names no database: add /DATABASE", u.Redacted())
	}
	q := u.Query()
	if q.Has("password") {
		d.Password = q.Get("password")
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	d.Host, d.Port = u.Hostname(), u.Port()
	if h := q.Get("host"); h != "" {
		d.Host = h
	}
	if p := q.Get("port"); p != "" {
		d.Port = p
	}
	d.URI = u.String()
	return d, nil
}

// WithDatabase returns d connected to another database of the same server.
func (d DSN) WithDatabase(db string) DSN {
	u, err := url.Parse(d.URI)
	if err != nil {
		return d
	}
	u.Path = "/" + db
	d.URI, d.Database = u.String(), db
	return d
}

// Env returns the environment for PostgreSQL programs connecting with d:
// the password travels in PGPASSWORD, never on a command line.
func (d DSN) Env() []string {
	env := os.Environ()
	if d.Password != "" {
		env = append(env, "PGPASSWORD="+d.Password)
	}
	return env
}

// redactErr drops the offending string (which may hold a password)
// from url.Parse errors.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// BinDirs are searched, newest first, when a program is not on PATH.
var BinDirs = []string{"/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"}

// FindProgram finds a PostgreSQL program: in binDir when given, else the
// newest /usr/lib/postgresql/*/bin, else PATH.
func FindProgram(binDir, name string) (string, error) {
	if binDir != "" {
		p := filepath.Join(binDir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s not found in %s: check --pg-bin", name, binDir)
		}
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range append(dirs, BinDirs...) {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found: install the PostgreSQL client programs (Debian: postgresql-client) or give --pg-bin", name)
}
