package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/testsvc"
)

// sftpRepo returns the location of a new repository on srv; the key and
// known_hosts file are given in the location's options.
func sftpRepo(srv *testsvc.SSHD, dir string) string {
	return "sftp:" + srv.User + "@" + srv.Host + ":" + strconv.Itoa(srv.Port) + ":" + dir +
		"?key=" + srv.KeyFile + "&known-hosts=" + srv.KnownHosts
}

// TestSFTPRepository runs init, backup, check --read-data and restore
// against a real sshd, with the key and known_hosts from the environment,
// and checks that an unknown host key is refused by the CLI.
func TestSFTPRepository(t *testing.T) {
	t.Parallel()
	srv := testsvc.StartSSHD(t)
	e := newEnv(t)
	dir := filepath.Join(e.dir, "remote", "repo")
	e.repo = "sftp://" + srv.User + "@" + srv.Host + ":" + strconv.Itoa(srv.Port) + dir
	e.vars["EINVAULT_SFTP_KEY"] = srv.KeyFile
	e.vars["EINVAULT_SFTP_KNOWN_HOSTS"] = srv.KnownHosts
	e.vars["HOME"] = e.dir
	roundTrip(t, e, dir)

	// The same server with an empty known_hosts: refused, exit 1, one
	// line that shows the fingerprint; nothing is created.
	e.vars["EINVAULT_SFTP_KNOWN_HOSTS"] = filepath.Join(e.dir, "empty_known_hosts")
	res := e.run("snapshots")
	if res.code != exitError || !strings.Contains(res.stderr, "SHA256:") || !strings.Contains(res.stderr, "accept-new-host-key=1") {
		t.Errorf("unknown host key: want exit %d naming the fingerprint:\n%s", exitError, res)
	}
	if _, err := os.Stat(e.vars["EINVAULT_SFTP_KNOWN_HOSTS"]); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused host key was written to known_hosts: %v", err)
	}
	// With the opt-in it is accepted and remembered.
	e.vars["EINVAULT_SFTP_ACCEPT_NEW"] = "1"
	e.mustRun("snapshots")
	delete(e.vars, "EINVAULT_SFTP_ACCEPT_NEW")
	e.mustRun("snapshots")
}

// TestRcloneRepository runs the same round trip on an rclone remote (a
// local directory behind a real "rclone serve sftp").
func TestRcloneRepository(t *testing.T) {
	t.Parallel()
	bin := testsvc.LookPath(t, "rclone", "rclone", "install rclone (apt install rclone)")
	e := newEnv(t)
	dir := filepath.Join(e.dir, "cloud")
	e.repo = "rclone:remote:" + dir
	// A remote defined in the environment, as rclone allows.
	e.vars["RCLONE_CONFIG"] = filepath.Join(e.dir, "rclone.conf")
	e.vars["RCLONE_CONFIG_REMOTE_TYPE"] = "local"
	e.vars["EINVAULT_RCLONE"] = bin
	roundTrip(t, e, dir)
	if out, err := exec.Command("pgrep", "-f", "serve sftp remote:"+dir).Output(); err == nil {
		t.Errorf("rclone servers left running: %s", out)
	}
}

// roundTrip initialises the repository of e, backs up a corpus twice,
// verifies all data and restores the latest snapshot.
func roundTrip(t *testing.T, e *env, dir string) {
	t.Helper()
	e.mustRun("init")
	if _, err := os.Stat(filepath.Join(dir, "config")); err != nil {
		t.Fatalf("init did not write the config on the server: %v", err)
	}
	src := filepath.Join(e.dir, "corpus")
	e.generate(src, 200)
	e.backup(src)
	if err := os.WriteFile(filepath.Join(src, "added.txt"), []byte("new file"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := takeManifest(t, src)
	sum := e.backup(src)
	if n := len(e.snapshots()); n != 2 {
		t.Errorf("%d snapshots, want 2", n)
	}
	e.mustRun("check", "--read-data")
	e.restoreAndCompare(sum.SnapshotID, src, want)
}

// TestSFTPCutDuringBackup cuts the SSH connections of a running backup
// several times. The backup either recovers by itself (retries re-dial)
// or fails with a clear message; afterwards a re-run completes, check
// --read-data passes and the snapshot restores byte for byte.
func TestSFTPCutDuringBackup(t *testing.T) {
	t.Parallel()
	srv := testsvc.StartSSHD(t)
	e := newEnv(t)
	dir := filepath.Join(e.dir, "remote", "repo")
	e.repo = sftpRepo(srv, dir)
	e.mustRun("init")
	src := filepath.Join(e.dir, "corpus")
	e.generate(src, 1500, "--dump-size", "8000000")
	want := takeManifest(t, src)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := e.command(ctx, "backup", "--json", src)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// Cut once the first packs have arrived, then twice more.
	cuts, waitErr := 0, error(nil)
	finished := false
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var lastCut time.Time
	for !finished {
		select {
		case waitErr = <-done:
			finished = true
		case <-tick.C:
			if cuts < 3 && time.Since(lastCut) > 150*time.Millisecond && packCount(dir) > 0 {
				if srv.CutConnections() > 0 {
					cuts++
					lastCut = time.Now()
				}
			}
		}
	}
	res := result{args: []string{"backup"}, stdout: stdout.String(), stderr: stderr.String()}
	if cuts == 0 {
		t.Fatalf("the backup finished before any connection could be cut; make the corpus larger:\n%s", res)
	}
	t.Logf("cut the SSH connection %d times; backup: %v", cuts, waitErr)
	if waitErr != nil {
		// A clear one-line reason, not a crash.
		if strings.Contains(res.output(), "panic") || !strings.Contains(res.output(), "connection") {
			t.Errorf("failed backup does not say the connection was lost:\n%s", res)
		}
	}
	// Nothing partial under a final name: every pack in the repository
	// is checked by check --read-data below. Re-run and verify.
	sum := e.backup(src)
	e.mustRun("check", "--read-data")
	e.restoreAndCompare(sum.SnapshotID, src, want)
}

// packCount counts the pack files under dir/data.
func packCount(dir string) int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(dir, "data"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".tmp-") {
			n++
		}
		return nil
	})
	return n
}
