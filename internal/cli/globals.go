// Package cli implements the einvault command line: flag parsing, opening
// repositories, progress display, JSON output and exit codes. Commands
// are thin: the work happens in archiver, restorer, checker and friends.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/limit"
	"github.com/einvault/einvault/internal/backend/location"
	"github.com/einvault/einvault/internal/config"
	"github.com/einvault/einvault/internal/crypto"
	"github.com/einvault/einvault/internal/repo"
	"golang.org/x/term"
)

// Exit codes, documented in the README and DESIGN.md.
const (
	ExitOK         = 0
	ExitError      = 1
	ExitUsage      = 2
	ExitPartial    = 3 // finished, but some source files were unreadable
	ExitDegraded   = 4 // finished, but a copy or pre-flight check failed
	ExitDamaged    = 5 // damaged data or failed verification
	ExitNoRepo     = 10
	ExitLocked     = 11
	ExitWrongPass  = 12
	ExitInterupted = 130
)

// ExitError carries an exit code with an error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// WithExit attaches an exit code to err.
func WithExit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// usageError marks errors in the command line itself.
func usageError(format string, args ...any) error {
	return WithExit(ExitUsage, fmt.Errorf(format, args...))
}

// ExitCode maps an error to the documented exit code.
func ExitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, context.Canceled):
		return ExitInterupted
	case errors.Is(err, repo.ErrWrongPassword):
		return ExitWrongPass
	case errors.Is(err, repo.ErrNoRepository):
		return ExitNoRepo
	case errors.Is(err, repo.ErrDamaged), errors.Is(err, repo.ErrBlobMissing):
		return ExitDamaged
	case isLocked(err):
		return ExitLocked
	}
	return ExitError
}

// Globals are the options every command shares, and the process's
// standard streams and environment.
type Globals struct {
	Repo         string
	PasswordFile string
	JSON         bool
	Quiet        bool
	Verbose      int
	NoProgress   bool
	ConfigFile   string // --config (env EINVAULT_CONFIG)
	StateDir     string // --state-dir (env EINVAULT_STATE_DIR)
	// Limits for every backend opened: KiB/s (0 = unlimited) and
	// concurrent operations (0 = unlimited).
	LimitUpload   int64
	LimitDownload int64
	Connections   int

	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string

	// stderrTerminal is true when progress bars may be drawn.
	stderrTerminal bool
	log            *slog.Logger

	// Journal: the run being recorded (set when a command starts), the
	// job it belongs to and who started it ("" = user@host); noJournal
	// is set when the caller journals itself (the daemon).
	op        *opRecord
	cfg       *config.Config // preset by the daemon: LoadConfig returns it
	job       string
	trigger   string
	noJournal bool
	// password is kept once read, so that opening the copies of a
	// repository does not ask again.
	password []byte
}

// Logger returns the process logger (stderr, level from -v/-q).
func (g *Globals) Logger() *slog.Logger { return g.log }

// Printf prints human-readable output to stdout unless --quiet or --json.
func (g *Globals) Printf(format string, args ...any) {
	if g.Quiet || g.JSON {
		return
	}
	fmt.Fprintf(g.Stdout, format, args...)
}

// Warnf prints a warning to stderr unless --quiet.
func (g *Globals) Warnf(format string, args ...any) {
	if g.Quiet {
		return
	}
	fmt.Fprintf(g.Stderr, format, args...)
}

// PrintJSON writes v as one JSON document (one line) to stdout.
func (g *Globals) PrintJSON(v any) error {
	enc := json.NewEncoder(g.Stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// ShowProgress reports whether progress bars should be drawn on stderr.
func (g *Globals) ShowProgress() bool {
	return g.stderrTerminal && !g.Quiet && !g.JSON && !g.NoProgress
}

// repoLocation returns the repository string from the flag or environment.
func (g *Globals) repoLocation() (string, error) {
	loc := g.Repo
	if loc == "" {
		loc = g.Getenv("EINVAULT_REPO")
	}
	if loc == "" {
		return "", usageError("no repository given: use -r/--repo PATH or set EINVAULT_REPO")
	}
	return loc, nil
}

// OpenBackend parses the repository string and opens (or, with create,
// creates) its storage.
func (g *Globals) OpenBackend(ctx context.Context, create bool) (backend.Backend, error) {
	loc, err := g.repoLocation()
	if err != nil {
		return nil, err
	}
	opts := g.LocationOptions()
	if create {
		be, err := location.Create(ctx, loc, opts)
		if errors.Is(err, location.ErrAlreadyExists) {
			return nil, fmt.Errorf("%w at %s: use it, or choose another path", repo.ErrRepoExists, loc)
		}
		if errors.Is(err, location.ErrUsage) {
			return nil, usageError("%v", err)
		}
		return be, err
	}
	be, err := location.Open(ctx, loc, opts)
	if err != nil {
		if errors.Is(err, location.ErrUsage) {
			return nil, usageError("%v", err)
		}
		if errors.Is(err, backend.ErrNotExist) {
			return nil, WithExit(ExitNoRepo, fmt.Errorf("%w at %s (create it with 'einvault init')", repo.ErrNoRepository, loc))
		}
		return nil, err
	}
	return be, nil
}

// LocationOptions are the options for opening any storage of this
// process (the repository and its copies): environment and the
// --limit-upload, --limit-download and --connections limits.
//
// The configuration file, when there is one, gives the credentials of
// the locations it names; an unreadable one is reported and ignored here.
func (g *Globals) LocationOptions() location.Options {
	o := location.Options{Getenv: g.Getenv, Limits: limit.Options{
		Connections: g.Connections,
		UploadBPS:   g.LimitUpload * 1024,
		DownloadBPS: g.LimitDownload * 1024,
	}}
	switch c, err := g.LoadConfig(false); {
	case err != nil:
		if l := g.Logger(); l != nil {
			l.Warn("configuration file not used for credentials", "err", err)
		}
	case c != nil:
		o.Credentials = c.Credentials()
	}
	return o
}

// Password reads the repository password: --password-file,
// EINVAULT_PASSWORD_FILE, EINVAULT_PASSWORD, or a prompt on a terminal.
func (g *Globals) Password(prompt string) ([]byte, error) {
	if g.password != nil {
		return g.password, nil
	}
	pw, err := g.readPassword(prompt)
	if err == nil {
		g.password = pw
	}
	return pw, err
}

func (g *Globals) readPassword(prompt string) ([]byte, error) {
	file := g.PasswordFile
	if file == "" {
		file = g.Getenv("EINVAULT_PASSWORD_FILE")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usageError("read password file: %v", err)
		}
		return bytes.TrimRight(b, "\r\n"), nil
	}
	if p := g.Getenv("EINVAULT_PASSWORD"); p != "" {
		return []byte(p), nil
	}
	if f, ok := g.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(g.Stderr, prompt)
		p, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(g.Stderr)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		return p, nil
	}
	return nil, usageError("no password given: set EINVAULT_PASSWORD, EINVAULT_PASSWORD_FILE or use --password-file")
}

// repoOptions are the repository options for this process.
func (g *Globals) repoOptions() repo.Options {
	o := repo.Options{Logger: g.log}
	// Tests of the command line use cheap key derivation; never set in production.
	if g.Getenv("EINVAULT_INSECURE_TEST_KDF") == "1" {
		o.KDF = crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1}
	}
	return o
}

// OpenRepo opens the repository (without loading the index).
func (g *Globals) OpenRepo(ctx context.Context) (*repo.Repository, error) {
	be, err := g.OpenBackend(ctx, false)
	if err != nil {
		return nil, err
	}
	pw, err := g.Password("Repository password: ")
	if err != nil {
		return nil, err
	}
	r, err := repo.Open(ctx, be, pw, g.repoOptions())
	if err != nil {
		if errors.Is(err, repo.ErrWrongPassword) {
			return nil, WithExit(ExitWrongPass, fmt.Errorf("%w: check EINVAULT_PASSWORD or --password-file", err))
		}
		return nil, err
	}
	return r, nil
}

// OpenRepoIndexed opens the repository and loads its index.
func (g *Globals) OpenRepoIndexed(ctx context.Context) (*repo.Repository, error) {
	r, err := g.OpenRepo(ctx)
	if err != nil {
		return nil, err
	}
	if err := g.loadIndex(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// loadIndex loads the index of r; damaged index files are worked around
// by reading the headers of the packs they listed.
func (g *Globals) loadIndex(ctx context.Context, r *repo.Repository) error {
	if err := r.LoadIndex(ctx); err != nil {
		if !errors.Is(err, repo.ErrDamaged) {
			return fmt.Errorf("load index: %w (run 'einvault check')", err)
		}
		// Damaged index files must not stop a restore of intact data:
		// find the packs they listed from the packs' own headers.
		g.Warnf("warning: %v\nwarning: reading the headers of packs no index lists to find their data; run 'einvault check'\n", err)
		n, errs := r.IndexUnindexedPacks(ctx)
		for _, e := range errs {
			g.Warnf("warning: %v\n", e)
		}
		g.log.Info("recovered index entries from pack headers", "packs", n)
	}
	return nil
}

// SnapshotFilterFlags are the --host/--tag/--path filters.
type SnapshotFilterFlags struct {
	Hosts []string
	Tags  []string
	Paths []string
}

// Filter converts the flags.
func (f SnapshotFilterFlags) Filter() repo.SnapshotFilter {
	var tags []string
	for _, t := range f.Tags {
		for _, x := range strings.Split(t, ",") {
			if x != "" {
				tags = append(tags, x)
			}
		}
	}
	return repo.SnapshotFilter{Hosts: f.Hosts, Tags: tags, Paths: f.Paths}
}

// FindSnapshot resolves "latest", an ID or a unique prefix. "ID:PATH"
// returns the path part separately.
func (g *Globals) FindSnapshot(ctx context.Context, r *repo.Repository, ref string, f repo.SnapshotFilter) (*repo.Snapshot, string, error) {
	ref, sub, _ := strings.Cut(ref, ":")
	all, err := r.Snapshots(ctx)
	if err != nil && len(all) == 0 {
		return nil, "", err
	}
	if err != nil {
		g.Warnf("warning: %v\n", err)
	}
	s, err := repo.FindSnapshot(all, ref, f)
	if err != nil {
		return nil, "", WithExit(ExitError, err)
	}
	return s, sub, nil
}

// Hostname returns the host name recorded in snapshots.
func Hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

// OpenRepoForRestore opens the repository for reading data back. Besides
// the index it reads the headers of packs that no index file lists (none,
// normally; after an index file was lost, the packs it described), so that
// everything still intact is restored.
func (g *Globals) OpenRepoForRestore(ctx context.Context) (*repo.Repository, error) {
	// With copies, reads heal themselves from the next copy (copies.go);
	// each event is reported on stderr as it happens.
	r, _, err := g.openRepoForRestoreHealing(ctx)
	return r, err
}

// LoadConfig reads the configuration file (--config, EINVAULT_CONFIG or
// the default location). When the user named none and the default file
// does not exist it returns nil, nil unless required.
func (g *Globals) LoadConfig(required bool) (*config.Config, error) {
	if g.cfg != nil {
		return g.cfg, nil
	}
	path, explicit := config.Resolve(g.ConfigFile, g.Getenv)
	c, err := config.Load(path, g.Getenv)
	if errors.Is(err, config.ErrNotFound) && !explicit && !required {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// StateDirectory is where the journal, the daemon's state and the alert
// outbox live: --state-dir, else EINVAULT_STATE_DIR, else the config's
// daemon.state_dir (cfg may be nil), else config.DefaultStateDir.
func (g *Globals) StateDirectory(cfg *config.Config) string {
	if g.StateDir != "" {
		return g.StateDir
	}
	if v := g.Getenv("EINVAULT_STATE_DIR"); v != "" {
		return v
	}
	if cfg != nil && cfg.Daemon.StateDir != "" {
		return cfg.Daemon.StateDir
	}
	return config.DefaultStateDir(g.Getenv)
}
