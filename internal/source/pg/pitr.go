package pg

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/einvault/einvault/internal/source"
	"github.com/jackc/pgx/v5"
)

// RecoverOptions configure a point-in-time recovery into a new data
// directory.
type RecoverOptions struct {
	Target Target
	Window *Window
	PGData string // must not exist, or be empty
	// Port and SocketDir, when set, override the cluster's settings so the
	// recovered server does not collide with the running one.
	Port      int
	SocketDir string
	User      string // database user to verify as (default "postgres")
	BinDir    string
	// RunAs runs the server as this OS user (required when running as
	// root: PostgreSQL refuses root). Nil runs as the current user.
	RunAs *syscall.Credential
	// RestoreCommand is the restore_command, e.g. "einvault -r R wal-fetch --key-cache K %f %p".
	RestoreCommand string
	// Prefetch, when set, spools the WAL segments recovery replays ahead
	// of it (from the start of the restore, in parallel with writing the
	// base backup); RestoreCommand must then serve from its directory.
	Prefetch *Prefetcher
	// WriteBase writes the base.tar stream of a base backup snapshot.
	WriteBase func(ctx context.Context, snapshot string, w io.Writer) error
	Stop      bool          // stop the server after verification
	Timeout   time.Duration // for recovery to reach the target (default 1h)
	Logger    *slog.Logger
	Now       func() time.Time
	// Start is when the restore began, for the RTO (the caller's start,
	// so opening the repository and computing the window count too);
	// zero: when Recover is called.
	Start time.Time
}

// RecoverResult reports a point-in-time recovery.
type RecoverResult struct {
	Target          string     `json:"target"`
	Window          *Window    `json:"window"`
	BaseBackup      string     `json:"base_backup"`
	PGData          string     `json:"pgdata"`
	Port            int        `json:"port,omitempty"`
	SocketDir       string     `json:"socket_dir,omitempty"`
	RecoveredToTime *time.Time `json:"recovered_to_time"` // pg_last_xact_replay_timestamp()
	RecoveredToLSN  string     `json:"recovered_to_lsn"`  // pg_last_wal_replay_lsn()
	Timeline        uint32     `json:"timeline"`
	Seconds         float64    `json:"rto_seconds"` // from start until the server answered, promoted and verified
	// ServiceSeconds is the RTO to service: from start until the promoted
	// server first answered a query (before verification).
	ServiceSeconds float64              `json:"rto_to_service_seconds"`
	BaseSeconds    float64              `json:"base_restore_seconds"` // from start until the data directory was written
	VerifySeconds  float64              `json:"verify_seconds"`       // verification after the server answered
	ServerRunning  bool                 `json:"server_running"`
	Verification   *source.Verification `json:"verification"`
}

// Recover builds a data directory from the right base backup, configures
// recovery (restore_command, recovery target, promote), starts the server,
// waits for promotion and verifies it. A target outside the window is
// refused before anything is written.
func Recover(ctx context.Context, o RecoverOptions) (*RecoverResult, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	start := o.Start
	if start.IsZero() {
		start = now()
	}
	rng, base, err := o.Window.Choose(o.Target)
	if err != nil {
		return nil, err
	}
	pgCtl, err := FindProgram(o.BinDir, "pg_ctl")
	if err != nil {
		return nil, err
	}
	if err := prepareDataDir(o.PGData); err != nil {
		return nil, err
	}
	if o.Prefetch != nil {
		if err := o.Prefetch.MarkAbsent(o.Window.Absent(rng)); err != nil {
			return nil, err
		}
		pctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); o.Prefetch.Run(pctx, SpoolSegments(rng, base)) }()
		defer func() { cancel(); <-done }()
	}
	if err := extractBase(ctx, o, base.Snapshot); err != nil {
		return nil, fmt.Errorf("restore base backup %s into %s: %w", short(base.Snapshot), o.PGData, err)
	}
	res := &RecoverResult{Target: o.Target.String(), Window: o.Window, BaseBackup: base.Snapshot, PGData: o.PGData, Port: o.Port, SocketDir: o.SocketDir}
	res.BaseSeconds = now().Sub(start).Seconds()
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Debug("base backup written", "seconds", res.BaseSeconds)
	if err := configureRecovery(o); err != nil {
		return nil, err
	}
	if o.RunAs != nil {
		if err := chownTree(o.PGData, int(o.RunAs.Uid), int(o.RunAs.Gid)); err != nil {
			return nil, err
		}
	}

	logFile := filepath.Join(o.PGData, "einvault-recovery.log")
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = time.Hour
	}
	cmd := exec.CommandContext(ctx, pgCtl, "-D", o.PGData, "-l", logFile, "-W", "start")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: o.RunAs, Setpgid: true}
	cmd.Env = serverEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("start the recovered server: %v: %s", err, strings.TrimSpace(string(out)))
	}
	stopServer := func() {
		c := exec.Command(pgCtl, "-D", o.PGData, "-m", "fast", "-w", "stop")
		c.SysProcAttr = &syscall.SysProcAttr{Credential: o.RunAs}
		_ = c.Run()
	}
	conn, err := waitPromoted(ctx, o, logFile, timeout)
	if err != nil {
		stopServer()
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	res.ServiceSeconds = now().Sub(start).Seconds()
	log.Debug("recovered server answers, promoted", "seconds", res.ServiceSeconds)
	var ts *time.Time
	var lsn *string
	if err := conn.QueryRow(ctx, `SELECT pg_last_xact_replay_timestamp(), pg_last_wal_replay_lsn()::text,
		(SELECT timeline_id FROM pg_control_checkpoint())`).Scan(&ts, &lsn, &res.Timeline); err != nil {
		stopServer()
		return nil, fmt.Errorf("query the recovered server: %v", oneLine(err))
	}
	if ts != nil {
		u := ts.UTC()
		res.RecoveredToTime = &u
	}
	if lsn != nil {
		res.RecoveredToLSN = *lsn
	}
	verifyStart := now()
	res.Verification = verifyRecovered(ctx, o, conn, res)
	res.Seconds = now().Sub(start).Seconds()
	res.VerifySeconds = now().Sub(verifyStart).Seconds()
	if o.Stop {
		conn.Close(ctx)
		stopServer()
	} else {
		res.ServerRunning = true
	}
	return res, nil
}

// serverEnv is the environment of the recovered server: ours without the
// repository password (restore_command uses the key cache).
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "EINVAULT_PASSWORD") || strings.HasPrefix(kv, "PGPASSWORD=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func prepareDataDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(dir, 0o700)
	case err != nil:
		return fmt.Errorf("data directory %s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("data directory %s is not empty: give a new or empty --pgdata (nothing is ever restored over a cluster)", dir)
	}
	return os.Chmod(dir, 0o700)
}

// extractBase streams the base backup's tar into PGData, refusing
// entries that would land outside it.
func extractBase(ctx context.Context, o RecoverOptions, snapshot string) error {
	// Up to 8 chunks (about 8 MiB) are read ahead of the files written.
	pr := producePiped(ctx, 8, func(ctx context.Context, w io.Writer) error { return o.WriteBase(ctx, snapshot, w) })
	defer pr.Close()
	tr := tar.NewReader(pr)
	root := filepath.Clean(o.PGData)
	buf := make([]byte, 1<<20)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return fmt.Errorf("base backup holds a hostile path %q", h.Name)
		}
		p := filepath.Join(root, name)
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode|0o600)
			if err != nil {
				return err
			}
			// Hide f's ReadFrom so the copy uses buf (1 MiB writes, not 32 KiB).
			if _, err := io.CopyBuffer(struct{ io.Writer }{f}, tr, buf); err != nil {
				f.Close()
				return err
			}
			if o.RunAs != nil {
				if err := f.Chown(int(o.RunAs.Uid), int(o.RunAs.Gid)); err != nil {
					f.Close()
					return err
				}
			}
			startWriteback(f)
			if err := f.Close(); err != nil {
				return err
			}
		case tar.TypeSymlink:
			// pg_tblspc links; a single-tablespace base backup has none.
			return fmt.Errorf("base backup holds a symbolic link %s -> %s (tablespaces are not supported)", h.Name, h.Linkname)
		}
	}
	for _, d := range []string{"pg_wal", "pg_wal/archive_status"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return err
		}
	}
	return nil
}

// syncfsSupported reports whether the server of the data directory at
// dir (PG_VERSION) has recovery_init_sync_method = syncfs: PostgreSQL 14
// and later, on Linux.
func syncfsSupported(dir string) bool {
	if runtime.GOOS != "linux" {
		return false
	}
	b, err := os.ReadFile(filepath.Join(dir, "PG_VERSION"))
	if err != nil {
		return false
	}
	major, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && major >= 14
}

func confQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// configureRecovery writes the recovery settings into postgresql.auto.conf
// (which wins over postgresql.conf) and creates recovery.signal.
func configureRecovery(o RecoverOptions) error {
	var lines []string
	if _, err := os.Stat(filepath.Join(o.PGData, "postgresql.conf")); errors.Is(err, os.ErrNotExist) {
		// Debian keeps the configuration outside the data directory.
		if err := os.WriteFile(filepath.Join(o.PGData, "postgresql.conf"), []byte("# written by einvault pg restore: the backed-up cluster kept its configuration elsewhere\n"), 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(o.PGData, "pg_hba.conf"), []byte("local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n"), 0o600); err != nil {
			return err
		}
	}
	lines = append(lines, "", "# einvault pg restore "+o.Target.String(),
		"restore_command = "+confQuote(o.RestoreCommand),
		"recovery_target_action = 'promote'",
		"recovery_target_timeline = 'current'",
		// The recovered cluster must not archive into the repository of
		// the original: its WAL would clash with the original's.
		"archive_mode = 'off'",
		"hot_standby = 'on'")
	if syncfsSupported(o.PGData) {
		// The data directory was just written without an fsync per
		// file; PostgreSQL syncs it before recovery. One syncfs(2) of
		// its file system does that in a fraction of the time of an
		// fsync of each of its thousands of files, and is as durable.
		lines = append(lines, "recovery_init_sync_method = 'syncfs'")
	}
	switch {
	case o.Target.Time != nil:
		lines = append(lines, "recovery_target_time = "+confQuote(o.Target.Time.UTC().Format("2006-01-02 15:04:05.999999")+"+00"))
	case o.Target.LSN != nil:
		lines = append(lines, "recovery_target_lsn = "+confQuote(o.Target.LSN.String()))
	}
	if o.Port != 0 {
		lines = append(lines, "port = "+strconv.Itoa(o.Port))
	}
	if o.SocketDir != "" {
		lines = append(lines, "unix_socket_directories = "+confQuote(o.SocketDir))
	}
	f, err := os.OpenFile(filepath.Join(o.PGData, "postgresql.auto.conf"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("configure recovery: %w", err)
	}
	_, err = f.WriteString(strings.Join(lines, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("configure recovery: %w", err)
	}
	return os.WriteFile(filepath.Join(o.PGData, "recovery.signal"), nil, 0o600)
}

func chownTree(root string, uid, gid int) error {
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func (o RecoverOptions) dsn(db string) string {
	user := o.User
	if user == "" {
		user = "postgres"
	}
	host := o.SocketDir
	if host == "" {
		host = "/var/run/postgresql"
	}
	port := o.Port
	if port == 0 {
		port = 5432
	}
	return fmt.Sprintf("postgresql://%s@/%s?host=%s&port=%d&connect_timeout=5", user, db, host, port)
}

// waitPromoted waits until the server accepts connections and has left
// recovery. If the server stops instead (target not reachable, WAL
// missing), the FATAL line of its log is the error.
//
// It polls the status line of postmaster.pid every 10 ms (what pg_ctl -w
// reads: "standby" during recovery, "ready" once promoted) and connects
// only when it says ready, so the moment of service is seen within a
// poll without a connection attempt, and a backend fork, every 10 ms.
// A server that writes no status line is polled by connecting.
func waitPromoted(ctx context.Context, o RecoverOptions, logFile string, timeout time.Duration) (*pgx.Conn, error) {
	deadline := time.Now().Add(timeout)
	pidFile := filepath.Join(o.PGData, "postmaster.pid")
	seenPid := false
	const poll = 10 * time.Millisecond
	var lastTry time.Time
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("recovery did not finish within %s (see %s)", timeout, logFile)
		}
		status, err := postmasterStatus(pidFile)
		if err == nil {
			seenPid = true
		} else if seenPid {
			return nil, fmt.Errorf("the recovered server stopped: %s (log: %s)", fatalLine(logFile), logFile)
		}
		try := status == "ready" || (err == nil && status == "" && time.Since(lastTry) >= 100*time.Millisecond)
		if try {
			lastTry = time.Now()
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			conn, err := pgx.Connect(cctx, o.dsn("postgres"))
			cancel()
			if err == nil {
				var inRecovery bool
				if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err == nil && !inRecovery {
					return conn, nil
				}
				conn.Close(ctx)
			}
		}
		time.Sleep(poll)
	}
}

// postmasterStatus reads the status line of postmaster.pid (its 8th:
// "starting", "stopping", "ready" or "standby"; "" when not written yet).
func postmasterStatus(pidFile string) (string, error) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return "", err
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 8 {
		return "", nil
	}
	return strings.TrimSpace(lines[7]), nil
}

func fatalLine(logFile string) string {
	b, _ := os.ReadFile(logFile)
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "FATAL") {
			return strings.TrimSpace(lines[i])
		}
	}
	return "no FATAL message in the log"
}

// verifyRecovered checks the recovered server: it answers, the recovery
// point matches the target, and amcheck passes in every database.
func verifyRecovered(ctx context.Context, o RecoverOptions, conn *pgx.Conn, res *RecoverResult) *source.Verification {
	v := &source.Verification{Engine: "postgresql", Database: o.PGData}
	v.Checks = append(v.Checks, source.Check{Name: "server answers and is promoted", OK: true})
	switch {
	case o.Target.Time != nil:
		c := source.Check{Name: "recovery point not after target time", Want: "<= " + o.Target.Time.UTC().Format(time.RFC3339Nano)}
		if res.RecoveredToTime != nil {
			c.Got = res.RecoveredToTime.Format(time.RFC3339Nano)
			c.OK = !res.RecoveredToTime.After(*o.Target.Time)
		} else {
			c.OK, c.Detail = true, "no transaction was replayed after the base backup"
		}
		v.Checks = append(v.Checks, c)
	case o.Target.LSN != nil:
		c := source.Check{Name: "recovery point reached target LSN", Want: ">= " + o.Target.LSN.String(), Got: res.RecoveredToLSN}
		if got, err := ParseLSN(res.RecoveredToLSN); err == nil {
			c.OK = got >= *o.Target.LSN
		}
		v.Checks = append(v.Checks, c)
	}
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1")
	if err != nil {
		v.Checks = append(v.Checks, source.Check{Name: "list databases", Detail: oneLine(err)})
		return v
	}
	dbs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		v.Checks = append(v.Checks, source.Check{Name: "list databases", Detail: oneLine(err)})
		return v
	}
	for _, db := range dbs {
		if db == "template1" {
			continue
		}
		c, err := pgx.Connect(ctx, o.dsn(db))
		if err != nil {
			v.Checks = append(v.Checks, source.Check{Name: "connect to " + db, Detail: oneLine(err)})
			continue
		}
		chk := Amcheck(ctx, c)
		chk.Name = "amcheck " + db
		v.Checks = append(v.Checks, chk)
		c.Close(ctx)
	}
	return v
}
