package testsvc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGBinDirs are searched for the PostgreSQL programs, newest first.
var PGBinDirs = []string{"/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"}

// PGOptions configure a test PostgreSQL cluster. The zero value is a
// plain server with wal_level=replica and no archiving.
type PGOptions struct {
	// ArchiveCommand, when set, turns on archive_mode with this command
	// (it runs as the service user: every program and file it uses must be
	// reachable by that user).
	ArchiveCommand string
	// WALLevel is wal_level (default "replica").
	WALLevel string
	// Settings are extra postgresql.conf lines ("max_wal_size = '64MB'").
	Settings []string
}

// PG is a running test cluster. The superuser is "postgres" with trust
// authentication on the unix socket and on 127.0.0.1.
type PG struct {
	BinDir    string // directory of initdb, pg_ctl, psql, pg_dump...
	Dir       string // service directory holding everything below
	DataDir   string
	SocketDir string
	Port      int
	User      ServiceUser // the OS user the server runs as
	LogFile   string
}

// StartPostgres initialises and starts a PostgreSQL cluster owned by the
// service user (EnsureServiceUser) in a fresh ServiceDir, listening on a
// unix socket in that directory and on a free loopback port. The server
// is stopped when the test ends. Missing binaries call Unavailable.
func StartPostgres(t testing.TB, o PGOptions) *PG {
	t.Helper()
	initdb := LookPath(t, "PostgreSQL", "initdb", "install the Debian package postgresql (15 or newer)", PGBinDirs...)
	bin := filepath.Dir(initdb)
	su := EnsureServiceUser(t)
	dir := ServiceDir(t, su)
	p := &PG{BinDir: bin, Dir: dir, DataDir: filepath.Join(dir, "data"), SocketDir: dir, Port: FreePort(t), User: su, LogFile: filepath.Join(dir, "server.log")}
	if out, err := p.Command(context.Background(), "initdb", "-D", p.DataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	walLevel := o.WALLevel
	if walLevel == "" {
		walLevel = "replica"
	}
	conf := []string{
		"listen_addresses = '127.0.0.1'",
		"port = " + strconv.Itoa(p.Port),
		"unix_socket_directories = '" + p.SocketDir + "'",
		"wal_level = " + walLevel,
		"fsync = off",
		"max_wal_senders = 4",
		"shared_buffers = '32MB'",
		"log_min_messages = warning",
	}
	if o.ArchiveCommand != "" {
		conf = append(conf, "archive_mode = on", "archive_command = '"+strings.ReplaceAll(o.ArchiveCommand, "'", "''")+"'")
	}
	conf = append(conf, o.Settings...)
	f, err := os.OpenFile(filepath.Join(p.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("postgresql.conf: %v", err)
	}
	_, err = f.WriteString("\n# einvault test settings\n" + strings.Join(conf, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("postgresql.conf: %v", err)
	}
	p.Start(t)
	t.Cleanup(func() { p.stop(true) })
	return p
}

// AttachPostgres wraps a cluster some other code started (a restored
// data directory, say) so the test can query and stop it; the server is
// stopped when the test ends.
func AttachPostgres(t testing.TB, binDir, dataDir, socketDir string, port int) *PG {
	t.Helper()
	p := &PG{BinDir: binDir, DataDir: dataDir, SocketDir: socketDir, Port: port, User: EnsureServiceUser(t), LogFile: filepath.Join(socketDir, "attached.log")}
	t.Cleanup(func() { p.stop(true) })
	return p
}

// Command returns a command running a PostgreSQL program of BinDir as
// the service user.
func (p *PG) Command(ctx context.Context, program string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(p.BinDir, program), args...)
	p.User.Apply(cmd)
	return cmd
}

// Apply makes cmd run as the service user (no-op when not root).
func (su ServiceUser) Apply(cmd *exec.Cmd) {
	if su.IsSelf {
		return
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(su.UID), Gid: uint32(su.GID)}
	cmd.Env = append(os.Environ(), "HOME="+os.TempDir())
}

// Start starts the (stopped) server and waits until it accepts connections.
func (p *PG) Start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := p.Command(ctx, "pg_ctl", "-D", p.DataDir, "-l", p.LogFile, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(p.LogFile)
		t.Fatalf("start PostgreSQL: %v\n%s\n%s", err, out, log)
	}
}

// Stop stops the server (fast shutdown) and waits for it.
func (p *PG) Stop(t testing.TB) {
	t.Helper()
	if err := p.stop(false); err != nil {
		t.Fatal(err)
	}
}

func (p *PG) stop(quiet bool) error {
	if _, err := os.Stat(filepath.Join(p.DataDir, "postmaster.pid")); err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := p.Command(ctx, "pg_ctl", "-D", p.DataDir, "-m", "fast", "-w", "stop").CombinedOutput()
	if err != nil && !quiet {
		return fmt.Errorf("stop PostgreSQL: %v: %s", err, out)
	}
	return nil
}

// Kill sends SIGKILL to the postmaster (a crash, or "server down").
func (p *PG) Kill(t testing.TB) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.DataDir, "postmaster.pid"))
	if err != nil {
		t.Fatalf("kill PostgreSQL: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("kill PostgreSQL: bad postmaster.pid: %v", err)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = os.Remove(filepath.Join(p.DataDir, "postmaster.pid"))
}

// DSN is a connection URI for database db as the superuser over TCP.
func (p *PG) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, db)
}

// SocketDSN is a connection URI for db over the unix socket.
func (p *PG) SocketDSN(db string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d", db, p.SocketDir, p.Port)
}

// Conn opens a connection to db, closed when the test ends.
func (p *PG) Conn(t testing.TB, db string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.DSN(db))
	if err != nil {
		t.Fatalf("connect to PostgreSQL %s: %v", db, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Exec runs SQL statements (no results) in db.
func (p *PG) Exec(t testing.TB, db, sql string, args ...any) {
	t.Helper()
	c := p.Conn(t, db)
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("exec %q in %s: %v", sql, db, err)
	}
	c.Close(context.Background())
}

// QueryString runs a query returning one value and returns it as text.
func (p *PG) QueryString(t testing.TB, db, sql string, args ...any) string {
	t.Helper()
	c := p.Conn(t, db)
	defer c.Close(context.Background())
	var s *string
	if err := c.QueryRow(context.Background(), "SELECT ("+sql+")::text", args...).Scan(&s); err != nil {
		t.Fatalf("query %q in %s: %v", sql, db, err)
	}
	if s == nil {
		return ""
	}
	return *s
}
