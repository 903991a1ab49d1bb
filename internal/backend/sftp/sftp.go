// Package sftp owns the backend for a repository on an SSH server, over
// SFTP (github.com/pkg/sftp on golang.org/x/crypto/ssh).
//
// Locations are "sftp:user@host[:port]:/path" or
// "sftp://user@host[:port]/path" (see ParseLocation). The directory
// layout below the path is the one of package local.
//
// Authentication is by key only: the keys of the SSH agent at
// SSH_AUTH_SOCK and ~/.ssh/id_ed25519, id_ecdsa and id_rsa, or one key
// file given with "?key=FILE" or EINVAULT_SFTP_KEY (a passphrase-protected
// key must be loaded into the agent). The server's host key is checked
// against ~/.ssh/known_hosts (or "?known-hosts=FILE",
// EINVAULT_SFTP_KNOWN_HOSTS): an unknown key is refused with its
// fingerprint unless "?accept-new-host-key=1" or EINVAULT_SFTP_ACCEPT_NEW=1
// asks to add it (like StrictHostKeyChecking=accept-new); a changed key is
// always refused.
//
// Save writes ".tmp-<name>-<random>" beside the final name, fsyncs it when
// the server supports fsync@openssh.com, and renames it into place with
// posix-rename@openssh.com, so the final name never holds a partial file.
// A lost connection is reported as a transient error and the next call
// dials again, so the retry decorator recovers from a cut. One SSH
// connection carries all operations, with many SFTP requests in flight.
package sftp

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/einvault/einvault/internal/backend"
)

// TempPrefix starts the names of temporary files of saves in progress.
const TempPrefix = ".tmp-"

// ErrAlreadyExists is matched by the error of Create when the path
// already holds a repository.
var ErrAlreadyExists = errors.New("repository already exists")

// Defaults for zero Config fields.
const (
	DefaultDialTimeout                 = 30 * time.Second
	DefaultKeepAlive                   = 15 * time.Second
	DefaultRequestsPerFile             = 16
	createDirWorkers                   = 16
	listWorkers                        = 16
	fileMode               os.FileMode = 0o600
)

// Config says where the repository is and how to connect.
type Config struct {
	User string
	Host string
	Port int // 0 means 22
	// Path is the repository directory on the server; a relative path is
	// relative to the login directory.
	Path string

	// KeyFile, if set, is the only private key used (besides Password).
	KeyFile string
	// NoDefaultKeys skips the agent and ~/.ssh/id_* (when KeyFile is empty).
	NoDefaultKeys bool
	// Password authenticates with a password (for servers this program
	// starts itself, such as rclone's); users give keys.
	Password string
	// KnownHostsFile defaults to ~/.ssh/known_hosts.
	KnownHostsFile string
	// AcceptNewHostKey adds an unknown host key to KnownHostsFile.
	AcceptNewHostKey bool
	// HostKey, if set, is the only host key accepted; known_hosts is not
	// read.
	HostKey ssh.PublicKey

	// SequentialWrites sends the blocks of a file in order, one request at
	// a time ahead (for servers that cannot write out of order).
	SequentialWrites bool
	// MissingDirIsEmpty lists a missing directory as empty (for remotes
	// without real directories); by default it is an error, as for a NAS
	// path that is not mounted.
	MissingDirIsEmpty bool
	// RequestsPerFile is the number of SFTP requests in flight per file
	// transfer; 0 means DefaultRequestsPerFile.
	RequestsPerFile int
	// PacketSize is the most data one SFTP read or write request carries;
	// 0 means DefaultPacketSize, which every server must accept.
	PacketSize int

	DialTimeout time.Duration // 0 means DefaultDialTimeout
	KeepAlive   time.Duration // 0 means DefaultKeepAlive; negative disables
	// Label replaces the location shown to users (rclone shows its remote).
	Label string
	// BeforeDial, if set, runs before every connection attempt; a server
	// this program runs itself (rclone's) is restarted there when it died.
	BeforeDial func(ctx context.Context) error

	Getenv func(string) string // environment (HOME, SSH_AUTH_SOCK, EINVAULT_SFTP_*); nil means none
	Logger *slog.Logger
}

// Packet sizes: the 32 KiB every SFTP server accepts (the default), and
// the most OpenSSH's sftp-server reads or writes per request (its 256 KiB
// message limit less 1 KiB for the header: SFTP_MAX_READ_LENGTH). Larger
// requests mean fewer messages per byte, but with 16 of them in flight a
// file's writes overrun the SSH channel's 2 MiB window and single
// transfers stalled for up to 1.6 s on a busy machine (BenchmarkSaveOne,
// BenchmarkSave); OpenSSHPacketSize is therefore only used when asked for.
const (
	DefaultPacketSize = 32 << 10
	OpenSSHPacketSize = 255 << 10
)

// packetSize returns the request size for a server that sent the SSH
// version string version: Config.PacketSize, capped at what OpenSSH
// accepts when the server is OpenSSH, or the default.
func (c Config) packetSize(version string) int {
	switch {
	case c.PacketSize <= 0:
		return DefaultPacketSize
	case strings.HasPrefix(version, "SSH-2.0-OpenSSH_"):
		return min(c.PacketSize, OpenSSHPacketSize)
	}
	return c.PacketSize
}

// Backend stores a repository on an SFTP server. It is safe for
// concurrent use.
type Backend struct {
	cfg  Config
	root string
	keys *hostKeyChecker

	mu     sync.Mutex // guards cur and closed; held while dialling
	cur    *conn
	closed bool
}

var (
	_ backend.Backend       = (*Backend)(nil)
	_ backend.SpaceReporter = (*Backend)(nil)
)

// conn is one SSH connection with its SFTP session.
type conn struct {
	ssh       *ssh.Client
	sftp      *sftp.Client
	dead      chan struct{} // closed when the connection has ended
	closeOnce sync.Once
	posix     bool // posix-rename@openssh.com
	fsync     bool // fsync@openssh.com
	statvfs   bool // statvfs@openssh.com
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		_ = c.sftp.Close()
		_ = c.ssh.Close()
	})
}

func (c *conn) isDead() bool {
	select {
	case <-c.dead:
		return true
	default:
		return false
	}
}

func newBackend(cfg Config) *Backend {
	cfg = cfg.withEnv()
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.RequestsPerFile <= 0 {
		cfg.RequestsPerFile = DefaultRequestsPerFile
	}
	root := path.Clean(cfg.Path)
	return &Backend{cfg: cfg, root: root, keys: &hostKeyChecker{cfg: cfg, file: cfg.knownHostsFile()}}
}

// Open connects and returns a backend for the existing repository at
// cfg.Path. When there is no repository the error matches
// backend.ErrNotExist.
func Open(ctx context.Context, cfg Config) (*Backend, error) {
	b := newBackend(cfg)
	c, err := b.client(ctx)
	if err != nil {
		return nil, fmt.Errorf("open repository at %s: %w", b.Location(), err)
	}
	fi, err := c.sftp.Stat(b.root)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		b.Close()
		return nil, fmt.Errorf("repository not found at %s: directory does not exist (run 'einvault init' to create one): %w", b.Location(), backend.ErrNotExist)
	case err != nil:
		b.Close()
		return nil, b.classify(c, "open repository", b.root, err)
	case !fi.IsDir():
		b.Close()
		return nil, fmt.Errorf("repository not found at %s: not a directory: %w", b.Location(), backend.ErrNotExist)
	}
	if _, err := c.sftp.Stat(b.path(backend.Handle{Type: backend.ConfigFile})); err != nil {
		b.Close()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("repository not found at %s: no config file (run 'einvault init' first): %w", b.Location(), backend.ErrNotExist)
		}
		return nil, b.classify(c, "open repository", b.root, err)
	}
	return b, nil
}

// Create connects, makes the repository's directory tree at cfg.Path and
// returns a backend for it. It refuses, with an error matching
// ErrAlreadyExists, when a config file is there. It does not write the
// config file.
func Create(ctx context.Context, cfg Config) (*Backend, error) {
	b := newBackend(cfg)
	if err := b.create(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

func (b *Backend) create(ctx context.Context) error {
	op := "create repository at " + b.Location()
	c, err := b.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	switch _, err := c.sftp.Stat(b.path(backend.Handle{Type: backend.ConfigFile})); {
	case err == nil:
		return fmt.Errorf("%s: %w (a config file is there; open it instead, or choose an empty directory)", op, ErrAlreadyExists)
	case !errors.Is(err, fs.ErrNotExist):
		return b.classify(c, op, b.root, err)
	}
	if err := c.sftp.MkdirAll(b.root); err != nil {
		return b.classify(c, op, b.root, err)
	}
	var dirs []string
	for _, t := range backend.AllFileTypes {
		if t != backend.ConfigFile {
			dirs = append(dirs, path.Join(b.root, string(t)))
		}
	}
	if err := b.mkdirs(ctx, c, op, dirs); err != nil {
		return err
	}
	dirs = dirs[:0]
	for i := range 256 {
		dirs = append(dirs, path.Join(b.root, string(backend.PackFile), fmt.Sprintf("%02x", i)))
	}
	return b.mkdirs(ctx, c, op, dirs)
}

// mkdirs creates dirs (whose parents exist) with several requests in
// flight; existing directories are fine.
func (b *Backend) mkdirs(ctx context.Context, c *conn, op string, dirs []string) error {
	work := make(chan string)
	errs := make(chan error, len(dirs))
	var wg sync.WaitGroup
	for range min(createDirWorkers, len(dirs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				if err := c.sftp.Mkdir(d); err != nil {
					if fi, serr := c.sftp.Stat(d); serr == nil && fi.IsDir() {
						continue
					}
					errs <- b.classify(c, op, d, err)
				}
			}
		}()
	}
	for _, d := range dirs {
		if ctx.Err() != nil {
			break
		}
		work <- d
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return <-errs // nil when the channel is empty
}

// Location returns the repository location without secrets.
func (b *Backend) Location() string {
	if b.cfg.Label != "" {
		return b.cfg.Label
	}
	c := b.cfg
	c.Path = b.root
	return c.String()
}

// client returns the current connection, dialling a new one when there
// is none or the last one died.
func (b *Backend) client(ctx context.Context) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("sftp backend %s is closed", b.Location())
	}
	if b.cur != nil && !b.cur.isDead() {
		return b.cur, nil
	}
	if b.cur != nil {
		b.cur.close()
		b.cur = nil
	}
	if b.cfg.BeforeDial != nil {
		if err := b.cfg.BeforeDial(ctx); err != nil {
			return nil, err
		}
	}
	c, err := b.dial(ctx)
	if err != nil {
		return nil, err
	}
	b.cur = c
	return c, nil
}

// drop forgets c (if it is the current connection) and closes it, so the
// next call dials again.
func (b *Backend) drop(c *conn) {
	b.mu.Lock()
	if b.cur == c {
		b.cur = nil
	}
	b.mu.Unlock()
	c.close()
}

func (b *Backend) dial(ctx context.Context) (*conn, error) {
	addr := b.cfg.addr()
	ctx, cancel := context.WithTimeout(ctx, b.cfg.DialTimeout)
	defer cancel()
	d := net.Dialer{KeepAlive: 15 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, fmt.Errorf("connect to %s: %w", addr, err)
		}
		return nil, backend.Transient(fmt.Errorf("connect to SFTP server %s: %w (is the server up and reachable?)", addr, err))
	}
	// The handshake obeys the context through the connection's deadline.
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	auth, closeAgent, err := b.cfg.authMethods()
	defer closeAgent()
	if err != nil {
		stop()
		nc.Close()
		return nil, err
	}
	cb, algos, err := b.keys.callback(addr)
	if err != nil {
		stop()
		nc.Close()
		return nil, err
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{
		User:              b.cfg.User,
		Auth:              auth,
		HostKeyCallback:   cb,
		HostKeyAlgorithms: algos,
		Timeout:           b.cfg.DialTimeout,
	})
	stopped := stop()
	if err != nil {
		nc.Close()
		switch {
		case errors.Is(err, ErrUnknownHostKey), errors.Is(err, ErrHostKeyChanged):
			return nil, unwrapHandshake(err)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("%w: %s refused our keys as user %q: add the public key to the server's ~/.ssh/authorized_keys or give the right key with ?key=FILE or EINVAULT_SFTP_KEY (%v)", errAuth, addr, b.cfg.User, err)
		case !stopped && ctx.Err() != nil:
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, backend.Transient(fmt.Errorf("SSH handshake with %s: timed out: %w", addr, err))
			}
			return nil, fmt.Errorf("SSH handshake with %s: %w", addr, ctx.Err())
		}
		return nil, backend.Transient(fmt.Errorf("SSH handshake with %s: %w", addr, err))
	}
	_ = nc.SetDeadline(time.Time{})
	client := ssh.NewClient(sc, chans, reqs)
	opts := []sftp.ClientOption{
		sftp.MaxPacketUnchecked(b.cfg.packetSize(string(client.ServerVersion()))),
		sftp.UseConcurrentReads(true),
		sftp.UseConcurrentWrites(!b.cfg.SequentialWrites),
		sftp.MaxConcurrentRequestsPerFile(b.cfg.RequestsPerFile),
		sftp.UseFstat(true),
	}
	sc2, err := sftp.NewClient(client, opts...)
	if err != nil {
		// A connection cut while the session channel opens surfaces as an
		// odd protocol error ("unexpected packet in response to channel
		// open"): ask the server whether the connection still lives.
		_, _, perr := client.SendRequest("keepalive@openssh.com", true, nil)
		client.Close()
		if isConnError(err) || perr != nil {
			return nil, backend.Transient(fmt.Errorf("start SFTP on %s: connection lost: %w", addr, err))
		}
		return nil, fmt.Errorf("start SFTP on %s: %w (is the sftp subsystem enabled in sshd_config?)", addr, err)
	}
	c := &conn{ssh: client, sftp: sc2, dead: make(chan struct{})}
	c.posix = hasExt(sc2, "posix-rename@openssh.com")
	c.fsync = hasExt(sc2, "fsync@openssh.com")
	c.statvfs = hasExt(sc2, "statvfs@openssh.com")
	go func() {
		_ = client.Wait()
		close(c.dead)
		c.close()
	}()
	if b.cfg.KeepAlive > 0 {
		go keepAlive(c, b.cfg.KeepAlive)
	}
	b.cfg.logger().Debug("sftp: connected", "addr", addr, "posix-rename", c.posix, "fsync", c.fsync, "statvfs", c.statvfs)
	return c, nil
}

func hasExt(c *sftp.Client, name string) bool {
	_, ok := c.HasExtension(name)
	return ok
}

// unwrapHandshake drops x/crypto's "ssh: handshake failed: " prefix from
// host key errors, which carry their own one-line explanation: it returns
// the innermost error that still explains itself (the one wrapping the
// sentinel).
func unwrapHandshake(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil || u == ErrUnknownHostKey || u == ErrHostKeyChanged ||
			!(errors.Is(u, ErrUnknownHostKey) || errors.Is(u, ErrHostKeyChanged)) {
			return err
		}
		err = u
	}
}

// keepAlive pings the server and closes the connection when it stops
// answering, so that calls on a dead network fail instead of hanging.
func keepAlive(c *conn, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.dead:
			return
		case <-t.C:
		}
		res := make(chan error, 1)
		go func() {
			_, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil)
			res <- err
		}()
		timer := time.NewTimer(2 * every)
		select {
		case err := <-res:
			timer.Stop()
			if err != nil {
				c.close()
				return
			}
		case <-timer.C:
			c.close()
			return
		case <-c.dead:
			timer.Stop()
			return
		}
	}
}

// isConnError reports whether err means the connection is gone or broken.
func isConnError(err error) bool {
	var ne net.Error
	var errno syscall.Errno
	switch {
	case errors.Is(err, sftp.ErrSSHFxConnectionLost),
		errors.Is(err, sftp.ErrSSHFxNoConnection),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed),
		errors.As(err, &ne):
		return true
	case errors.As(err, &errno):
		return errno == syscall.ECONNRESET || errno == syscall.EPIPE || errno == syscall.ECONNABORTED || errno == syscall.ETIMEDOUT
	}
	return false
}

// classify turns an SFTP error into a backend error: a missing file
// matches backend.ErrNotExist, a lost connection is dropped (the next call
// dials again) and marked transient, the rest is permanent.
func (b *Backend) classify(c *conn, op, p string, err error) error {
	var se *sftp.StatusError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w: %s: %w", op, backend.ErrNotExist, p, err)
	case isConnError(err) || c.isDead():
		b.drop(c)
		return backend.Transient(fmt.Errorf("%s: connection to %s lost: %w", op, b.cfg.addr(), err))
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s: permission denied on %s: check the server-side owner and mode of the repository directory: %w", op, p, err)
	case errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxFailure && strings.Contains(strings.ToLower(se.Error()), "space"):
		return fmt.Errorf("%s: disk full on %s: free space and run again: %w", op, b.cfg.addr(), err)
	}
	return fmt.Errorf("%s: %s: %w", op, p, err)
}

// path returns the server path of a validated handle.
func (b *Backend) path(h backend.Handle) string {
	switch h.Type {
	case backend.ConfigFile:
		return path.Join(b.root, "config")
	case backend.PackFile:
		prefix := h.Name[:2]
		if rest, ok := strings.CutPrefix(h.Name, TempPrefix); ok && len(rest) >= 2 {
			prefix = rest[:2]
		}
		return path.Join(b.root, string(backend.PackFile), prefix, h.Name)
	}
	return path.Join(b.root, string(h.Type), h.Name)
}

func (b *Backend) dirOf(t backend.FileType) string {
	if t == backend.ConfigFile {
		return b.root
	}
	return path.Join(b.root, string(t))
}

func check(h backend.Handle) error {
	if err := checkType(h.Type); err != nil {
		return err
	}
	if err := h.Valid(); err != nil {
		return err
	}
	if h.Type == backend.PackFile && len(h.Name) < 2 {
		return fmt.Errorf("invalid handle %v: pack names need at least two characters", h)
	}
	return nil
}

func checkType(t backend.FileType) error {
	for _, k := range backend.AllFileTypes {
		if t == k {
			return nil
		}
	}
	return fmt.Errorf("invalid file type %q: want one of %v", t, backend.AllFileTypes)
}

// readError marks an error of the caller's reader.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }
func (e readError) Unwrap() error { return e.err }

// srcReader reads the caller's source, stopping once ctx is done and
// marking the source's errors.
type srcReader struct {
	ctx context.Context
	r   io.Reader
}

func (r srcReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, readError{err}
	}
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = readError{err}
	}
	return n, err
}

func randomSuffix() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Save stores size bytes from rd under h atomically.
func (b *Backend) Save(ctx context.Context, h backend.Handle, rd io.Reader, size int64) (err error) {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	if err := check(h); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if size < 0 {
		return fmt.Errorf("save %v: negative size %d", h, size)
	}
	op := "save " + h.String()
	c, err := b.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	final := b.path(h)
	dir := path.Dir(final)
	tmp := path.Join(dir, TempPrefix+path.Base(final)+"-"+randomSuffix())
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	f, err := c.sftp.OpenFile(tmp, flags)
	if errors.Is(err, fs.ErrNotExist) && h.Type != backend.ConfigFile {
		// A data/xx directory may be missing in a copy made by a tool
		// that skips empty directories; the root itself must exist.
		if _, serr := c.sftp.Stat(b.root); serr == nil {
			if merr := c.sftp.MkdirAll(dir); merr != nil {
				return b.classify(c, op, dir, merr)
			}
			f, err = c.sftp.OpenFile(tmp, flags)
		}
	}
	if err != nil {
		return b.classify(c, op, tmp, err)
	}
	closed := false
	defer func() {
		if err == nil {
			return
		}
		if !closed {
			_ = f.Close()
		}
		b.removeTemp(ctx, c, tmp)
	}()
	_ = f.Chmod(fileMode) // servers that cannot chmod keep their default

	src := srcReader{ctx, io.LimitReader(rd, size+1)}
	var n int64
	if b.cfg.SequentialWrites {
		n, err = f.ReadFrom(src)
	} else {
		n, err = f.ReadFromWithConcurrency(src, b.cfg.RequestsPerFile)
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		var re readError
		if errors.As(err, &re) {
			return fmt.Errorf("%s: read source: %w", op, re.err)
		}
		return b.classify(c, op, tmp, err)
	}
	if n != size {
		return fmt.Errorf("%s: source yielded %d bytes, %d announced (source changed while being saved?)", op, min(n, size+1), size)
	}
	if c.fsync {
		if err := f.Sync(); err != nil {
			return b.classify(c, op+" (fsync)", tmp, err)
		}
	}
	closed = true
	if err := f.Close(); err != nil {
		return b.classify(c, op, tmp, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if c.posix {
		err = c.sftp.PosixRename(tmp, final)
	} else {
		// Plain SFTP rename refuses to replace: remove the old file
		// first. This is not atomic, but repository files are
		// content-addressed, so a replacement has the same content.
		err = c.sftp.Rename(tmp, final)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			if _, serr := c.sftp.Stat(final); serr == nil {
				_ = c.sftp.Remove(final)
				err = c.sftp.Rename(tmp, final)
			}
		}
	}
	if err != nil {
		return b.classify(c, op+" (rename into place)", final, err)
	}
	return nil
}

// removeTemp removes the temporary file of a failed save, over a new
// connection when the save failed because its connection was lost (the
// server keeps what arrived). What cannot be removed stays as a ".tmp-"
// leftover, which List reports.
func (b *Backend) removeTemp(ctx context.Context, c *conn, tmp string) {
	err := c.sftp.Remove(tmp)
	if err == nil || errors.Is(err, fs.ErrNotExist) || !(isConnError(err) || c.isDead()) || ctx.Err() != nil {
		return
	}
	b.drop(c)
	if nc, err := b.client(ctx); err == nil {
		_ = nc.sftp.Remove(tmp)
	}
}

// Load returns a reader over length bytes of h at offset; length 0 means
// to the end.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load %v: %w", h, err)
	}
	if err := check(h); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("load %v: invalid range offset %d length %d", h, offset, length)
	}
	op := "load " + h.String()
	c, err := b.client(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	p := b.path(h)
	f, err := c.sftp.Open(p)
	if err != nil {
		return nil, b.classify(c, op, p, err)
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			_ = f.Close()
			return nil, b.classify(c, op, p, err)
		}
	}
	return &loadReader{ctx: ctx, b: b, c: c, f: f, op: op, p: p, left: length, limited: length > 0}, nil
}

// loadReader reads a remote file, marking connection errors transient.
type loadReader struct {
	ctx     context.Context
	b       *Backend
	c       *conn
	f       *sftp.File
	op, p   string
	left    int64
	limited bool
}

func (r *loadReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", r.op, err)
	}
	if r.limited {
		if r.left <= 0 {
			return 0, io.EOF
		}
		if int64(len(p)) > r.left {
			p = p[:r.left]
		}
	}
	n, err := r.f.Read(p)
	r.left -= int64(n)
	if err != nil && err != io.EOF {
		err = r.b.classify(r.c, r.op, r.p, err)
	}
	return n, err
}

// WriteTo streams a whole-file load with many reads in flight.
func (r *loadReader) WriteTo(w io.Writer) (int64, error) {
	if r.limited {
		return io.Copy(w, struct{ io.Reader }{r})
	}
	n, err := r.f.WriteTo(ctxWriter{r.ctx, w})
	if err != nil {
		if cerr := r.ctx.Err(); cerr != nil {
			return n, fmt.Errorf("%s: %w", r.op, cerr)
		}
		if errors.Is(err, errWriter) {
			return n, err
		}
		return n, r.b.classify(r.c, r.op, r.p, err)
	}
	return n, nil
}

func (r *loadReader) Close() error { return r.f.Close() }

var errWriter = errors.New("destination write failed")

// ctxWriter stops a download once ctx is done and marks the destination's
// errors.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (w ctxWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.w.Write(p)
	if err != nil {
		err = fmt.Errorf("%w: %w", errWriter, err)
	}
	return n, err
}

// Stat returns the size of h.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return backend.FileInfo{}, fmt.Errorf("stat %v: %w", h, err)
	}
	if err := check(h); err != nil {
		return backend.FileInfo{}, fmt.Errorf("stat: %w", err)
	}
	op := "stat " + h.String()
	c, err := b.client(ctx)
	if err != nil {
		return backend.FileInfo{}, fmt.Errorf("%s: %w", op, err)
	}
	p := b.path(h)
	fi, err := c.sftp.Stat(p)
	if err != nil {
		return backend.FileInfo{}, b.classify(c, op, p, err)
	}
	if !fi.Mode().IsRegular() {
		return backend.FileInfo{}, fmt.Errorf("%s: %s is not a regular file (%v); remove or move it", op, p, fi.Mode().Type())
	}
	name := h.Name
	if h.Type == backend.ConfigFile {
		name = "config"
	}
	return backend.FileInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List calls fn for every regular file of type t, including ".tmp-*"
// leftovers of interrupted saves. A missing type directory is an error
// unless Config.MissingDirIsEmpty is set.
func (b *Backend) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %v: %w", t, err)
	}
	if err := checkType(t); err != nil {
		return fmt.Errorf("list: %w", err)
	}
	op := "list " + string(t)
	if t == backend.ConfigFile {
		fi, err := b.Stat(ctx, backend.Handle{Type: backend.ConfigFile})
		if errors.Is(err, backend.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(fi)
	}
	c, err := b.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	top := b.dirOf(t)
	if t != backend.PackFile {
		return b.listDir(ctx, c, op, top, fn)
	}
	entries, err := c.sftp.ReadDirContext(ctx, top)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && b.cfg.MissingDirIsEmpty {
			return nil
		}
		return b.listError(ctx, c, op, top, err)
	}
	var subdirs []string
	for _, e := range entries {
		if e.IsDir() {
			subdirs = append(subdirs, path.Join(top, e.Name()))
		}
	}
	return b.listDirs(ctx, c, op, subdirs, fn)
}

// listDirs lists several directories with requests in flight for up to
// listWorkers of them at once, calling fn from this goroutine only.
func (b *Backend) listDirs(ctx context.Context, c *conn, op string, dirs []string, fn func(backend.FileInfo) error) error {
	type result struct {
		files []backend.FileInfo
		err   error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]chan result, len(dirs))
	for i := range results {
		results[i] = make(chan result, 1)
	}
	sem := make(chan struct{}, listWorkers)
	go func() {
		for i, d := range dirs {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				defer func() { <-sem }()
				var r result
				r.err = b.listDir(ctx, c, op, d, func(fi backend.FileInfo) error {
					r.files = append(r.files, fi)
					return nil
				})
				results[i] <- r
			}()
		}
	}()
	for i := range dirs {
		var r result
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", op, ctx.Err())
		}
		if r.err != nil {
			return r.err
		}
		for _, fi := range r.files {
			if err := fn(fi); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *Backend) listError(ctx context.Context, c *conn, op, dir string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w", op, cerr)
	}
	return b.classify(c, op, dir, err)
}

func (b *Backend) listDir(ctx context.Context, c *conn, op, dir string, fn func(backend.FileInfo) error) error {
	entries, err := c.sftp.ReadDirContext(ctx, dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && b.cfg.MissingDirIsEmpty {
			return nil
		}
		return b.listError(ctx, c, op, dir, err)
	}
	for _, e := range entries {
		if !e.Mode().IsRegular() {
			continue
		}
		if err := fn(backend.FileInfo{Name: e.Name(), Size: e.Size(), ModTime: e.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes h.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remove %v: %w", h, err)
	}
	if err := check(h); err != nil {
		return fmt.Errorf("remove: %w", err)
	}
	op := "remove " + h.String()
	c, err := b.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	p := b.path(h)
	if err := c.sftp.Remove(p); err != nil {
		return b.classify(c, op, p, err)
	}
	return nil
}

// FreeSpace returns the bytes available to the login user on the file
// system of the repository, from the statvfs@openssh.com extension.
func (b *Backend) FreeSpace(ctx context.Context) (int64, error) {
	op := "free space at " + b.Location()
	c, err := b.client(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	if !c.statvfs {
		return 0, fmt.Errorf("%s: the server does not support statvfs@openssh.com: %w", op, backend.ErrSpaceUnknown)
	}
	st, err := c.sftp.StatVFS(b.root)
	if err != nil {
		return 0, b.classify(c, op, b.root, err)
	}
	if st.Frsize == 0 && st.Bsize == 0 {
		return 0, fmt.Errorf("%s: the server reports no block size: %w", op, backend.ErrSpaceUnknown)
	}
	bs := st.Frsize
	if bs == 0 {
		bs = st.Bsize
	}
	return int64(st.Bavail * bs), nil
}

// Close ends the connection. Later calls fail.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.cur != nil {
		b.cur.close()
		b.cur = nil
	}
	return nil
}
