// Package walcli is the command line of einvault-wal, the small binary
// PostgreSQL runs as archive_command and restore_command. It shares the
// WAL code path (package walarchive) with 'einvault wal-push' and
// 'einvault wal-fetch' and accepts the same arguments, but imports no
// command framework and none of einvault's other subsystems, so that a
// process starts in a few milliseconds instead of tens.
//
// It reaches local storage (a path, a NAS mount) itself. The remote
// backends (S3, SFTP, rclone) and their client libraries would triple its
// size and start time, so when the repository or one of its copies is
// remote it hands the whole call, unchanged, to the full einvault binary
// (beside it, or in PATH), which runs the same walarchive code.
package walcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/local"
	"github.com/einvault/einvault/internal/crypto"
	"github.com/einvault/einvault/internal/repo"
	"github.com/einvault/einvault/internal/walarchive"
)

// Exit codes, as documented for einvault.
const (
	exitOK        = 0
	exitFailed    = 1
	exitUsage     = 2
	exitNoRepo    = 10
	exitWrongPass = 12
)

const usage = `einvault-wal: PostgreSQL WAL archiving for an einvault repository

Usage:
  einvault-wal [-r REPO] [--key-cache FILE] [--json] [-q] [-v] wal-push PATH
  einvault-wal [-r REPO] [--key-cache FILE] [-q] wal-fetch NAME PATH

wal-push archives the WAL file at PATH (archive_command's %p), compressed
and encrypted, into the repository and every copy in its copy list; it
exits 0 only once the file is durably stored in at least one of them.
wal-fetch writes the archived WAL file NAME (%f) to PATH (%p) and exits 1
when the archive does not hold it. Both are the same code as 'einvault
wal-push' and 'einvault wal-fetch', in a binary that starts in a few
milliseconds. ("push" and "fetch" are accepted as short names.)

Options (before or after the command):
  -r, --repo REPO     repository location (default $EINVAULT_REPO)
  --key-cache FILE    key cache made by 'einvault key cache' (default
                      $EINVAULT_KEY_CACHE); without one the password from
                      $EINVAULT_PASSWORD_FILE or $EINVAULT_PASSWORD is used,
                      which runs the slow key derivation on every call
  --json              print the result of wal-push as one JSON line
  --spool DIR         wal-fetch: serve NAME from this directory of prefetched
                      WAL when it is there ('einvault pg restore' sets it up)
  -q, --quiet         no warnings on stderr
  -v, --verbose       report each archived file on stdout
  -h, --help          this help

Exit codes: 0 ok, 1 error (file not archived; PostgreSQL retries), 2 usage,
10 repository missing, 12 wrong password.

Example (postgresql.conf):
  archive_mode = on
  archive_command = 'einvault-wal -r /backup/repo wal-push --key-cache /var/lib/postgresql/.einvault-keys %p'
  restore_command = 'einvault-wal -r /backup/repo wal-fetch --key-cache /var/lib/postgresql/.einvault-keys %f %p'
`

// options are the parsed command line.
type options struct {
	repo, keyCache string
	spool          string
	json, quiet    bool
	verbose        bool
	command        string
	args           []string
	getenv         func(string) string
	stdout, stderr io.Writer
	// exec replaces the process by the full einvault (syscall.Exec);
	// tests record the call instead.
	exec func(bin string, argv []string) error
}

// codedError carries an exit code with an error.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &codedError{exitUsage, fmt.Errorf(format, args...)}
}

// Run runs einvault-wal with args (without the program name) and returns
// the exit code.
func Run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	o, err := parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "einvault-wal: %v (see einvault-wal --help)\n", err)
		return exitUsage
	}
	if o.command == "help" {
		_, _ = io.WriteString(stdout, usage)
		return exitOK
	}
	o.getenv, o.stdout, o.stderr = getenv, stdout, stderr
	o.exec = func(bin string, argv []string) error { return syscall.Exec(bin, argv, os.Environ()) }
	return o.main()
}

// RunWithExec is Run with another way to hand a call to the full
// einvault (for tests).
func RunWithExec(args []string, stdout, stderr io.Writer, getenv func(string) string, execFn func(bin string, argv []string) error) int {
	o, err := parse(args)
	if err != nil || o.command == "help" {
		return Run(args, stdout, stderr, getenv)
	}
	o.getenv, o.stdout, o.stderr, o.exec = getenv, stdout, stderr, execFn
	return o.main()
}

func (o *options) main() int {
	stderr := o.stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := o.run(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "einvault-wal: %v\n", err)
	var ee *codedError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailed
}

// parse reads options anywhere on the line and the command with its
// arguments.
func parse(args []string) (*options, error) {
	o := &options{}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		value := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", name)
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "-r", "--repo":
			o.repo, err = value()
		case "--key-cache":
			o.keyCache, err = value()
		case "--spool":
			o.spool, err = value()
		case "--json":
			o.json = true
		case "-q", "--quiet":
			o.quiet = true
		case "-v", "--verbose":
			o.verbose = true
		case "-h", "--help":
			o.command = "help"
			return o, nil
		default:
			return nil, fmt.Errorf("unknown option %s", name)
		}
		if err != nil {
			return nil, err
		}
		if hasVal && (name == "--json" || name == "-q" || name == "--quiet" || name == "-v" || name == "--verbose") {
			return nil, fmt.Errorf("%s takes no value", name)
		}
	}
	if len(pos) == 0 {
		return nil, errors.New("no command: wal-push PATH or wal-fetch NAME PATH")
	}
	o.command, o.args = pos[0], pos[1:]
	switch o.command {
	case "push", "wal-push":
		o.command = "wal-push"
		if len(o.args) != 1 {
			return nil, errors.New("wal-push takes one argument, the WAL file's path (%p)")
		}
	case "fetch", "wal-fetch":
		o.command = "wal-fetch"
		if len(o.args) != 2 {
			return nil, errors.New("wal-fetch takes two arguments, the WAL file's name (%f) and the path to write (%p)")
		}
	case "help":
	default:
		return nil, fmt.Errorf("unknown command %q: wal-push or wal-fetch", o.command)
	}
	return o, nil
}

func (o *options) run(ctx context.Context) error {
	if o.command == "wal-push" {
		return o.push(ctx)
	}
	return o.fetch(ctx)
}

func (o *options) warnf(format string, args ...any) {
	if !o.quiet {
		fmt.Fprintf(o.stderr, format, args...)
	}
}

// copies opens the other copies of the repository; they are all local
// (openRepo handed the call to einvault otherwise).
func (o *options) copies() walarchive.Copies {
	return walarchive.Copies{
		Open: func(ctx context.Context, loc string) (backend.Backend, error) {
			path, ok := localPath(loc)
			if !ok {
				return nil, fmt.Errorf("copy at %s is remote: einvault-wal only reaches local storage", loc)
			}
			return local.Open(ctx, path)
		},
		Warnf: o.warnf,
	}
}

// localPath returns the directory of a local repository location (a
// path, or "local:PATH"); ok is false for the remote schemes of package
// location ("s3:", "sftp:", "rclone:") and anything else with a scheme
// this binary does not know ("name:" before any slash).
func localPath(loc string) (string, bool) {
	if p, ok := strings.CutPrefix(loc, "local:"); ok {
		return p, p != ""
	}
	if i := strings.IndexByte(loc, ':'); i > 0 && !strings.ContainsAny(loc[:i], `/\\`) {
		return "", false
	}
	return loc, loc != ""
}

// errRemote is returned by openRepo when the call must be handed to the
// full einvault.
var errRemote = errors.New("remote storage")

// handOff replaces this process by the full einvault running the same
// command (it reaches remote storage), found beside this binary or in
// PATH.
func (o *options) handOff(loc string) error {
	bin := ""
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), "einvault"); isExecutable(p) {
			bin = p
		}
	}
	if bin == "" {
		p, err := exec.LookPath("einvault")
		if err != nil {
			return fmt.Errorf("%s is remote storage, which einvault-wal hands to einvault, but einvault is neither beside einvault-wal nor in PATH: install it, or use 'einvault %s' in the command", loc, o.command)
		}
		bin = p
	}
	argv := []string{"einvault", "-r", o.repoLocation()}
	if o.quiet {
		argv = append(argv, "-q")
	}
	if o.verbose {
		argv = append(argv, "-v")
	}
	if o.json {
		argv = append(argv, "--json")
	}
	argv = append(argv, o.command)
	if o.keyCache != "" {
		argv = append(argv, "--key-cache", o.keyCache)
	}
	argv = append(argv, "--")
	argv = append(argv, o.args...)
	if err := o.exec(bin, argv); err != nil {
		return fmt.Errorf("run %s: %w", bin, err)
	}
	return nil
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

func (o *options) repoLocation() string {
	if o.repo != "" {
		return o.repo
	}
	return o.getenv("EINVAULT_REPO")
}

func (o *options) push(ctx context.Context) error {
	start := time.Now()
	path := o.args[0]
	name := filepath.Base(path)
	if !walarchive.ValidName(name) {
		return usageErr("%s is not a PostgreSQL WAL file name: archive_command must pass %%p", name)
	}
	f, size, err := walarchive.OpenFile(path)
	if err != nil {
		return err
	}
	defer f.Close()
	walarchive.RelaxGC(int(size))
	r, err := o.openRepo(ctx)
	if errors.Is(err, errRemote) {
		_ = f.Close()
		return o.handOff(o.repoLocation())
	}
	if err != nil {
		return fmt.Errorf("wal-push %s: %w", name, err)
	}
	defer r.Close()
	res, err := walarchive.PushFileToCopies(ctx, r, name, f, size, o.copies())
	if err != nil {
		return fmt.Errorf("wal-push %s: %w", name, err)
	}
	if o.json {
		return json.NewEncoder(o.stdout).Encode(map[string]any{"name": res.Name, "bytes": res.Bytes, "stored_bytes": res.Stored, "already_archived": res.AlreadyArchived, "seconds": time.Since(start).Seconds()})
	}
	if o.verbose {
		fmt.Fprintf(o.stdout, "archived %s (%d bytes, %d stored, already archived: %v)\n", name, res.Bytes, res.Stored, res.AlreadyArchived)
	}
	return nil
}

func (o *options) fetch(ctx context.Context) error {
	name, path := o.args[0], o.args[1]
	if ok, err := walarchive.ServeSpooled(o.spool, name, path); ok || err != nil {
		return err
	}
	r, err := o.openRepo(ctx)
	if errors.Is(err, errRemote) {
		return o.handOff(o.repoLocation())
	}
	if err != nil {
		return fmt.Errorf("wal-fetch %s: %w", name, err)
	}
	defer r.Close()
	data, err := walarchive.FetchFromCopies(ctx, r, name, o.copies())
	if err != nil {
		if errors.Is(err, walarchive.ErrMissing) {
			return err
		}
		return fmt.Errorf("wal-fetch %s: %w", name, err)
	}
	return walarchive.WriteFileAtomic(path, name, data)
}

// openRepo opens the repository with the key cache, or with the
// password when no key cache is given. It returns errRemote when the
// repository or one of its copies is remote storage.
func (o *options) openRepo(ctx context.Context) (*repo.Repository, error) {
	loc := o.repoLocation()
	if loc == "" {
		return nil, usageErr("no repository given: use -r/--repo REPO or set EINVAULT_REPO")
	}
	path, ok := localPath(loc)
	if !ok {
		return nil, errRemote
	}
	cacheFile := o.keyCache
	if cacheFile == "" {
		cacheFile = o.getenv("EINVAULT_KEY_CACHE")
	}
	var cache, pw []byte
	var err error
	if cacheFile != "" {
		if cache, err = walarchive.ReadKeyCache(cacheFile); err != nil {
			return nil, err
		}
	} else if pw, err = o.password(); err != nil {
		return nil, err
	}
	be, err := local.Open(ctx, path)
	if err != nil {
		if errors.Is(err, backend.ErrNotExist) {
			return nil, &codedError{exitNoRepo, fmt.Errorf("%w at %s (create it with 'einvault init')", repo.ErrNoRepository, loc)}
		}
		return nil, err
	}
	opts := repo.Options{}
	// Tests use cheap key derivation; never set in production.
	if o.getenv("EINVAULT_INSECURE_TEST_KDF") == "1" {
		opts.KDF = crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1}
	}
	var r *repo.Repository
	if cache != nil {
		r, err = repo.OpenWithKeyCache(ctx, be, cache, opts)
	} else {
		r, err = repo.Open(ctx, be, pw, opts)
	}
	if err != nil {
		_ = be.Close()
		switch {
		case errors.Is(err, repo.ErrWrongPassword):
			return nil, &codedError{exitWrongPass, fmt.Errorf("%w: check EINVAULT_PASSWORD or EINVAULT_PASSWORD_FILE", err)}
		case errors.Is(err, repo.ErrNoRepository):
			return nil, &codedError{exitNoRepo, err}
		}
		return nil, err
	}
	// A remote copy needs the full einvault; checked before anything is
	// written, so the call is handed over whole.
	list, _, err := r.LoadCopies(ctx)
	if err == nil {
		for _, c := range list.Copies {
			if _, ok := localPath(c.Location); !ok {
				_ = r.Close()
				return nil, errRemote
			}
		}
	}
	return r, nil
}

// password reads the repository password from EINVAULT_PASSWORD_FILE or
// EINVAULT_PASSWORD (there is no terminal to prompt on).
func (o *options) password() ([]byte, error) {
	if file := o.getenv("EINVAULT_PASSWORD_FILE"); file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usageErr("read password file: %v", err)
		}
		return []byte(strings.TrimRight(string(b), "\r\n")), nil
	}
	if pw := o.getenv("EINVAULT_PASSWORD"); pw != "" {
		return []byte(pw), nil
	}
	return nil, usageErr("no key cache and no password: pass --key-cache FILE (made by 'einvault key cache') or set EINVAULT_KEY_CACHE, EINVAULT_PASSWORD_FILE or EINVAULT_PASSWORD")
}
