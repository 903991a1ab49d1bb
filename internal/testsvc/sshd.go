package testsvc

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD is a running OpenSSH server on loopback that accepts one user with
// a generated ed25519 key and serves SFTP (internal-sftp).
type SSHD struct {
	Host string
	Port int
	User string
	// KeyFile is the client's private key (OpenSSH format, no passphrase).
	KeyFile string
	// KnownHosts is a known_hosts file that lists the server's host key.
	KnownHosts string
	// HostKey is the server's public host key.
	HostKey ssh.PublicKey
	// Dir is the server's scratch directory (config, keys, log).
	Dir string

	bin    string
	config string
	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	log    *syncBuffer
}

// Addr returns host:port.
func (s *SSHD) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// StartSSHD starts /usr/sbin/sshd on a free 127.0.0.1 port with generated
// host and client keys; the server is stopped when t ends. A missing sshd
// marks the test as unable to run (see Unavailable).
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	bin := LookPath(t, "OpenSSH sshd", "sshd", "install openssh-server", "/usr/sbin")
	// Privilege separation needs its empty directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil && os.Geteuid() == 0 {
		t.Fatalf("sshd: create /run/sshd: %v", err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("sshd: current user: %v", err)
	}
	dir, err := os.MkdirTemp("", "einvault-sshd-")
	if err != nil {
		t.Fatalf("sshd: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	_, hostPub := writeEd25519(t, filepath.Join(dir, "ssh_host_ed25519_key"))
	_, clientPub := writeEd25519(t, filepath.Join(dir, "id_ed25519"))
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o600); err != nil {
		t.Fatalf("sshd: %v", err)
	}
	s := &SSHD{
		Host:    "127.0.0.1",
		Port:    FreePort(t),
		User:    u.Username,
		KeyFile: filepath.Join(dir, "id_ed25519"),
		HostKey: hostPub,
		Dir:     dir,
		bin:     bin,
		config:  filepath.Join(dir, "sshd_config"),
	}
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr())}, hostPub) + "\n"
	if err := os.WriteFile(s.KnownHosts, []byte(line), 0o600); err != nil {
		t.Fatalf("sshd: %v", err)
	}
	permitRoot := "prohibit-password"
	if os.Geteuid() == 0 {
		permitRoot = "yes"
	}
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin %s
StrictModes no
UsePAM no
MaxStartups 200
MaxSessions 200
LogLevel INFO
Subsystem sftp internal-sftp
`, s.Port, filepath.Join(dir, "ssh_host_ed25519_key"), filepath.Join(dir, "sshd.pid"),
		filepath.Join(dir, "authorized_keys"), permitRoot)
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		t.Fatalf("sshd: %v", err)
	}
	s.start(t)
	t.Cleanup(s.Stop)
	return s
}

// writeEd25519 generates a key pair and writes the private key to path in
// OpenSSH format.
func writeEd25519(t testing.TB, path string) (ed25519.PrivateKey, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatalf("marshal key: %v", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatalf("write key: %v", err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sp), 0o644); err != nil {
		t.Fatalf("write key: %v", err)
	}
	return priv, sp
}

func (s *SSHD) start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = &syncBuffer{}
	cmd := exec.Command(s.bin, "-D", "-e", "-f", s.config)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("sshd exited at start:\n%s", s.log.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 8)
			n, _ := c.Read(buf)
			c.Close()
			if bytes.HasPrefix(buf[:n], []byte("SSH-")) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s within 15s:\n%s", s.Addr(), s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the server and every connection it serves.
func (s *SSHD) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	killTree(s.cmd.Process.Pid, syscall.SIGKILL)
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart stops the server (cutting all connections) and starts it again
// on the same port with the same keys.
func (s *SSHD) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.start(t)
}

// CutConnections kills the per-connection sshd processes, so every
// client sees its connection drop; the server keeps accepting new ones.
// It returns the number of processes killed.
func (s *SSHD) CutConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	n := 0
	for _, c := range children(s.cmd.Process.Pid) {
		n += killTree(c, syscall.SIGKILL)
	}
	return n
}

// Log returns what sshd wrote so far (for failure messages).
func (s *SSHD) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// children returns the pids whose parent is pid, from /proc.
func children(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		if pp, _ := strconv.Atoi(f[1]); pp == pid {
			out = append(out, p)
		}
	}
	return out
}

// killTree signals pid and all its descendants (children first found,
// then the parent) and returns how many processes it signalled.
func killTree(pid int, sig syscall.Signal) int {
	n := 0
	for _, c := range children(pid) {
		n += killTree(c, sig)
	}
	if syscall.Kill(pid, sig) == nil {
		n++
	}
	return n
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 {
		b.buf.Reset()
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
