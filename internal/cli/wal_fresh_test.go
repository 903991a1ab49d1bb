package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/config"
	"github.com/einvault/einvault/internal/daemon"
	"github.com/einvault/einvault/internal/journal"
	"github.com/einvault/einvault/internal/notify"
	"github.com/jonboulle/clockwork"
)

type recordingNotifier struct {
	mu  sync.Mutex
	evs []notify.Event
}

func (n *recordingNotifier) Notify(_ context.Context, ev notify.Event) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.evs = append(n.evs, ev)
	return nil
}

func (n *recordingNotifier) take() []notify.Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.evs
	n.evs = nil
	return out
}

// TestWALFreshness archives WAL files with controlled times into a real
// repository and a copy, and checks the daemon's WAL freshness check: a
// place whose newest WAL is older than wal_max_age raises one stale-WAL
// alert per episode, a fresh place none, and 'daemon status' shows the
// age of each.
func TestWALFreshness(t *testing.T) {
	dir := t.TempDir()
	repoDir, copyDir := filepath.Join(dir, "repo"), filepath.Join(dir, "copy")
	for _, r := range []string{repoDir, copyDir} {
		env := map[string]string{"EINVAULT_REPO": r, "EINVAULT_PASSWORD": "pw", "EINVAULT_INSECURE_TEST_KDF": "1"}
		if _, errs, code := runRetention(t, env, "init"); code != 0 {
			t.Fatal(errs)
		}
	}
	now := time.Now().Truncate(time.Second)
	seg := 0
	archive := func(repo string, at time.Time) {
		seg++
		d := filepath.Join(repo, "wal")
		os.MkdirAll(d, 0o700)
		p := filepath.Join(d, fmt.Sprintf("0000000100000000%08X", seg))
		if err := os.WriteFile(p, []byte("sealed wal"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	archive(repoDir, now.Add(-20*time.Minute))
	archive(repoDir, now.Add(-5*time.Minute))
	archive(copyDir, now.Add(-30*time.Minute))

	cfgText := fmt.Sprintf(`repository:
  location: %s
  copies: [{name: nas, location: %s}]
sources: {db: {database: "pg://app@127.0.0.1:1/einvoice"}}
jobs:
  db-daily: {class: invoice-database, sources: [db]}
`, repoDir, copyDir)
	cfg, err := config.Parse([]byte(cfgText), "t.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	env := map[string]string{}
	g := &Globals{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string { return env[k] }, StateDir: filepath.Join(dir, "state"), log: log}
	j, err := journal.Open(ctx, g.StateDir, journal.Options{Logger: log, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	clk := clockwork.NewFakeClockAt(now)
	n := &recordingNotifier{}
	d, err := daemon.New(ctx, cfg, daemon.Options{Clock: clk, Logger: log, Journal: j, Runner: cliRunner{g: g, log: log}, Notifier: n, WAL: walProber{g: g}})
	if err != nil {
		t.Fatal(err)
	}
	stalePlaces := func() []string {
		var out []string
		for _, ev := range n.take() {
			if ev.Kind != notify.KindStale || ev.Op != "wal" {
				t.Errorf("unexpected event %+v", ev)
				continue
			}
			out = append(out, ev.Fields["place"])
		}
		return out
	}

	d.CheckWAL(ctx)
	if got := stalePlaces(); len(got) != 1 || got[0] != "nas" {
		t.Fatalf("after the first check: stale alerts for %v, want [nas] (repository 5m old, copy 30m, max 15m)", got)
	}
	// 'daemon status' (real clock: the fake one has not moved yet).
	out, errs, code := runRetention(t, map[string]string{"EINVAULT_STATE_DIR": g.StateDir}, "daemon", "status")
	if code != 0 || !strings.Contains(out, "WAL ARCHIVE") || !strings.Contains(out, "repository") || !strings.Contains(out, "STALE") {
		t.Fatalf("daemon status:\n%s%s", out, errs)
	}
	out, _, _ = runRetention(t, map[string]string{"EINVAULT_STATE_DIR": g.StateDir}, "daemon", "status", "--json")
	if !strings.Contains(out, `"wal":[`) || !strings.Contains(out, `"age_seconds"`) {
		t.Fatalf("daemon status --json lacks the WAL ages:\n%s", out)
	}
	if !strings.Contains(out, `"name":"nas"`) {
		t.Fatalf("status lacks the copy: %s", out)
	}
	d.CheckWAL(ctx)
	if got := stalePlaces(); len(got) != 0 {
		t.Fatalf("the same episode alerted again: %v", got)
	}
	// 11 minutes later the repository's newest WAL is 16m old.
	clk.Advance(11 * time.Minute)
	d.CheckWAL(ctx)
	if got := stalePlaces(); len(got) != 1 || got[0] != "repository" {
		t.Fatalf("after 11m: stale alerts for %v, want [repository]", got)
	}
	// The copy catches up, then falls behind again: a new episode.
	archive(copyDir, clk.Now())
	d.CheckWAL(ctx)
	if got := stalePlaces(); len(got) != 0 {
		t.Fatalf("fresh copy alerted: %v", got)
	}
	clk.Advance(16 * time.Minute)
	d.CheckWAL(ctx)
	if got := stalePlaces(); len(got) != 1 || got[0] != "nas" {
		t.Fatalf("copy stale again: alerts for %v, want [nas] (repository's episode continues)", got)
	}

	ws, err := d.State().WAL(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 2 || ws[0].Name != "repository" || ws[1].Name != "nas" || ws[0].MaxAge != 15*time.Minute {
		t.Fatalf("WAL state: %+v", ws)
	}
	if age := ws[1].Age(clk.Now()); age != 16*time.Minute {
		t.Fatalf("copy WAL age %v, want 16m", age)
	}
}
