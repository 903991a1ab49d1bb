package mysql

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"
)

// DSN is a parsed mysql:// or mariadb:// location.
type DSN struct {
	Scheme   string // "mysql" or "mariadb"
	User     string
	Password string // from the URL (discouraged), MYSQL_PWD or the option file; never stored
	Host     string // TCP host ("" when Socket is set)
	Port     int
	Socket   string // unix socket path
	Database string
}

// IsDSN reports whether s is a mysql:// or mariadb:// location.
func IsDSN(s string) bool {
	return strings.HasPrefix(s, "mysql://") || strings.HasPrefix(s, "mariadb://")
}

// ParseDSN parses mysql://USER[:PASSWORD]@HOST[:PORT]/DB or
// mysql://USER@localhost/DB?socket=/run/mysqld/mysqld.sock (mariadb://
// the same). The password should not be in the URL: give it in MYSQL_PWD
// or in an option file ([client] password=...). db may be empty when
// allowEmptyDB.
func ParseDSN(s string, allowEmptyDB bool) (DSN, error) {
	u, err := url.Parse(s)
	if err != nil {
		return DSN{}, fmt.Errorf("mysql: bad location %q: %v", redact(s), errors.Unwrap(err))
	}
	d := DSN{Scheme: u.Scheme, Port: 3306}
	if d.Scheme != "mysql" && d.Scheme != "mariadb" {
		return DSN{}, fmt.Errorf("mysql: location must start with mysql:// or mariadb://")
	}
	if u.User != nil {
		d.User = u.User.Username()
		d.Password, _ = u.User.Password()
	}
	d.Host = u.Hostname()
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return DSN{}, fmt.Errorf("mysql: bad port %q", p)
		}
		d.Port = n
	}
	d.Database = strings.TrimPrefix(u.Path, "/")
	if strings.Contains(d.Database, "/") {
		return DSN{}, fmt.Errorf("mysql: bad database name %q", d.Database)
	}
	if d.Database == "" && !allowEmptyDB {
		return DSN{}, errors.New("mysql: no database in the location: write mysql://user@host:port/DATABASE")
	}
	for k, v := range u.Query() {
		switch k {
		case "socket":
			d.Socket = v[0]
			if !filepath.IsAbs(d.Socket) {
				return DSN{}, fmt.Errorf("mysql: socket %q must be an absolute path", d.Socket)
			}
		default:
			return DSN{}, fmt.Errorf("mysql: unknown parameter %q (only socket= is understood)", k)
		}
	}
	if d.Socket != "" {
		d.Host = ""
	} else if d.Host == "" {
		return DSN{}, errors.New("mysql: no host: write mysql://user@host:port/db or mysql://user@localhost/db?socket=/path")
	}
	return d, nil
}

func redact(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.LastIndex(s, "@"); j > i {
			if k := strings.Index(s[i+3:j], ":"); k >= 0 {
				return s[:i+3+k] + ":xxxxx" + s[j:]
			}
		}
	}
	return s
}

// String is the location without the password.
func (d DSN) String() string {
	return d.WithDatabase(d.Database)
}

// WithDatabase is the location (no password) of another database on the same server.
func (d DSN) WithDatabase(db string) string {
	u := url.URL{Scheme: d.Scheme, Path: "/" + db}
	if d.User != "" {
		u.User = url.User(d.User)
	}
	if d.Socket != "" {
		u.Host = "localhost"
		u.RawQuery = "socket=" + d.Socket
	} else {
		u.Host = d.Host + ":" + strconv.Itoa(d.Port)
	}
	return u.String()
}

// FillCredentials completes the password (and user) from MYSQL_PWD and
// then from the option file optFile (default ~/.my.cnf) when the URL had
// none. getenv is os.Getenv in production.
func (d *DSN) FillCredentials(getenv func(string) string, optFile string) error {
	if d.Password == "" {
		d.Password = getenv("MYSQL_PWD")
	}
	if d.Password != "" && d.User != "" {
		return nil
	}
	if optFile == "" {
		home := getenv("HOME")
		if home == "" {
			return nil
		}
		optFile = filepath.Join(home, ".my.cnf")
	}
	f, err := os.Open(optFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("mysql: option file: %w", err)
	}
	defer f.Close()
	opts, err := ParseOptionFile(bufio.NewReader(f), "client", "mysqldump", "mariadb-dump", "mariadb-client", "client-mariadb")
	if err != nil {
		return fmt.Errorf("mysql: option file %s: %w", optFile, err)
	}
	if d.Password == "" {
		d.Password = opts["password"]
	}
	if d.User == "" {
		d.User = opts["user"]
	}
	return nil
}

// ParseOptionFile reads the keys of the given groups of a MySQL option
// file (INI syntax: [group], key=value, # and ; comments, optional
// quotes). Later groups in the file override earlier ones. !include
// directives are ignored.
func ParseOptionFile(r *bufio.Reader, groups ...string) (map[string]string, error) {
	want := map[string]bool{}
	for _, g := range groups {
		want[g] = true
	}
	out := map[string]string{}
	in := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '!' {
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return nil, fmt.Errorf("line %d: unclosed group header", n)
			}
			in = want[strings.ToLower(strings.TrimSpace(line[1:end]))]
			continue
		}
		if !in {
			continue
		}
		key, val, _ := strings.Cut(line, "=")
		key = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(key)), "_", "-")
		val = strings.TrimSpace(val)
		if len(val) >= 2 && (val[0] == '"' || val[0] == '\'') && val[len(val)-1] == val[0] {
			val = val[1 : len(val)-1]
		} else if i := strings.Index(val, " #"); i >= 0 {
			val = strings.TrimSpace(val[:i])
		}
		out[key] = val
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// DriverDSN is the go-sql-driver/mysql DSN for database db ("" for none).
func (d DSN) DriverDSN(db string) string {
	c := driver.NewConfig()
	c.User, c.Passwd, c.DBName = d.User, d.Password, db
	if d.Socket != "" {
		c.Net, c.Addr = "unix", d.Socket
	} else {
		c.Net, c.Addr = "tcp", fmt.Sprintf("%s:%d", d.Host, d.Port)
	}
	c.Timeout = 10 * time.Second
	c.MultiStatements = false
	c.Params = map[string]string{"charset": "utf8mb4"}
	return c.FormatDSN()
}

// ClientArgs are the connection options of the mariadb/mysql client
// programs; the password goes in the environment (ClientEnv), never on
// the command line where ps would show it.
func (d DSN) ClientArgs() []string {
	args := []string{"--no-defaults"}
	if d.User != "" {
		args = append(args, "--user="+d.User)
	}
	if d.Socket != "" {
		args = append(args, "--protocol=SOCKET", "--socket="+d.Socket)
	} else {
		args = append(args, "--protocol=TCP", "--host="+d.Host, "--port="+strconv.Itoa(d.Port))
	}
	return args
}

// ClientEnv is the environment for the client programs.
func (d DSN) ClientEnv() []string {
	env := os.Environ()
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, "MYSQL_PWD=") {
			out = append(out, e)
		}
	}
	if d.Password != "" {
		out = append(out, "MYSQL_PWD="+d.Password)
	}
	return out
}
