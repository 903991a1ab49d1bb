// Package testsvc starts the real services that integration tests run
// against (MinIO, OpenSSH sshd, rclone, PostgreSQL, MariaDB, SMTP) on
// loopback, in temporary directories owned by the test.
//
// A test that needs a service calls the service's Start function. When
// the service's programs are missing, the test is skipped with a message
// naming what to install; under EINVAULT_REQUIRE_SERVICES=1 (set by
// .ci/run) the skip becomes a failure, so CI never passes by skipping.
package testsvc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// Required reports whether missing services must fail tests rather than
// skip them.
func Required() bool { return os.Getenv("EINVAULT_REQUIRE_SERVICES") == "1" }

// Unavailable skips t (or fails it under EINVAULT_REQUIRE_SERVICES=1)
// because service is not available, with the reason and the fix.
func Unavailable(t testing.TB, service, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf("%s not available: %s", service, fmt.Sprintf(format, args...))
	if Required() {
		t.Fatalf("%s (EINVAULT_REQUIRE_SERVICES=1 forbids skipping)", msg)
	}
	t.Skip(msg)
}

// LookPath finds program on PATH or in the extra directories, or marks
// the test as unable to run (see Unavailable) with hint as the fix.
func LookPath(t testing.TB, service, program, hint string, extraDirs ...string) string {
	t.Helper()
	if p, err := exec.LookPath(program); err == nil {
		return p
	}
	for _, d := range extraDirs {
		p := filepath.Join(d, program)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	Unavailable(t, service, "%s not found; %s", program, hint)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free loopback port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ServiceUserName is the unprivileged OS user that database servers run
// as when the tests run as root (PostgreSQL and MariaDB refuse root).
const ServiceUserName = "einvault-test"

// ServiceUser is the OS account services should run as: the current user
// when not root; when root, ServiceUserName, created on first use.
type ServiceUser struct {
	Name     string
	UID, GID int
	IsSelf   bool // no switch needed: the tests are not running as root
}

// EnsureServiceUser returns the user to run database servers as,
// creating ServiceUserName with useradd when running as root.
func EnsureServiceUser(t testing.TB) ServiceUser {
	t.Helper()
	if os.Geteuid() != 0 {
		return ServiceUser{Name: "", UID: os.Getuid(), GID: os.Getgid(), IsSelf: true}
	}
	u, err := user.Lookup(ServiceUserName)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--shell", "/bin/sh", ServiceUserName).CombinedOutput()
		if err != nil {
			// Another test process may have created it at the same time.
			if u2, err2 := user.Lookup(ServiceUserName); err2 == nil {
				u = u2
			} else {
				t.Fatalf("create service user %s: %v: %s", ServiceUserName, err, out)
			}
		} else if u, err = user.Lookup(ServiceUserName); err != nil {
			t.Fatalf("look up service user %s: %v", ServiceUserName, err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return ServiceUser{Name: u.Username, UID: uid, GID: gid}
}

// ServiceDir makes a fresh temporary directory owned by su (and
// traversable to it: every parent of t.TempDir() gets o+x).
func ServiceDir(t testing.TB, su ServiceUser) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "einvault-svc-")
	if err != nil {
		t.Fatalf("service dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("service dir: %v", err)
	}
	if !su.IsSelf {
		if err := os.Chown(dir, su.UID, su.GID); err != nil {
			t.Fatalf("service dir: %v", err)
		}
	}
	return dir
}
