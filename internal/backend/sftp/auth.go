package sftp

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrUnknownHostKey is matched when the server's host key is not in
// known_hosts and accepting new keys was not asked for.
var ErrUnknownHostKey = errors.New("unknown SSH host key")

// ErrHostKeyChanged is matched when known_hosts holds a different key for
// the server. It is always refused.
var ErrHostKeyChanged = errors.New("SSH host key changed")

// errAuth marks authentication failures (permanent).
var errAuth = errors.New("SSH authentication failed")

// defaultKeyFiles are tried, in order, below ~/.ssh when no key file is
// given.
var defaultKeyFiles = []string{"id_ed25519", "id_ecdsa", "id_rsa"}

func (c Config) getenv(k string) string {
	if c.Getenv == nil {
		return ""
	}
	return c.Getenv(k)
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// home returns the user's home directory ($HOME, else the OS's idea).
func (c Config) home() string {
	if h := c.getenv("HOME"); h != "" {
		return h
	}
	h, _ := os.UserHomeDir()
	return h
}

// withEnv fills unset fields from the environment.
func (c Config) withEnv() Config {
	if c.KeyFile == "" {
		c.KeyFile = c.getenv("EINVAULT_SFTP_KEY")
	}
	if c.KnownHostsFile == "" {
		c.KnownHostsFile = c.getenv("EINVAULT_SFTP_KNOWN_HOSTS")
	}
	if !c.AcceptNewHostKey {
		if v := c.getenv("EINVAULT_SFTP_ACCEPT_NEW"); v != "" {
			c.AcceptNewHostKey, _ = parseBool(v)
		}
	}
	if c.User == "" {
		c.User = c.getenv("USER")
	}
	return c
}

// authMethods returns the password (if set) and the public keys from the
// SSH agent and the key files. closeAgent releases the agent connection.
func (c Config) authMethods() (methods []ssh.AuthMethod, closeAgent func(), err error) {
	closeAgent = func() {}
	if c.Password != "" {
		methods = append(methods, ssh.Password(c.Password))
	}
	var signers []ssh.Signer
	if c.KeyFile != "" {
		s, err := loadKey(c.KeyFile)
		if err != nil {
			return nil, closeAgent, err
		}
		signers = append(signers, s)
	} else if !c.NoDefaultKeys {
		if sock := c.getenv("SSH_AUTH_SOCK"); sock != "" {
			if conn, err := net.Dial("unix", sock); err == nil {
				closeAgent = func() { conn.Close() }
				if ss, err := agent.NewClient(conn).Signers(); err == nil {
					signers = append(signers, ss...)
				} else {
					c.logger().Debug("sftp: ssh-agent gave no keys", "err", err)
				}
			} else {
				c.logger().Debug("sftp: ssh-agent not reachable", "socket", sock, "err", err)
			}
		}
		for _, name := range defaultKeyFiles {
			p := filepath.Join(c.home(), ".ssh", name)
			s, err := loadKey(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				c.logger().Warn("sftp: skipping key file", "file", p, "err", err)
				continue
			}
			signers = append(signers, s)
		}
	}
	if len(signers) > 0 {
		methods = append(methods, ssh.PublicKeys(signers...))
	}
	if len(methods) == 0 {
		return nil, closeAgent, fmt.Errorf("%w: no SSH key found (no ssh-agent at SSH_AUTH_SOCK, no ~/.ssh/id_ed25519, id_ecdsa or id_rsa); give one with ?key=FILE or EINVAULT_SFTP_KEY", errAuth)
	}
	return methods, closeAgent, nil
}

func loadKey(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read SSH key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	var pm *ssh.PassphraseMissingError
	if errors.As(err, &pm) {
		return nil, fmt.Errorf("%w: SSH key %s is protected by a passphrase: load it into ssh-agent (ssh-add %s) instead", errAuth, path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: SSH key %s: %v", errAuth, path, err)
	}
	return s, nil
}

// knownHostsFile returns the known_hosts path to check against.
func (c Config) knownHostsFile() string {
	if c.KnownHostsFile != "" {
		return c.KnownHostsFile
	}
	return filepath.Join(c.home(), ".ssh", "known_hosts")
}

// hostKeyChecker verifies server host keys against a pinned key or a
// known_hosts file.
type hostKeyChecker struct {
	cfg  Config
	file string
	mu   sync.Mutex // serialises appends to file
}

// callback returns the host key callback for one dial, and the host key
// algorithms to ask for (those known for addr, so that a server with
// several keys offers the one we know).
func (h *hostKeyChecker) callback(addr string) (ssh.HostKeyCallback, []string, error) {
	if h.cfg.HostKey != nil {
		want := h.cfg.HostKey
		return func(host string, _ net.Addr, key ssh.PublicKey) error {
			if string(key.Marshal()) != string(want.Marshal()) {
				return fmt.Errorf("%w: REFUSED: %s presented %s %s, but %s was pinned", ErrHostKeyChanged, host, key.Type(), ssh.FingerprintSHA256(key), ssh.FingerprintSHA256(want))
			}
			return nil
		}, algorithmsFor(want.Type()), nil
	}
	var kh ssh.HostKeyCallback
	switch _, err := os.Stat(h.file); {
	case errors.Is(err, fs.ErrNotExist):
		kh = func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }
	case err != nil:
		return nil, nil, fmt.Errorf("known_hosts: %w", err)
	default:
		kh, err = knownhosts.New(h.file)
		if err != nil {
			return nil, nil, fmt.Errorf("read known_hosts %s: %w (fix or remove the bad line)", h.file, err)
		}
	}
	var algos []string
	if dummy, err := dummyKey(); err == nil {
		var ke *knownhosts.KeyError
		fake := &net.TCPAddr{IP: net.IPv4zero}
		if host, _, err := net.SplitHostPort(addr); err == nil && net.ParseIP(host) != nil {
			fake.IP = net.ParseIP(host)
		}
		if errors.As(kh(addr, fake, dummy), &ke) {
			for _, k := range ke.Want {
				algos = append(algos, algorithmsFor(k.Key.Type())...)
			}
		}
	}
	cb := func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := kh(host, remote, key)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		fp := key.Type() + " " + ssh.FingerprintSHA256(key)
		if len(ke.Want) > 0 {
			w := ke.Want[0]
			return fmt.Errorf("%w: REFUSED: %s presented %s, but %s:%d holds %s %s: possible man-in-the-middle attack; if the server was reinstalled, verify the new key and remove the old one with 'ssh-keygen -R %q -f %s'",
				ErrHostKeyChanged, host, fp, w.Filename, w.Line, w.Key.Type(), ssh.FingerprintSHA256(w.Key), knownhosts.Normalize(host), h.file)
		}
		if !h.cfg.AcceptNewHostKey {
			hostOnly, port, _ := net.SplitHostPort(host)
			return fmt.Errorf("%w: %s presented %s, not in %s: verify the fingerprint, then add it with 'ssh-keyscan -p %s %s >> %s' or connect once with ?accept-new-host-key=1 (or EINVAULT_SFTP_ACCEPT_NEW=1)",
				ErrUnknownHostKey, host, fp, h.file, port, hostOnly, h.file)
		}
		if err := h.appendKey(host, key); err != nil {
			return fmt.Errorf("accept new host key of %s: %w", host, err)
		}
		h.cfg.logger().Warn("sftp: added new host key to known_hosts", "host", host, "key", fp, "file", h.file)
		return nil
	}
	return cb, algos, nil
}

func (h *hostKeyChecker) appendKey(host string, key ssh.PublicKey) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(h.file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(h.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(knownhosts.Line([]string{knownhosts.Normalize(host)}, key) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// dummyKey returns a fresh key that matches no known_hosts entry; asking
// the known_hosts callback about it lists the keys known for a host.
func dummyKey() (ssh.PublicKey, error) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(pub)
}

// algorithmsFor maps a key type to the host key algorithms that use it.
func algorithmsFor(keyType string) []string {
	switch keyType {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	case ssh.CertAlgoRSAv01:
		return []string{ssh.CertAlgoRSASHA512v01, ssh.CertAlgoRSASHA256v01, ssh.CertAlgoRSAv01}
	}
	return []string{keyType}
}
