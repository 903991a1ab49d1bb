package rclone_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/backendtest"
	"github.com/einvault/einvault/internal/backend/rclone"
	"github.com/einvault/einvault/internal/backend/retry"
	"github.com/einvault/einvault/internal/testsvc"
)

func rcloneBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("EINVAULT_RCLONE"); p != "" {
		return p
	}
	return testsvc.LookPath(t, "rclone", "rclone", "install rclone (apt install rclone)")
}

// localConfig serves a fresh local directory through an on-the-fly remote.
func localConfig(t *testing.T) (rclone.Config, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "remote")
	return rclone.Config{Remote: ":local:" + dir, Binary: rcloneBin(t), Env: append(os.Environ(), "RCLONE_CONFIG=/dev/null")}, dir
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || !strings.HasPrefix(strings.TrimSpace(string(b[i+1:])), "Z")
}

func TestConformance(t *testing.T) {
	backendtest.RunConformance(t, func(t *testing.T) backend.Backend {
		cfg, _ := localConfig(t)
		be, err := rclone.Create(context.Background(), cfg)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		return be
	})
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	cfg, dir := localConfig(t)
	if _, err := rclone.Open(ctx, cfg); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("Open of an empty remote: %v, want ErrNotExist", err)
	}
	be, err := rclone.Create(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := be.Location(), "rclone:"+cfg.Remote; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if err := be.Save(ctx, backend.Handle{Type: backend.ConfigFile}, strings.NewReader("cfg"), 3); err != nil {
		t.Fatal(err)
	}
	pid := be.Pid()
	if err := be.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if alive(pid) {
		t.Errorf("rclone %d still running after Close", pid)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "config")); err != nil || string(b) != "cfg" {
		t.Errorf("config on the remote: %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "data", "7f")); err != nil || !fi.IsDir() {
		t.Errorf("Create did not make data/7f: %v", err)
	}
	if _, err := rclone.Create(ctx, cfg); !errors.Is(err, rclone.ErrAlreadyExists) {
		t.Errorf("second Create: %v, want ErrAlreadyExists", err)
	}
	be, err = rclone.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer be.Close()
	got, err := backend.LoadAll(ctx, be, backend.Handle{Type: backend.ConfigFile})
	if err != nil || string(got) != "cfg" {
		t.Errorf("Load config: %q, %v", got, err)
	}
}

// TestServerDies kills the rclone server: the next operation through the
// retry decorator restarts it and succeeds.
func TestServerDies(t *testing.T) {
	ctx := context.Background()
	cfg, _ := localConfig(t)
	be, err := rclone.Create(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	h := backend.Handle{Type: backend.SnapshotFile, Name: strings.Repeat("ab", 32)}
	if err := be.Save(ctx, h, strings.NewReader("snap"), 4); err != nil {
		t.Fatal(err)
	}
	old := be.Pid()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for alive(old) {
		time.Sleep(10 * time.Millisecond)
	}
	rb := retry.New(be, retry.Options{BaseDelay: 10 * time.Millisecond})
	got, err := backend.LoadAll(ctx, rb, h)
	if err != nil || string(got) != "snap" {
		t.Fatalf("Load after the server was killed: %q, %v", got, err)
	}
	if be.Pid() == old || !alive(be.Pid()) {
		t.Errorf("server not restarted (pid %d, was %d)", be.Pid(), old)
	}
}

func TestBadRemote(t *testing.T) {
	cfg, _ := localConfig(t)
	cfg.Remote = "nosuchremote:x"
	_, err := rclone.Open(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "nosuchremote") {
		t.Errorf("unknown remote: %v", err)
	}
	cfg.Binary = filepath.Join(t.TempDir(), "no-rclone")
	if _, err := rclone.Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "EINVAULT_RCLONE") {
		t.Errorf("missing binary: %v", err)
	}
}

func TestParseLocation(t *testing.T) {
	tests := []struct {
		in, remote string
	}{
		{"rclone:onedrive:backups/einvault", "onedrive:backups/einvault"},
		{"rclone::local:/srv/x", ":local:/srv/x"},
		{"rclone:gdrive:", "gdrive:"},
		{"rclone:", ""},
		{"rclone:nocolon", ""},
		{"sftp:x:y", ""},
	}
	for _, tc := range tests {
		cfg, err := rclone.ParseLocation(tc.in)
		if (err != nil) != (tc.remote == "") || cfg.Remote != tc.remote {
			t.Errorf("ParseLocation(%q) = %q, %v; want %q", tc.in, cfg.Remote, err, tc.remote)
		}
	}
}

// TestParentDies proves that rclone does not outlive a killed einvault:
// a child test process opens a backend, prints rclone's pid and is
// killed with SIGKILL.
func TestParentDies(t *testing.T) {
	if os.Getenv("EINVAULT_RCLONE_CHILD") == "1" {
		cfg, _ := localConfig(t)
		be, err := rclone.Create(context.Background(), cfg)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("pid", be.Pid())
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	rcloneBin(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestParentDies$")
	cmd.Env = append(os.Environ(), "EINVAULT_RCLONE_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(out)
	pid := 0
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "pid "); ok {
			pid, _ = strconv.Atoi(p)
			break
		}
		if strings.HasPrefix(sc.Text(), "error") {
			t.Fatal(sc.Text())
		}
	}
	if pid == 0 {
		t.Fatal("child did not report rclone's pid")
	}
	if !alive(pid) {
		t.Fatal("rclone not running in the child")
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("rclone %d survived its parent", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
