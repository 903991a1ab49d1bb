package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/einvault/einvault/internal/config"
	"github.com/einvault/einvault/internal/daemon"
	"github.com/einvault/einvault/internal/journal"
)

func TestChooseNewPacks(t *testing.T) {
	mk := func(n int, size int64) []daemon.Pack {
		var out []daemon.Pack
		for i := 0; i < n; i++ {
			out = append(out, daemon.Pack{ID: fmt.Sprintf("%02x%062x", i*7, i), Size: size})
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		packs     []daemon.Pack
		share     string
		budget    int64
		want      int
		byShare   int
		maxBytes  int64
		wantError bool
	}{
		{name: "all within budget", packs: mk(10, 100), share: "all", budget: 1 << 30, want: 10, byShare: 10},
		{name: "default is all", packs: mk(4, 100), share: "", budget: 1 << 30, want: 4, byShare: 4},
		{name: "share", packs: mk(10, 100), share: "30%", budget: 1 << 30, want: 3, byShare: 3},
		{name: "share at least one", packs: mk(3, 100), share: "1%", budget: 1 << 30, want: 1, byShare: 1},
		{name: "budget samples", packs: mk(10, 100), share: "all", budget: 450, want: 4, byShare: 10, maxBytes: 450},
		{name: "budget below one pack reads one", packs: mk(5, 1000), share: "all", budget: 10, want: 1, byShare: 5},
		{name: "none written", packs: nil, share: "all", budget: 10, want: 0},
		{name: "bad share", packs: mk(2, 1), share: "lots", budget: 10, wantError: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, byShare, err := chooseNewPacks(tc.packs, tc.share, tc.budget, rand.New(rand.NewPCG(1, 2)))
			if tc.wantError {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want || byShare != tc.byShare {
				t.Fatalf("chose %d (share %d), want %d (share %d)", len(got), byShare, tc.want, tc.byShare)
			}
			var sum int64
			seen := map[string]bool{}
			for _, p := range got {
				sum += p.Size
				if seen[p.ID] {
					t.Fatalf("pack %s chosen twice", p.ID)
				}
				seen[p.ID] = true
			}
			if tc.maxBytes > 0 && sum > tc.maxBytes {
				t.Fatalf("read %d bytes, budget %d", sum, tc.maxBytes)
			}
		})
	}
}

// corruptingRunner flips a byte in the middle of a pack after the
// backup, before the verification reads it back: what a disk or a
// network that corrupts writes does.
type corruptingRunner struct {
	inner  daemon.Runner
	repo   string
	victim func(o daemon.Outcome) string // pack ID to corrupt ("" none)
	hit    string
}

func (c *corruptingRunner) Run(ctx context.Context, cfg *config.Config, op daemon.Op) daemon.Outcome {
	o := c.inner.Run(ctx, cfg, op)
	if op.Name == daemon.OpBackup && c.victim != nil {
		if id := c.victim(o); id != "" {
			flipByte(c.repo, id)
			c.hit = id
		}
	}
	return o
}

func flipByte(repoDir, id string) {
	p := filepath.Join(repoDir, "data", id[:2], id)
	b, err := os.ReadFile(p)
	if err != nil {
		panic(err)
	}
	b[len(b)/2] ^= 0xff
	os.Chmod(p, 0o600)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		panic(err)
	}
}

func packFiles(t *testing.T, repoDir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	filepath.WalkDir(filepath.Join(repoDir, "data"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out[d.Name()] = true
		}
		return nil
	})
	return out
}

// TestJobVerifyReadsNewPacks runs a job twice through the daemon with
// the real command runner: damage to a pack an EARLIER backup wrote is
// not what the job's verification reads (it passes), while a pack the
// job's own backup wrote, corrupted before the verification, is caught
// (exit code 5, the journal's check entry names it).
func TestJobVerifyReadsNewPacks(t *testing.T) {
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "repo")
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	env := map[string]string{"EINVAULT_REPO": repoDir, "EINVAULT_PASSWORD": "pw", "EINVAULT_INSECURE_TEST_KDF": "1"}
	if _, errs, code := runRetention(t, env, "init"); code != 0 {
		t.Fatal(errs)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	write := func(name string, n int) {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.bin", 300<<10)
	cfgText := fmt.Sprintf("repository: {location: %s}\nsources: {files: {paths: [%s]}}\njobs:\n  inv:\n    class: invoices\n    sources: [files]\n    retries: 0\n", repoDir, src)
	cfg, err := config.Parse([]byte(cfgText), "t.yaml", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	g := &Globals{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string { return env[k] }, StateDir: filepath.Join(dir, "state"), log: log}
	j, err := journal.Open(ctx, g.StateDir, journal.Options{Logger: log, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	cr := &corruptingRunner{inner: cliRunner{g: g, log: log}, repo: repoDir}
	d, err := daemon.New(ctx, cfg, daemon.Options{Logger: log, Journal: j, Runner: cr})
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.RunJob(ctx, "inv", "test")
	if err != nil || res.Result != journal.ResultOK {
		t.Fatalf("first run: %+v %v", res, err)
	}
	if len(res.Entries) != 2 || !strings.Contains(res.Entries[1].Detail, "all intact") || !strings.Contains(res.Entries[1].Detail, "new packs") {
		t.Fatalf("verification entry: %+v", res.Entries)
	}
	old := packFiles(t, repoDir)

	// An old pack damaged: not read by this job's verification.
	for id := range old {
		flipByte(repoDir, id)
		break
	}
	write("b.bin", 200<<10)
	res, err = d.RunJob(ctx, "inv", "test")
	if err != nil || res.Result != journal.ResultOK {
		t.Fatalf("second run (old pack damaged) should pass its new-pack verification: %+v %v", res, err)
	}

	// A new pack damaged between backup and verification: caught.
	write("c.bin", 200<<10)
	cr.victim = func(o daemon.Outcome) string {
		for _, p := range o.NewPacks {
			if !old[p.ID] {
				return p.ID
			}
		}
		return ""
	}
	res, err = d.RunJob(ctx, "inv", "test")
	if err != nil {
		t.Fatal(err)
	}
	if cr.hit == "" {
		t.Fatal("the backup reported no new pack to corrupt")
	}
	if res.Result != journal.ResultFailed || res.ExitCode != ExitDamaged {
		t.Fatalf("corrupted new pack not caught: %+v", res)
	}
	es, err := j.List(ctx, journal.Filter{Op: daemon.OpCheck})
	if err != nil {
		t.Fatal(err)
	}
	last := es[len(es)-1]
	if last.Result != journal.ResultFailed || !strings.Contains(last.Detail, "DAMAGED") || !strings.Contains(last.Detail, cr.hit) {
		t.Fatalf("journal check entry: %+v (corrupted %s)", last, cr.hit)
	}
}
