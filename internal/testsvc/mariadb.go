package testsvc

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MariaDB is a running test server. The user "root" has no password and
// may connect over the unix socket and over 127.0.0.1 (the test server
// is initialised with --auth-root-authentication-method=normal and a
// root@127.0.0.1 account), so tests and the programs under test can use
// plain TCP DSNs.
//
// Typical use:
//
//	m := testsvc.StartMariaDB(t)
//	m.Exec(t, "CREATE DATABASE shop")
//	db := m.DB(t, "shop")           // *sql.DB, closed when the test ends
//	url := m.URL("shop")           // mysql://root@127.0.0.1:PORT/shop
type MariaDB struct {
	Dir     string // service directory holding data, socket and log
	DataDir string
	Socket  string // unix socket path
	Port    int    // loopback TCP port
	User    ServiceUser
	LogFile string
	BinDir  string // directory of mariadbd's client programs (mariadb, mariadb-dump)

	cmd  *exec.Cmd
	done chan error
}

// mariadbServerDirs are searched for the server program, which Debian
// installs in /usr/sbin.
var mariadbServerDirs = []string{"/usr/sbin", "/usr/libexec", "/usr/local/mysql/bin"}

// StartMariaDB initialises a fresh MariaDB data directory with
// mariadb-install-db and starts mariadbd as the service user
// (EnsureServiceUser), listening on a unix socket in a ServiceDir and on
// a free loopback port. Start-up takes a few seconds. The server is
// killed and its files removed when the test ends. Missing programs call
// Unavailable.
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	return StartMariaDBWith(t, MariaDBOptions{})
}

// MariaDBOptions configure a test server; the zero value is StartMariaDB's.
type MariaDBOptions struct {
	// DataTmpfsMiB, when > 0, puts the data directory on a tmpfs of this
	// size, to test a full disk. It needs root (mount); elsewhere the
	// test is skipped (not failed: this is a machine limit, not a
	// missing service).
	DataTmpfsMiB int
	// LogBin turns binary logging on (row format, server ID 1), for
	// point-in-time recovery tests.
	LogBin bool
}

// StartMariaDBWith is StartMariaDB with options.
func StartMariaDBWith(t testing.TB, o MariaDBOptions) *MariaDB {
	t.Helper()
	hint := "install the Debian packages mariadb-server and mariadb-client"
	server := LookPath(t, "MariaDB", "mariadbd", hint, mariadbServerDirs...)
	installDB := LookPath(t, "MariaDB", "mariadb-install-db", hint)
	client := LookPath(t, "MariaDB", "mariadb", hint)
	su := EnsureServiceUser(t)
	dir := ServiceDir(t, su)
	m := &MariaDB{Dir: dir, DataDir: filepath.Join(dir, "data"), Socket: filepath.Join(dir, "mysqld.sock"),
		Port: FreePort(t), User: su, LogFile: filepath.Join(dir, "server.log"), BinDir: filepath.Dir(client)}
	cnf := filepath.Join(dir, "my.cnf")
	// settings do not depend on paths: they key the data-directory template.
	settings := strings.Join([]string{
		"[mariadbd]",
		"skip-name-resolve",
		"innodb_buffer_pool_size=32M",
		"innodb_log_file_size=16M",
		"innodb_flush_log_at_trx_commit=2",
		"innodb_doublewrite=0",
		"innodb_flush_method=nosync",
		"performance_schema=OFF",
		"",
	}, "\n")
	if o.LogBin {
		settings += "log-bin=mariadb-bin\nserver-id=1\nbinlog_format=ROW\n"
	} else {
		settings += "skip-log-bin\n"
	}
	conf := settings + strings.Join([]string{
		"datadir=" + m.DataDir,
		"socket=" + m.Socket,
		"port=" + strconv.Itoa(m.Port),
		"bind-address=127.0.0.1",
		"pid-file=" + filepath.Join(dir, "mariadbd.pid"),
		"log-error=" + m.LogFile,
		"",
	}, "\n")
	if err := os.WriteFile(cnf, []byte(conf), 0o644); err != nil {
		t.Fatalf("MariaDB config: %v", err)
	}
	if o.DataTmpfsMiB > 0 {
		mountTmpfs(t, m.DataDir, o.DataTmpfsMiB, su)
	}
	if err := mariadbTemplate(installDB, server, su, settings, m.DataDir); err != nil {
		t.Fatalf("MariaDB data directory: %v", err)
	}
	m.cmd = exec.Command(server, "--defaults-file="+cnf)
	su.Apply(m.cmd)
	m.cmd.SysProcAttr = withPdeathsig(m.cmd.SysProcAttr)
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start mariadbd: %v", err)
	}
	m.done = make(chan error, 1)
	go func() { m.done <- m.cmd.Wait() }()
	t.Cleanup(func() { m.kill() })
	if err := m.waitReady(30 * time.Second); err != nil {
		log, _ := os.ReadFile(m.LogFile)
		t.Fatalf("MariaDB did not start: %v\n%s", err, log)
	}
	// Allow root over TCP too (the default root account is root@localhost,
	// which only the unix socket matches under skip-name-resolve).
	m.Exec(t, "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
	return m
}

func withPdeathsig(a *syscall.SysProcAttr) *syscall.SysProcAttr {
	if a == nil {
		a = &syscall.SysProcAttr{}
	}
	a.Pdeathsig = syscall.SIGKILL
	return a
}

func (m *MariaDB) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case err := <-m.done:
			m.done <- err
			return fmt.Errorf("mariadbd exited: %v", err)
		default:
		}
		db, err := sql.Open("mysql", m.SocketDSN(""))
		if err == nil {
			err = db.Ping()
			db.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Running reports whether the server process is still alive.
func (m *MariaDB) Running() bool {
	select {
	case err := <-m.done:
		m.done <- err
		return false
	default:
		return true
	}
}

// Stop kills the server (SIGKILL: a crash, or "server down") and waits
// for it to exit. InnoDB recovers on the next start, but the test server
// cannot be restarted: start a new one.
func (m *MariaDB) Stop(t testing.TB) {
	t.Helper()
	m.kill()
}

func (m *MariaDB) kill() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	select {
	case err := <-m.done:
		m.done <- err
	case <-time.After(30 * time.Second):
	}
}

// DSN is a go-sql-driver/mysql DSN for db as root over TCP ("" for no
// default database). multiStatements is on so Exec can run scripts.
func (m *MariaDB) DSN(db string) string {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "tcp", fmt.Sprintf("127.0.0.1:%d", m.Port), db
	c.MultiStatements = true
	return c.FormatDSN()
}

// SocketDSN is like DSN over the unix socket.
func (m *MariaDB) SocketDSN(db string) string {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "unix", m.Socket, db
	c.MultiStatements = true
	return c.FormatDSN()
}

// URL is the mysql:// URL einvault takes for db as root over TCP.
func (m *MariaDB) URL(db string) string {
	return fmt.Sprintf("mysql://root@127.0.0.1:%d/%s", m.Port, db)
}

// SocketURL is the mysql:// URL for db over the unix socket.
func (m *MariaDB) SocketURL(db string) string {
	return fmt.Sprintf("mysql://root@localhost/%s?socket=%s", db, m.Socket)
}

// DB opens db (closed when the test ends).
func (m *MariaDB) DB(t testing.TB, db string) *sql.DB {
	t.Helper()
	h, err := sql.Open("mysql", m.DSN(db))
	if err != nil {
		t.Fatalf("open MariaDB %s: %v", db, err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// Exec runs SQL statements (several, separated by ';', are allowed)
// with no default database.
func (m *MariaDB) Exec(t testing.TB, sqlText string, args ...any) {
	t.Helper()
	m.ExecIn(t, "", sqlText, args...)
}

// ExecIn runs SQL statements in database db.
func (m *MariaDB) ExecIn(t testing.TB, db, sqlText string, args ...any) {
	t.Helper()
	h, err := sql.Open("mysql", m.DSN(db))
	if err != nil {
		t.Fatalf("open MariaDB: %v", err)
	}
	defer h.Close()
	if _, err := h.Exec(sqlText, args...); err != nil {
		t.Fatalf("exec %q in %q: %v", sqlText, db, err)
	}
}

// QueryString runs a query returning one value in db and returns it as text.
func (m *MariaDB) QueryString(t testing.TB, db, query string, args ...any) string {
	t.Helper()
	h, err := sql.Open("mysql", m.DSN(db))
	if err != nil {
		t.Fatalf("open MariaDB: %v", err)
	}
	defer h.Close()
	var s sql.NullString
	if err := h.QueryRow(query, args...).Scan(&s); err != nil {
		t.Fatalf("query %q in %q: %v", query, db, err)
	}
	return s.String
}

// Client returns a command running a MariaDB client program (mariadb,
// mariadb-dump, ...) of BinDir connected as root over the socket.
func (m *MariaDB) Client(ctx context.Context, program string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, filepath.Join(m.BinDir, program), append([]string{"--user=root", "--socket=" + m.Socket}, args...)...)
}

// mariadbTemplate fills dataDir with a freshly initialised system
// database. mariadb-install-db takes several seconds, so its result is
// kept as a template in the temporary directory (one per server version
// and service user, built under a temporary name and renamed into place,
// so parallel test processes never see half of one) and copied.
func mariadbTemplate(installDB, server string, su ServiceUser, conf, dataDir string) error {
	ver, err := exec.Command(server, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %v", server, err)
	}
	key := fmt.Sprintf("%x", sha256.Sum256(append(ver, conf...)))[:16]
	tmpl := filepath.Join(os.TempDir(), fmt.Sprintf("einvault-mariadb-template-%d-%s", su.UID, key))
	if _, err := os.Stat(filepath.Join(tmpl, "mysql")); err != nil {
		build, err := os.MkdirTemp(os.TempDir(), "einvault-mariadb-build-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(build)
		if err := os.Chmod(build, 0o755); err != nil {
			return err
		}
		if !su.IsSelf {
			if err := os.Chown(build, su.UID, su.GID); err != nil {
				return err
			}
		}
		cnf := filepath.Join(build, "my.cnf")
		if err := os.WriteFile(cnf, []byte(conf), 0o644); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		data := filepath.Join(build, "data")
		install := exec.CommandContext(ctx, installDB, "--defaults-file="+cnf, "--auth-root-authentication-method=normal",
			"--skip-test-db", "--datadir="+data)
		if !su.IsSelf {
			install.Args = append(install.Args, "--user="+su.Name)
		}
		su.Apply(install)
		if out, err := install.CombinedOutput(); err != nil {
			return fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
		}
		if err := os.Rename(data, tmpl); err != nil {
			if _, serr := os.Stat(filepath.Join(tmpl, "mysql")); serr != nil {
				return fmt.Errorf("keep MariaDB template: %v", err)
			}
			// Another test process won the race: use its template.
		}
	}
	if out, err := exec.Command("cp", "-a", "-T", tmpl, dataDir).CombinedOutput(); err != nil {
		return fmt.Errorf("copy MariaDB template: %v: %s", err, out)
	}
	return nil
}

// mountTmpfs mounts a tmpfs of sizeMiB at dir, owned by su, unmounted
// when the test ends.
func mountTmpfs(t testing.TB, dir string, sizeMiB int, su ServiceUser) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := fmt.Sprintf("size=%dm,mode=0755,uid=%d,gid=%d", sizeMiB, su.UID, su.GID)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs at %s (%v: %s): needs root and mount permission", dir, err, strings.TrimSpace(string(out)))
	}
	// Registered after the server's own cleanup would be too late: the
	// server must be gone first, and cleanups run last-in first-out, so
	// callers register this before starting the server.
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
}
