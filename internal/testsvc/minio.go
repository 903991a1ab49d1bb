package testsvc

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIOOptions configure a test MinIO server.
type MinIOOptions struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1 signed by a CA
	// generated for the server (MinIO.CAFile).
	TLS bool
}

// MinIO is a running test MinIO server on loopback.
type MinIO struct {
	Binary    string
	Dir       string // holds data/, certs/, ca.pem, server.log
	DataDir   string
	Port      int
	Secure    bool
	AccessKey string
	SecretKey string
	CAFile    string // PEM of the CA that signed the server certificate (TLS only)
	LogFile   string

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when the current process has been waited for.
	exited chan struct{}
}

// errMinIOMissing is returned by NewMinIO when no binary is found.
var errMinIOMissing = errors.New("minio binary not found: set EINVAULT_MINIO, put it at $HOME/.cache/einvault/bin/minio or on PATH")

// MinIOBinary finds the server binary: $EINVAULT_MINIO, else
// $HOME/.cache/einvault/bin/minio, else minio on PATH.
func MinIOBinary() (string, error) {
	if p := os.Getenv("EINVAULT_MINIO"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("EINVAULT_MINIO=%s: %w", p, err)
		}
		return p, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "einvault", "bin", "minio")
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	return "", errMinIOMissing
}

// StartMinIO starts a MinIO server of its own for t (use it for tests
// that kill or restart the server) and stops it when t ends. A missing
// binary calls Unavailable.
func StartMinIO(t testing.TB, o MinIOOptions) *MinIO {
	t.Helper()
	m, err := NewMinIO(o)
	if errors.Is(err, errMinIOMissing) {
		Unavailable(t, "MinIO", "%v", err)
	}
	if err != nil {
		t.Fatalf("start MinIO: %v", err)
	}
	t.Cleanup(m.Stop)
	return m
}

// NewMinIO starts a MinIO server in a new temporary directory, with
// generated root credentials, on a free loopback port, and waits until
// it is ready. The caller must call Stop. Tests normally use StartMinIO
// or SharedMinIO.
func NewMinIO(o MinIOOptions) (*MinIO, error) {
	bin, err := MinIOBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "einvault-minio-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	m := &MinIO{
		Binary: bin, Dir: dir, DataDir: filepath.Join(dir, "data"), Port: port, Secure: o.TLS,
		AccessKey: "einvault-" + randomHex(6), SecretKey: randomHex(20),
		LogFile: filepath.Join(dir, "server.log"),
	}
	if err := os.MkdirAll(m.DataDir, 0o700); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if o.TLS {
		if err := m.makeCerts(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("generate certificates: %w", err)
		}
	}
	if err := m.Restart(); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Endpoint is host:port of the server.
func (m *MinIO) Endpoint() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port)) }

// URL is the server's base URL.
func (m *MinIO) URL() string {
	if m.Secure {
		return "https://" + m.Endpoint()
	}
	return "http://" + m.Endpoint()
}

// RepoURL returns the repository string for bucket and path (which may
// be empty, or carry "?options").
func (m *MinIO) RepoURL(bucket, path string) string {
	s := "s3:" + m.URL() + "/" + bucket
	if path != "" && path[0] != '?' {
		s += "/"
	}
	return s + path
}

// Env returns the environment variables a client needs: credentials and,
// for TLS, the CA file.
func (m *MinIO) Env() map[string]string {
	env := map[string]string{"AWS_ACCESS_KEY_ID": m.AccessKey, "AWS_SECRET_ACCESS_KEY": m.SecretKey}
	if m.CAFile != "" {
		env["EINVAULT_S3_CA_FILE"] = m.CAFile
	}
	return env
}

// Getenv returns a lookup function over Env, falling back to fallback
// (which may be nil) for other names.
func (m *MinIO) Getenv(fallback func(string) string) func(string) string {
	env := m.Env()
	return func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if fallback != nil {
			return fallback(k)
		}
		return ""
	}
}

// Client returns an administrative minio-go client.
func (m *MinIO) Client() (*minio.Client, error) {
	tr, err := m.transport()
	if err != nil {
		return nil, err
	}
	return minio.New(m.Endpoint(), &minio.Options{
		Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""), Secure: m.Secure,
		Transport: tr, BucketLookup: minio.BucketLookupPath,
	})
}

// MakeBucket creates a bucket, with object lock (and so versioning) when
// lock is true.
func (m *MinIO) MakeBucket(t testing.TB, name string, lock bool) {
	t.Helper()
	c, err := m.Client()
	if err != nil {
		t.Fatalf("MinIO client: %v", err)
	}
	if err := c.MakeBucket(context.Background(), name, minio.MakeBucketOptions{ObjectLocking: lock}); err != nil {
		t.Fatalf("make bucket %s: %v", name, err)
	}
}

func (m *MinIO) transport() (*http.Transport, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}
	if m.Secure {
		pem, err := os.ReadFile(m.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return tr, nil
}

// Kill stops the server with SIGKILL, as a crash would, and waits for
// it to exit. The data directory is kept for Restart.
func (m *MinIO) Kill() {
	m.mu.Lock()
	cmd, exited := m.cmd, m.exited
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart starts the server (again) on the same port and data directory
// and waits until it answers its health check.
func (m *MinIO) Restart() error {
	m.Kill()
	logf, err := os.OpenFile(m.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	args := []string{"server", "--quiet", "--address", m.Endpoint(), "--console-address", "127.0.0.1:0"}
	if m.Secure {
		args = append(args, "--certs-dir", filepath.Join(m.Dir, "certs"))
	}
	args = append(args, m.DataDir)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		cmd := exec.Command(m.Binary, args...)
		cmd.Env = append(os.Environ(),
			"MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
			"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1",
		)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			return fmt.Errorf("start %s: %w", m.Binary, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		m.mu.Lock()
		m.cmd, m.exited = cmd, exited
		m.mu.Unlock()
		if lastErr = m.waitReady(exited, 60*time.Second); lastErr == nil {
			logf.Close()
			return nil
		}
		m.Kill()
		// The port may still be held by the killed process's sockets on a
		// busy machine: wait and try again.
		time.Sleep(500 * time.Millisecond)
	}
	logf.Close()
	log, _ := os.ReadFile(m.LogFile)
	if len(log) > 4000 {
		log = log[len(log)-4000:]
	}
	return fmt.Errorf("MinIO on %s: %w\n%s", m.Endpoint(), lastErr, log)
}

func (m *MinIO) waitReady(exited <-chan struct{}, timeout time.Duration) error {
	tr, err := m.transport()
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			return errors.New("server exited during start")
		default:
		}
		resp, err := client.Get(m.URL() + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				// Health answers before the object layer is initialised:
				// wait until an authenticated request works too.
				c, cerr := m.Client()
				if cerr != nil {
					return cerr
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err = c.ListBuckets(ctx)
				cancel()
				if err == nil {
					return nil
				}
			} else {
				err = fmt.Errorf("health check: %s", resp.Status)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills the server and removes its directory.
func (m *MinIO) Stop() {
	m.Kill()
	os.RemoveAll(m.Dir)
}

// makeCerts writes certs/public.crt and certs/private.key (a server
// certificate for 127.0.0.1 and localhost) and ca.pem (its CA).
func (m *MinIO) makeCerts() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "einvault test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	certs := filepath.Join(m.Dir, "certs")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		return err
	}
	enc := func(typ string, b []byte) []byte {
		var buf bytes.Buffer
		_ = pem.Encode(&buf, &pem.Block{Type: typ, Bytes: b})
		return buf.Bytes()
	}
	m.CAFile = filepath.Join(m.Dir, "ca.pem")
	for name, data := range map[string][]byte{
		filepath.Join(certs, "public.crt"):  enc("CERTIFICATE", der),
		filepath.Join(certs, "private.key"): enc("PRIVATE KEY", keyDER),
		m.CAFile:                            enc("CERTIFICATE", caDER),
	} {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// SharedMinIO starts one server on first use and hands it to every test
// of a package; the package's TestMain calls Stop after m.Run.
type SharedMinIO struct {
	Options MinIOOptions

	once sync.Once
	m    *MinIO
	err  error
}

// Get returns the shared server, starting it on the first call. A
// missing binary calls Unavailable.
func (s *SharedMinIO) Get(t testing.TB) *MinIO {
	t.Helper()
	s.once.Do(func() { s.m, s.err = NewMinIO(s.Options) })
	if errors.Is(s.err, errMinIOMissing) {
		Unavailable(t, "MinIO", "%v", s.err)
	}
	if s.err != nil {
		t.Fatalf("start MinIO: %v", s.err)
	}
	return s.m
}

// Stop stops the server if it was started.
func (s *SharedMinIO) Stop() {
	s.once.Do(func() {})
	if s.m != nil {
		s.m.Stop()
	}
}
