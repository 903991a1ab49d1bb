package pg_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	// The tests run the einvault binary built in TestMain; importing its
	// command package ties go test's cache to the code it is built from.
	_ "github.com/einvault/einvault/internal/cli"
	"github.com/einvault/einvault/internal/testsvc"
)

// bin is the einvault binary built by TestMain, in a directory every
// user can read (PostgreSQL runs it as archive_command).
var bin string

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "einvault-pg-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	_ = os.Chmod(tmp, 0o755)
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go env GOMOD:", err)
		return 1
	}
	bin = filepath.Join(tmp, "einvault")
	build := exec.Command("go", "build", "-o", bin, "./cmd/einvault")
	build.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building einvault:", err)
		return 1
	}
	return m.Run()
}

// env is a test repository and the environment for einvault in it.
type env struct {
	t       *testing.T
	repo    string
	vars    []string
	svcUser testsvc.ServiceUser
}

// newEnv creates a repository in a directory the service user owns (WAL
// is pushed by PostgreSQL's processes, as that user).
func newEnv(t *testing.T) *env {
	su := testsvc.EnsureServiceUser(t)
	dir := testsvc.ServiceDir(t, su)
	e := &env{t: t, repo: filepath.Join(dir, "repo"), svcUser: su,
		vars: []string{"EINVAULT_PASSWORD=test-password", "EINVAULT_INSECURE_TEST_KDF=1", "EINVAULT_REPO=" + filepath.Join(dir, "repo")}}
	e.mustRun("init")
	if !su.IsSelf {
		if err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", su.UID, su.GID), e.repo).Run(); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// run runs einvault with args and returns stdout, stderr and the exit code.
func (e *env) run(args ...string) (string, string, int) {
	e.t.Helper()
	return e.runEnv(nil, args...)
}

func (e *env) runEnv(extra []string, args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), e.vars...), extra...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("run einvault %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

func (e *env) mustRun(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("einvault %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (e *env) snapshotCount() int {
	e.t.Helper()
	var snaps []json.RawMessage
	if err := json.Unmarshal([]byte(e.mustRun("snapshots", "--json")), &snaps); err != nil {
		e.t.Fatal(err)
	}
	return len(snaps)
}
