package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestJournalRecordsManualRuns: backups, checks and failures run by hand
// are in the journal, with who ran them.
func TestJournalRecordsManualRuns(t *testing.T) {
	e := newRepo(t)
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "a.xml"), []byte("<HDon/>"), 0o644)
	e.mustRun("backup", src)
	e.mustRun("check")
	bad := e.run("restore", "deadbeef", "--target", filepath.Join(e.dir, "out"))
	if bad.code == 0 {
		t.Fatal("restore of a missing snapshot succeeded")
	}
	out := e.mustRun("journal", "--json").stdout
	var entries []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		entries = append(entries, m)
	}
	if len(entries) != 3 {
		t.Fatalf("%d entries:\n%s", len(entries), out)
	}
	for _, k := range []string{"id", "job", "op", "kind", "start", "end", "result", "bytes_read", "bytes_added", "error"} {
		if _, ok := entries[0][k]; !ok {
			t.Errorf("entry lacks %q: %v", k, entries[0])
		}
	}
	if entries[0]["op"] != "backup" || entries[0]["result"] != "ok" || entries[0]["kind"] != "full" || entries[0]["bytes_read"].(float64) != 7 ||
		!strings.Contains(entries[0]["started_by"].(string), "@") {
		t.Errorf("backup entry: %v", entries[0])
	}
	if entries[2]["op"] != "restore" || entries[2]["result"] != "failed" || entries[2]["error"] == "" {
		t.Errorf("failed restore entry: %v", entries[2])
	}
	failed := e.mustRun("journal", "--failed").stdout
	if !strings.Contains(failed, "restore") || strings.Contains(failed, "backup") {
		t.Errorf("journal --failed:\n%s", failed)
	}
}

// TestJournalStateDirFull: with the state directory on a full tmpfs the
// backup still runs, the missing journal entry is reported (exit 4) and
// written once there is space again.
func TestJournalStateDirFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs; internal/journal covers the queue with injected ENOSPC")
	}
	e := newRepo(t)
	state := filepath.Join(e.dir, "statefs")
	os.MkdirAll(state, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", state).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s)", err, out)
	}
	defer exec.Command("umount", "-l", state).Run()
	e.vars["EINVAULT_STATE_DIR"] = state
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "a.xml"), []byte("<HDon/>"), 0o644)
	e.mustRun("backup", src) // creates the database
	f, _ := os.Create(filepath.Join(state, "filler"))
	buf := make([]byte, 16<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	os.WriteFile(filepath.Join(src, "b.xml"), []byte(strings.Repeat("<HDon/>", 1000)), 0o644)
	r := e.run("backup", src)
	if r.code != 4 || !strings.Contains(r.stderr, "journal entry of this backup was not written") {
		t.Fatalf("backup with a full state directory: exit %d\n%s", r.code, r.output())
	}
	if n := strings.Count(e.mustRun("snapshots", "--json").stdout, `"id"`); n < 2 {
		t.Fatalf("the backup did not run: %d snapshots", n)
	}
	os.Remove(filepath.Join(state, "filler"))
	out := e.mustRun("journal", "--json", "--op", "backup").stdout
	if n := strings.Count(out, `"op":"backup"`); n != 2 {
		t.Fatalf("after freeing space: %d backup entries, want 2\n%s", n, out)
	}
}
