// Package rclone makes any rclone remote (OneDrive, Google Drive,
// Dropbox, S3, ... as configured in the user's rclone.conf) a place for a
// repository: "rclone:REMOTE:path" starts "rclone serve sftp REMOTE:path"
// on a free loopback port and talks to it with the SFTP backend.
//
// The server gets a generated host key (pinned by the client, so no
// known_hosts entry is needed) and a generated authorized client key; the
// keys live in a private temporary directory that is removed on Close.
// Close stops the server; on Linux the kernel also kills it when einvault
// dies (Pdeathsig), so no server is left running.
//
// The rclone binary is EINVAULT_RCLONE or "rclone" from PATH.
package rclone

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/sftp"
)

// ErrAlreadyExists is matched by the error of Create when the remote path
// already holds a repository.
var ErrAlreadyExists = sftp.ErrAlreadyExists

// DefaultStartTimeout bounds the wait for the server to listen.
const DefaultStartTimeout = 30 * time.Second

// Config says which remote to serve and how.
type Config struct {
	// Remote is "REMOTE:path" as rclone understands it, including
	// on-the-fly remotes such as ":local:/srv/backup".
	Remote string
	// Binary is the rclone program; empty means EINVAULT_RCLONE, else
	// "rclone" from PATH.
	Binary string
	// Env is the environment of the rclone process (RCLONE_CONFIG,
	// RCLONE_CONFIG_<NAME>_*, proxies); nil means this process's.
	Env []string
	// Getenv reads EINVAULT_RCLONE; nil means no environment.
	Getenv       func(string) string
	StartTimeout time.Duration // 0 means DefaultStartTimeout
	Logger       *slog.Logger
}

// ParseLocation parses "rclone:REMOTE:path".
func ParseLocation(loc string) (Config, error) {
	rest, ok := strings.CutPrefix(loc, "rclone:")
	if !ok || rest == "" {
		return Config{}, fmt.Errorf("bad rclone location %q: want rclone:REMOTE:path (a remote from 'rclone config', or an on-the-fly one like :local:/dir)", loc)
	}
	if !strings.Contains(rest, ":") {
		return Config{}, fmt.Errorf("bad rclone location %q: no remote; want rclone:REMOTE:path", loc)
	}
	if strings.ContainsAny(rest, "\x00\n") {
		return Config{}, fmt.Errorf("bad rclone location %q: control character", loc)
	}
	return Config{Remote: rest}, nil
}

// Backend is an SFTP backend on a private rclone server.
type Backend struct {
	*sftp.Backend
	srv *server
}

var (
	_ backend.Backend       = (*Backend)(nil)
	_ backend.SpaceReporter = (*Backend)(nil)
)

// Open starts the server and opens the repository on the remote; a
// missing repository matches backend.ErrNotExist.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	return start(ctx, cfg, false)
}

// Create starts the server and makes the repository layout on the
// remote; it fails with ErrAlreadyExists when a config file is there.
func Create(ctx context.Context, cfg Config) (*Backend, error) {
	return start(ctx, cfg, true)
}

func start(ctx context.Context, cfg Config, create bool) (*Backend, error) {
	srv, err := newServer(cfg)
	if err != nil {
		return nil, err
	}
	if err := srv.start(ctx); err != nil {
		srv.stop()
		return nil, err
	}
	scfg := sftp.Config{
		User:              "einvault",
		Host:              "127.0.0.1",
		Port:              srv.port,
		Path:              "/",
		KeyFile:           srv.clientKey,
		NoDefaultKeys:     true,
		HostKey:           srv.hostKey,
		MissingDirIsEmpty: true,
		Label:             "rclone:" + cfg.Remote,
		Logger:            cfg.Logger,
		BeforeDial:        srv.ensure,
	}
	var be *sftp.Backend
	if create {
		be, err = sftp.Create(ctx, scfg)
	} else {
		be, err = sftp.Open(ctx, scfg)
	}
	if err != nil {
		log := srv.logTail()
		srv.stop()
		if log != "" && !errors.Is(err, backend.ErrNotExist) && !errors.Is(err, sftp.ErrAlreadyExists) {
			return nil, fmt.Errorf("%w (rclone said: %s)", err, log)
		}
		return nil, err
	}
	return &Backend{Backend: be, srv: srv}, nil
}

// A Load or Stat that found no file looks again after vfsSettle, then
// after twice and four times that (0.7 s in all) before the file counts
// as missing: rclone's VFS briefly hides a file that is being replaced
// by a rename (seen with rclone 1.60; under load one 100 ms wait was not
// always enough), which must not look like a missing file.
const (
	vfsSettle      = 100 * time.Millisecond
	vfsSettleTries = 3
)

// Load opens h, looking twice before reporting it missing (also when
// the file vanishes between opening and the first byte).
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64) (io.ReadCloser, error) {
	rd, err := b.loadSettled(ctx, h, offset, length)
	if err != nil {
		return nil, err
	}
	return &settleReader{ctx: ctx, b: b, h: h, offset: offset, length: length, rd: rd}, nil
}

// settleReader opens the file once more when its first read finds it
// missing.
type settleReader struct {
	ctx            context.Context
	b              *Backend
	h              backend.Handle
	offset, length int64
	rd             io.ReadCloser
	started        bool
}

func (r *settleReader) reopen(err error) bool {
	if r.started || !errors.Is(err, backend.ErrNotExist) {
		return false
	}
	r.started = true
	_ = r.rd.Close()
	if !settle(r.ctx, vfsSettle) {
		return false
	}
	rd, oerr := r.b.loadSettled(r.ctx, r.h, r.offset, r.length)
	if oerr != nil {
		r.rd = io.NopCloser(errReader{oerr})
		return true
	}
	r.rd = rd
	return true
}

func (r *settleReader) Read(p []byte) (int, error) {
	n, err := r.rd.Read(p)
	if n == 0 && r.reopen(err) {
		n, err = r.rd.Read(p)
	}
	if n > 0 {
		r.started = true
	}
	return n, err
}

// WriteTo keeps the SFTP reader's parallel download.
func (r *settleReader) WriteTo(w io.Writer) (int64, error) {
	n, err := io.Copy(w, r.rd)
	if n == 0 && r.reopen(err) {
		n, err = io.Copy(w, r.rd)
	}
	r.started = true
	return n, err
}

func (r *settleReader) Close() error { return r.rd.Close() }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// Stat returns the size of h, looking twice before reporting it missing.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	fi, err := b.Backend.Stat(ctx, h)
	for i := 0; i < vfsSettleTries && errors.Is(err, backend.ErrNotExist) && settle(ctx, vfsSettle<<i); i++ {
		fi, err = b.Backend.Stat(ctx, h)
	}
	return fi, err
}

// loadSettled is the SFTP Load, looked at again while rclone may be
// hiding a file that is being replaced.
func (b *Backend) loadSettled(ctx context.Context, h backend.Handle, offset, length int64) (io.ReadCloser, error) {
	rd, err := b.Backend.Load(ctx, h, offset, length)
	for i := 0; i < vfsSettleTries && errors.Is(err, backend.ErrNotExist) && settle(ctx, vfsSettle<<i); i++ {
		rd, err = b.Backend.Load(ctx, h, offset, length)
	}
	return rd, err
}

func settle(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Close closes the connection and stops the rclone server.
func (b *Backend) Close() error {
	err := b.Backend.Close()
	if serr := b.srv.stop(); err == nil {
		err = serr
	}
	return err
}

// Pid returns the process ID of the rclone server (for tests).
func (b *Backend) Pid() int {
	b.srv.mu.Lock()
	defer b.srv.mu.Unlock()
	return b.srv.cmd.Process.Pid
}

// server runs "rclone serve sftp" and restarts it, on the same port with
// the same keys, when it has died.
type server struct {
	cfg       Config
	bin       string
	dir       string
	hostKey   ssh.PublicKey
	clientKey string
	timeout   time.Duration

	mu      sync.Mutex // guards the fields below
	port    int
	cmd     *exec.Cmd
	done    chan struct{}
	log     *tailBuffer
	stopped bool
}

func newServer(cfg Config) (*server, error) {
	bin := cfg.Binary
	if bin == "" && cfg.Getenv != nil {
		bin = cfg.Getenv("EINVAULT_RCLONE")
	}
	if bin == "" {
		bin = "rclone"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("rclone:%s: %s not found: install rclone (apt install rclone) or set EINVAULT_RCLONE: %w", cfg.Remote, bin, err)
	}
	dir, err := os.MkdirTemp("", "einvault-rclone-")
	if err != nil {
		return nil, fmt.Errorf("rclone: %w", err)
	}
	s := &server{cfg: cfg, bin: path, dir: dir, clientKey: filepath.Join(dir, "client_key"), timeout: cfg.StartTimeout, log: &tailBuffer{}}
	if s.timeout <= 0 {
		s.timeout = DefaultStartTimeout
	}
	if s.hostKey, err = writeKey(filepath.Join(dir, "host_key")); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	clientPub, err := writeKey(s.clientKey)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("rclone: %w", err)
	}
	return s, nil
}

// start launches the server on a free port (trying another one when the
// port was taken meanwhile) and waits until it listens.
func (s *server) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	for range 3 {
		port, perr := freePort()
		if perr != nil {
			return fmt.Errorf("rclone: find a free loopback port: %w", perr)
		}
		s.port = port
		if err = s.launch(ctx); err == nil || ctx.Err() != nil || !strings.Contains(s.log.String(), "address already in use") {
			break
		}
	}
	return err
}

// ensure restarts a server that died (same port, same keys); it is
// called before every SFTP dial.
func (s *server) ensure(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return fmt.Errorf("rclone:%s: server stopped", s.cfg.Remote)
	}
	select {
	case <-s.done:
	default:
		return nil // running
	}
	s.cfg.logger().Warn("rclone: server died; restarting it", "remote", s.cfg.Remote, "log", s.logTailLocked())
	if err := s.launch(ctx); err != nil {
		return backend.Transient(err)
	}
	return nil
}

// launch starts the process on s.port; s.mu is held.
func (s *server) launch(ctx context.Context) error {
	s.log = &tailBuffer{}
	cmd := exec.Command(s.bin, "serve", "sftp", s.cfg.Remote,
		"--addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		"--key", filepath.Join(s.dir, "host_key"),
		"--authorized-keys", filepath.Join(s.dir, "authorized_keys"),
		"--user", "einvault",
	)
	cmd.Env = s.cfg.Env
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("rclone:%s: start %s: %w", s.cfg.Remote, s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	if err := s.waitListening(ctx, s.timeout); err != nil {
		s.kill()
		return fmt.Errorf("rclone:%s: %w", s.cfg.Remote, err)
	}
	return nil
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

func (s *server) waitListening(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	for {
		select {
		case <-s.done:
			return fmt.Errorf("rclone serve sftp exited at start: %s", s.logTailLocked())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("rclone serve sftp did not listen on %s within %s: %s", addr, timeout, s.logTailLocked())
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		case <-s.done:
			t.Stop()
		}
	}
}

// stop ends the server for good (SIGTERM, then SIGKILL after 5 seconds)
// and removes its keys. A server that exits on SIGTERM is a clean stop.
func (s *server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	defer os.RemoveAll(s.dir)
	if s.cmd == nil {
		return nil
	}
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-s.done:
		return nil
	case <-t.C:
		s.kill()
		return fmt.Errorf("rclone serve sftp did not stop on SIGTERM within 5s; killed it")
	}
}

// kill ends the process at once and waits for it; s.mu is held.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

func (s *server) logTail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logTailLocked()
}

func (s *server) logTailLocked() string {
	lines := strings.Split(strings.TrimSpace(s.log.String()), "\n")
	var keep []string
	for _, l := range lines {
		if strings.Contains(l, "ERROR") || strings.Contains(l, "Failed") || strings.Contains(l, "error") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	if len(keep) == 0 && len(lines) > 0 {
		keep = lines[len(lines)-1:]
	}
	if len(keep) > 3 {
		keep = keep[len(keep)-3:]
	}
	return strings.Join(keep, "; ")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeKey writes a new ed25519 private key to path (OpenSSH format).
func writeKey(path string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("rclone: generate key: %w", err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, fmt.Errorf("rclone: marshal key: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		return nil, fmt.Errorf("rclone: write key: %w", err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("rclone: %w", err)
	}
	return sp, nil
}

// tailBuffer keeps the last 64 KiB written to it; safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.buf.Len() > 64<<10 {
		keep := b.buf.Bytes()[b.buf.Len()-32<<10:]
		b.buf = *bytes.NewBuffer(append([]byte(nil), keep...))
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
