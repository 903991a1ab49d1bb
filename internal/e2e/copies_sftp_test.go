package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/einvault/einvault/internal/testsvc"
)

// TestCopiesSFTP: a local primary, a local copy and a copy on a real
// OpenSSH server. sshd down during a backup: degraded (exit 4) naming the
// copy; back up: the next sync completes. A pack deleted in the primary
// and a different one corrupted on the SFTP copy: the restore is
// byte-identical and names the copy that healed it; repair makes every
// copy pass check --read-data.
func TestCopiesSFTP(t *testing.T) {
	t.Parallel()
	srv := testsvc.StartSSHD(t)
	e := newRepo(t)
	e.vars["EINVAULT_SFTP_KEY"] = srv.KeyFile
	e.vars["EINVAULT_SFTP_KNOWN_HOSTS"] = srv.KnownHosts
	e.vars["HOME"] = e.dir
	remote := filepath.Join(e.dir, "remote", "copy")
	loc := "sftp://" + srv.User + "@" + srv.Host + ":" + strconv.Itoa(srv.Port) + remote
	nas := filepath.Join(e.dir, "nas")
	src := filepath.Join(e.dir, "src")
	writeSource(t, src, 30, 200000)
	e.mustRun("copies", "add", "nas", nas, "--kind", "nas")
	e.mustRun("copies", "add", "offsite", loc, "--offsite")
	e.mustRun("backup", src)
	sameFiles(t, e.repo, remote)

	srv.Stop()
	writeSource(t, filepath.Join(src, "more"), 5, 200000)
	res := e.run("backup", src)
	if res.code != 4 || !strings.Contains(res.stderr, `copy "offsite"`) {
		t.Fatalf("want a degraded backup naming copy offsite:\n%s", res)
	}
	sameFiles(t, e.repo, nas)
	srv.Restart(t)
	e.mustRun("sync")
	sameFiles(t, e.repo, remote)

	ps := packs(t, e.repo)
	if len(ps) < 2 {
		t.Fatalf("want 2 packs, got %v", ps)
	}
	if err := os.Remove(filepath.Join(e.repo, ps[0])); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(nas, ps[0])); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(remote, ps[1])
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(e.dir, "restore")
	res = e.mustRun("restore", "latest", "--target", target)
	healed := res.stderr
	if !strings.Contains(healed, `copy "offsite"`) {
		// The deleted pack may hold only the first snapshot's trees,
		// which the latest does not need: every pack is needed by one
		// of the two snapshots.
		healed += e.mustRun("restore", e.snapshots()[0].ID, "--target", target+"-first").stderr
	}
	if !strings.Contains(healed, `copy "offsite"`) {
		t.Errorf("restore does not name the copy that healed it:\n%s", res)
	}
	sameTree(t, src, filepath.Join(target, src))
	if res := e.run("check", "--all-copies", "--read-data"); res.code != 5 {
		t.Fatalf("check --all-copies missed the damage:\n%s", res)
	}
	e.mustRun("repair")
	e.mustRun("check", "--all-copies", "--read-data")
	eo := *e
	eo.repo = loc
	eo.mustRun("check", "--storage-only")
}

// TestCopiesRclone: a cloud-drive copy through a real rclone process
// (a local remote behind 'rclone serve sftp') is synced by the backup,
// equal to the primary, and passes check --read-data on its own.
func TestCopiesRclone(t *testing.T) {
	t.Parallel()
	bin := testsvc.LookPath(t, "rclone", "rclone", "install rclone (apt install rclone)")
	e := newRepo(t)
	e.vars["RCLONE_CONFIG"] = filepath.Join(e.dir, "rclone.conf")
	e.vars["RCLONE_CONFIG_REMOTE_TYPE"] = "local"
	e.vars["EINVAULT_RCLONE"] = bin
	cloud := filepath.Join(e.dir, "cloud")
	src := filepath.Join(e.dir, "src")
	writeSource(t, src, 20, 100000)
	e.mustRun("copies", "add", "drive", "rclone:remote:"+cloud, "--offsite")
	e.mustRun("backup", src)
	sameFiles(t, e.repo, cloud)
	st := e.mustRun("copies", "status", "--json")
	if !strings.Contains(st.stdout, `"kind":"cloud"`) || !strings.Contains(st.stdout, `"reachable":true`) {
		t.Errorf("status of the cloud copy:\n%s", st.stdout)
	}
	ec := *e
	ec.repo = "rclone:remote:" + cloud
	ec.mustRun("check", "--read-data")
}
