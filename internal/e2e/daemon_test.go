package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type journalLine struct {
	ID       int64  `json:"id"`
	Op       string `json:"op"`
	Job      string `json:"job"`
	Result   string `json:"result"`
	Error    string `json:"error"`
	Snapshot string `json:"snapshot"`
	By       string `json:"started_by"`
}

func (e *env) journal() []journalLine {
	e.t.Helper()
	out := e.mustRun("journal", "--json").stdout
	var res []journalLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var j journalLine
		if err := json.Unmarshal([]byte(l), &j); err != nil {
			e.t.Fatalf("journal line %q: %v", l, err)
		}
		res = append(res, j)
	}
	return res
}

func count(js []journalLine, op, job, result string) int {
	n := 0
	for _, j := range js {
		if j.Op == op && j.Job == job && (result == "" || j.Result == result) {
			n++
		}
	}
	return n
}

// waitFor polls cond every 300ms until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestDaemonRunsJobs runs the daemon on an accelerated schedule with real
// jobs against a real repository: backups and verifications are
// journaled, a corrupted config on SIGHUP is refused while the jobs go on,
// and SIGTERM during a job stops it cleanly (nothing partial referenced,
// check passes).
func TestDaemonRunsJobs(t *testing.T) {
	e := newRepo(t)
	src := filepath.Join(e.dir, "invoices")
	e.generate(src, 40)
	cfgPath := filepath.Join(e.dir, "einvault.yaml")
	good := fmt.Sprintf(`repository:
  location: %s
sources:
  invoice-files: {paths: [%s]}
  slow-export: {command: [sh, -c, "head -c 300000 /dev/urandom; sleep 60"], stdin_filename: export.bin}
jobs:
  invoices:
    class: invoices
    sources: [invoice-files]
    schedule: every 2s
    verify: 50%%
    drill: every 3s
  slow:
    class: secrets
    sources: [slow-export]
    schedule: "*/5 * * * * *"
    verify: "off"
    retries: 0
daemon:
  concurrency: 2
  retention_schedule: every 4s
  prune_schedule: manual
`, e.repo, src)
	if err := os.WriteFile(cfgPath, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	e.vars["EINVAULT_CONFIG"] = cfgPath
	e.vars["EINVAULT_STOP_GRACE"] = "1s"
	e.mustRun("config", "validate")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := e.command(ctx, "daemon")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", tail(stderr.String(), 6000))
		}
	}()

	waitFor(t, "three journaled backups and checks and a drill of the invoices job", 90*time.Second, func() bool {
		js := e.journal()
		return count(js, "backup", "invoices", "ok") >= 3 && count(js, "check", "invoices", "ok") >= 3 && count(js, "forget", "", "ok") >= 1 &&
			count(js, "drill", "invoices", "ok") >= 1
	})
	for _, j := range e.journal() {
		if j.Op == "drill" && j.By != "schedule" && !strings.HasPrefix(j.By, "schedule") {
			t.Errorf("drill started by %q, want the schedule", j.By)
		}
	}

	// SIGHUP with a corrupted config: refused, the old config stays.
	if err := os.WriteFile(cfgPath, []byte("repository: [\njobs: {broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := count(e.journal(), "backup", "invoices", "ok")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "two more backups after the bad reload", 60*time.Second, func() bool {
		return count(e.journal(), "backup", "invoices", "ok") >= before+2
	})
	if !strings.Contains(stderr.String(), "config reload failed; keeping the last good config") {
		t.Errorf("bad reload not reported:\n%s", tail(stderr.String(), 3000))
	}
	st := e.mustRun("daemon", "status", "--json").stdout
	if !strings.Contains(st, "reload failed") || !strings.Contains(st, `"config_errors"`) {
		t.Errorf("status does not show the bad config: %s", st)
	}
	if err := os.WriteFile(cfgPath, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}

	// SIGTERM while the slow job runs.
	waitFor(t, "the slow job to run", 60*time.Second, func() bool {
		var s struct {
			Jobs []struct {
				Name    string `json:"name"`
				Running bool   `json:"running"`
			} `json:"jobs"`
		}
		json.Unmarshal([]byte(e.mustRun("daemon", "status", "--json").stdout), &s)
		for _, j := range s.Jobs {
			if j.Name == "slow" && j.Running {
				return true
			}
		}
		return false
	})
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("daemon exit after SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("daemon did not stop within 60s of SIGTERM")
	}
	js := e.journal()
	if n := count(js, "backup", "slow", "failed"); n < 1 {
		t.Errorf("the stopped slow job is not journaled as failed: %+v", js)
	}
	if n := count(js, "backup", "slow", "ok"); n != 0 {
		t.Errorf("a slow job finished although its command never ends: %+v", js)
	}
	if out := e.mustRun("snapshots", "--tag", "job=slow", "--json").stdout; strings.Contains(out, `"id"`) {
		t.Errorf("a snapshot of the stopped job is referenced: %s", out)
	}
	e.mustRun("check", "--read-data")
	st = e.mustRun("daemon", "status").stdout
	if !strings.Contains(st, "NOT running") || !strings.Contains(st, "invoices") {
		t.Errorf("status after stop:\n%s", st)
	}
	// Every journaled run was started by the schedule.
	for _, j := range js {
		if j.Op == "backup" && j.Job == "invoices" && !strings.HasPrefix(j.By, "schedule") {
			t.Errorf("backup started by %q", j.By)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writing process and a reading test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
