package sftp_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/backendtest"
	"github.com/einvault/einvault/internal/backend/retry"
	"github.com/einvault/einvault/internal/backend/sftp"
	"github.com/einvault/einvault/internal/testsvc"
)

// config returns a Config for a fresh directory on srv.
func config(t testing.TB, srv *testsvc.SSHD) sftp.Config {
	t.Helper()
	return sftp.Config{
		User:           srv.User,
		Host:           srv.Host,
		Port:           srv.Port,
		Path:           filepath.Join(t.TempDir(), "repo"),
		KeyFile:        srv.KeyFile,
		KnownHostsFile: srv.KnownHosts,
		Getenv:         func(string) string { return "" },
	}
}

func create(t *testing.T, cfg sftp.Config) *sftp.Backend {
	t.Helper()
	be, err := sftp.Create(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return be
}

// TestSSHD runs every test against one sshd.
func TestSSHD(t *testing.T) {
	srv := testsvc.StartSSHD(t)
	t.Run("Conformance", func(t *testing.T) {
		backendtest.RunConformance(t, func(t *testing.T) backend.Backend { return create(t, config(t, srv)) })
	})
	t.Run("CreateOpen", func(t *testing.T) { testCreateOpen(t, srv) })
	t.Run("HostKeys", func(t *testing.T) { testHostKeys(t, srv) })
	t.Run("Auth", func(t *testing.T) { testAuth(t, srv) })
	t.Run("FreeSpace", func(t *testing.T) { testFreeSpace(t, srv) })
	t.Run("CutDuringSave", func(t *testing.T) { testCutDuringSave(t, srv) })
	t.Run("CutDuringLoad", func(t *testing.T) { testCutDuringLoad(t, srv) })
	t.Run("ServerRestart", func(t *testing.T) { testServerRestart(t, srv) })
}

func testCreateOpen(t *testing.T, srv *testsvc.SSHD) {
	ctx := context.Background()
	cfg := config(t, srv)
	if _, err := sftp.Open(ctx, cfg); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("Open of missing repository: %v, want ErrNotExist", err)
	}
	be := create(t, cfg)
	for _, d := range []string{"keys", "data/00", "data/ff", "index", "snapshots", "locks", "pending", "dicts"} {
		if fi, err := os.Stat(filepath.Join(cfg.Path, d)); err != nil || !fi.IsDir() {
			t.Errorf("Create did not make %s: %v", d, err)
		}
	}
	// No config yet: Open still says there is no repository.
	if _, err := sftp.Open(ctx, cfg); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("Open without config: %v, want ErrNotExist", err)
	}
	if err := be.Save(ctx, backend.Handle{Type: backend.ConfigFile}, strings.NewReader("cfg"), 3); err != nil {
		t.Fatal(err)
	}
	be.Close()
	if _, err := sftp.Create(ctx, cfg); !errors.Is(err, sftp.ErrAlreadyExists) {
		t.Errorf("second Create: %v, want ErrAlreadyExists", err)
	}
	be2, err := sftp.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer be2.Close()
	if got := be2.Location(); !strings.HasPrefix(got, "sftp:"+srv.User+"@127.0.0.1:") || !strings.HasSuffix(got, cfg.Path) {
		t.Errorf("Location = %q", got)
	}
	fi, err := os.Stat(filepath.Join(cfg.Path, "config"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config file mode: %v, %v; want 0600", fi, err)
	}
}

func testHostKeys(t *testing.T, srv *testsvc.SSHD) {
	ctx := context.Background()
	dir := t.TempDir()

	t.Run("unknown refused", func(t *testing.T) {
		cfg := config(t, srv)
		cfg.KnownHostsFile = filepath.Join(dir, "missing", "known_hosts")
		_, err := sftp.Create(ctx, cfg)
		if !errors.Is(err, sftp.ErrUnknownHostKey) {
			t.Fatalf("unknown host key: %v, want ErrUnknownHostKey", err)
		}
		if backend.IsTransient(err) {
			t.Errorf("unknown host key reported as transient: %v", err)
		}
		msg := err.Error()
		for _, want := range []string{"SHA256:", "accept-new-host-key=1", "EINVAULT_SFTP_ACCEPT_NEW=1", "ssh-keyscan"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message lacks %q: %s", want, msg)
			}
		}
		if strings.Contains(msg, "handshake failed") {
			t.Errorf("message carries x/crypto's prefix: %s", msg)
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("message spans lines: %q", msg)
		}
		if _, err := os.Stat(cfg.KnownHostsFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("refusal wrote known_hosts: %v", err)
		}
	})

	kh := filepath.Join(dir, "ssh", "known_hosts")
	t.Run("accepted with opt-in", func(t *testing.T) {
		cfg := config(t, srv)
		cfg.KnownHostsFile = kh
		cfg.AcceptNewHostKey = true
		be := create(t, cfg)
		be.Close()
		b, err := os.ReadFile(kh)
		if err != nil || !bytes.Contains(b, bytes.TrimSpace(ssh.MarshalAuthorizedKey(srv.HostKey))) {
			t.Fatalf("known_hosts after accept: %q, %v", b, err)
		}
		// The key is known now: no opt-in needed.
		cfg2 := config(t, srv)
		cfg2.KnownHostsFile = kh
		be = create(t, cfg2)
		be.Close()
	})

	t.Run("accepted via environment", func(t *testing.T) {
		cfg := config(t, srv)
		cfg.KnownHostsFile = filepath.Join(dir, "env_known_hosts")
		cfg.Getenv = func(k string) string {
			if k == "EINVAULT_SFTP_ACCEPT_NEW" {
				return "1"
			}
			return ""
		}
		be := create(t, cfg)
		be.Close()
	})

	t.Run("changed refused", func(t *testing.T) {
		// known_hosts holds another key for the server: refused even with
		// the opt-in for new keys.
		other := newKey(t, filepath.Join(t.TempDir(), "k"))
		line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr())}, other) + "\n"
		changed := filepath.Join(dir, "changed_known_hosts")
		if err := os.WriteFile(changed, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := config(t, srv)
		cfg.KnownHostsFile = changed
		cfg.AcceptNewHostKey = true
		_, err := sftp.Create(ctx, cfg)
		if !errors.Is(err, sftp.ErrHostKeyChanged) {
			t.Fatalf("changed host key: %v, want ErrHostKeyChanged", err)
		}
		if !strings.Contains(err.Error(), "REFUSED") || !strings.Contains(err.Error(), "ssh-keygen -R") {
			t.Errorf("message: %v", err)
		}
		b, _ := os.ReadFile(changed)
		if string(b) != line {
			t.Errorf("known_hosts changed after refusal:\n%s", b)
		}
	})
}

// newKey writes a fresh ed25519 private key to path and returns its
// public half.
func newKey(t *testing.T, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func testAuth(t *testing.T, srv *testsvc.SSHD) {
	ctx := context.Background()
	// A key the server does not know.
	other := filepath.Join(t.TempDir(), "other")
	newKey(t, other)
	cfg := config(t, srv)
	cfg.KeyFile = other
	_, err := sftp.Create(ctx, cfg)
	if err == nil || backend.IsTransient(err) || !strings.Contains(err.Error(), "authorized_keys") {
		t.Errorf("wrong key: %v, want a permanent error naming authorized_keys", err)
	}
	// The default key files under $HOME/.ssh.
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(srv.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg = config(t, srv)
	cfg.KeyFile = ""
	cfg.Getenv = func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}
	be := create(t, cfg)
	be.Close()
	// Environment key file.
	cfg = config(t, srv)
	cfg.KeyFile = ""
	cfg.Getenv = func(k string) string {
		switch k {
		case "HOME":
			return t.TempDir()
		case "EINVAULT_SFTP_KEY":
			return srv.KeyFile
		}
		return ""
	}
	be = create(t, cfg)
	be.Close()
	// No key at all.
	cfg.Getenv = func(k string) string {
		if k == "HOME" {
			return t.TempDir()
		}
		return ""
	}
	if _, err := sftp.Create(ctx, cfg); err == nil || !strings.Contains(err.Error(), "EINVAULT_SFTP_KEY") {
		t.Errorf("no key: %v", err)
	}
}

func testFreeSpace(t *testing.T, srv *testsvc.SSHD) {
	be := create(t, config(t, srv))
	defer be.Close()
	free, err := be.FreeSpace(context.Background())
	if err != nil {
		t.Fatalf("FreeSpace: %v", err)
	}
	if free <= 0 {
		t.Errorf("FreeSpace = %d, want > 0", free)
	}
}

// slowReader yields size pseudo-random bytes in small pieces and calls
// hook once half of them were read.
type slowReader struct {
	rng       *rand.ChaCha8
	left, mid int64
	hook      func()
	fired     bool
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.left, 32<<10))
	_, _ = r.rng.Read(p[:n])
	r.left -= int64(n)
	if !r.fired && r.left <= r.mid {
		r.fired = true
		r.hook()
		time.Sleep(50 * time.Millisecond)
	}
	return n, nil
}

func (r *slowReader) Seek(off int64, whence int) (int64, error) {
	return 0, errors.New("not seekable")
}

func listNames(t *testing.T, be backend.Backend, ft backend.FileType) []string {
	t.Helper()
	var names []string
	if err := be.List(context.Background(), ft, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		t.Fatalf("List: %v", err)
	}
	return names
}

func testCutDuringSave(t *testing.T, srv *testsvc.SSHD) {
	ctx := context.Background()
	be := create(t, config(t, srv))
	defer be.Close()
	const size = 8 << 20
	h := backend.Handle{Type: backend.PackFile, Name: strings.Repeat("ab", 32)}
	var cuts atomic.Int32
	cut := func() { cuts.Add(int32(srv.CutConnections())) }

	// Without retries: a clear, transient error and no file under the
	// final name.
	err := be.Save(ctx, h, &slowReader{rng: rand.NewChaCha8([32]byte{1}), left: size, mid: size / 2, hook: cut}, size)
	if cuts.Load() == 0 {
		t.Fatal("no sshd connection process was cut")
	}
	if err == nil {
		t.Fatal("Save succeeded although its connection was cut")
	}
	if !backend.IsTransient(err) {
		t.Errorf("cut connection: %v, want a transient error", err)
	}
	if _, serr := be.Stat(ctx, h); !errors.Is(serr, backend.ErrNotExist) {
		t.Errorf("after cut Save, Stat of final name: %v, want ErrNotExist", serr)
	}
	if names := listNames(t, be, backend.PackFile); len(names) != 0 {
		t.Errorf("cut Save left files behind: %q", names)
	}

	// Through the retry decorator with a re-readable source: the cut is
	// invisible to the caller.
	data := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{2}).Read(data)
	rb := retry.New(be, retry.Options{BaseDelay: 10 * time.Millisecond, Sleep: func(context.Context, time.Duration) error { return nil }})
	src := &cutReader{Reader: bytes.NewReader(data), at: size / 3, hook: cut}
	if err := rb.Save(ctx, h, src, size); err != nil {
		t.Fatalf("Save through retry after a cut: %v", err)
	}
	got, err := backend.LoadAll(ctx, be, h)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after retried Save: %d bytes, %v", len(got), err)
	}
}

// cutReader is a seekable source that cuts the connection once, after at
// bytes.
type cutReader struct {
	*bytes.Reader
	at    int64
	read  int64
	hook  func()
	fired bool
}

func (r *cutReader) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p[:min(len(p), 32<<10)])
	r.read += int64(n)
	if !r.fired && r.read >= r.at {
		r.fired = true
		r.hook()
		time.Sleep(50 * time.Millisecond)
	}
	return n, err
}

func testCutDuringLoad(t *testing.T, srv *testsvc.SSHD) {
	ctx := context.Background()
	be := create(t, config(t, srv))
	defer be.Close()
	const size = 8 << 20
	data := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{3}).Read(data)
	h := backend.Handle{Type: backend.PackFile, Name: strings.Repeat("cd", 32)}
	if err := be.Save(ctx, h, bytes.NewReader(data), size); err != nil {
		t.Fatal(err)
	}
	rd, err := be.Load(ctx, h, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	if _, err := io.ReadFull(rd, buf); err != nil {
		t.Fatal(err)
	}
	if srv.CutConnections() == 0 {
		t.Fatal("nothing cut")
	}
	_, err = io.Copy(io.Discard, rd)
	rd.Close()
	if err == nil || !backend.IsTransient(err) {
		t.Errorf("reading on after a cut: %v, want a transient error", err)
	}
	// The next operation dials again and succeeds.
	sum := sha256.Sum256(data)
	got, err := backend.LoadAll(ctx, be, h)
	if err != nil || sha256.Sum256(got) != sum {
		t.Fatalf("Load after cut: %d bytes, %v", len(got), err)
	}
	if _, err := be.Stat(ctx, h); err != nil {
		t.Errorf("Stat after cut: %v", err)
	}
}

func testServerRestart(t *testing.T, srv *testsvc.SSHD) {
	ctx := context.Background()
	be := create(t, config(t, srv))
	defer be.Close()
	h := backend.Handle{Type: backend.IndexFile, Name: strings.Repeat("ef", 32)}
	if err := be.Save(ctx, h, strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)
	rb := retry.New(be, retry.Options{BaseDelay: 10 * time.Millisecond})
	if _, err := rb.Stat(ctx, h); err != nil {
		t.Fatalf("Stat through retry after a server restart: %v", err)
	}
}
