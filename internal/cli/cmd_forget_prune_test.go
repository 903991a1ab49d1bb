package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/einvault/einvault/internal/backend/local"
	"github.com/einvault/einvault/internal/repo"
	"github.com/spf13/cobra"
)

// runRetention runs a command line with forget, prune and unlock present
// whether or not the command list has them yet.
func runRetention(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	g := &Globals{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	g.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	root := NewRootCmd(g)
	for _, c := range []*cobra.Command{newForgetCmd(g), newPruneCmd(g), newUnlockCmd(g)} {
		if found, _, err := root.Find([]string{c.Name()}); err != nil || found == root {
			root.AddCommand(c)
		}
	}
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		errb.WriteString("einvault: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), ExitCode(err)
}

func TestForgetPruneUnlockCommands(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"EINVAULT_REPO": filepath.Join(dir, "repo"), "EINVAULT_PASSWORD": "pw", "EINVAULT_INSECURE_TEST_KDF": "1"}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	must := func(args ...string) string {
		t.Helper()
		out, errs, code := runRetention(t, env, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errs)
		}
		return out
	}
	must("init")
	for i := 0; i < 3; i++ {
		data := bytes.Repeat([]byte{byte(i)}, 200<<10)
		for j := range data {
			data[j] ^= byte(j * 7919 >> 3)
		}
		if err := os.WriteFile(filepath.Join(src, "inv.xml"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		must("backup", src)
	}

	// An empty policy is a usage error.
	if _, errs, code := runRetention(t, env, "forget"); code != ExitUsage || !strings.Contains(errs, "every snapshot") {
		t.Fatalf("empty policy: exit %d: %s", code, errs)
	}
	// Dry run changes nothing.
	out := must("forget", "--keep-last", "1", "--dry-run")
	if !strings.Contains(out, "would remove 2 snapshot(s)") {
		t.Fatalf("dry run output:\n%s", out)
	}
	// Forget with --prune and JSON.
	out = must("forget", "--keep-last", "1", "--prune", "--grace", "0", "--json")
	var fj struct {
		Removed int
		Groups  []struct {
			Keep, Remove []snapshotJSON
		}
		Prune *struct {
			PacksDeleted int `json:"packs_deleted"`
		}
	}
	if err := json.Unmarshal([]byte(out), &fj); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if fj.Removed != 2 || len(fj.Groups) != 1 || len(fj.Groups[0].Keep) != 1 || fj.Prune == nil || fj.Prune.PacksDeleted == 0 {
		t.Fatalf("forget --prune --json: %s", out)
	}

	// Prune finds nothing more.
	out = must("prune", "--grace", "0")
	if !strings.Contains(out, "nothing to prune") {
		t.Fatalf("prune output:\n%s", out)
	}
	if _, errs, code := runRetention(t, env, "prune", "--max-unused", "150%"); code != ExitUsage {
		t.Fatalf("bad --max-unused: exit %d %s", code, errs)
	}

	// A live prune lock held elsewhere: exit 11, naming unlock.
	ctx := context.Background()
	be, err := local.Open(ctx, env["EINVAULT_REPO"])
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, be, []byte("pw"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := r.Lock(ctx, repo.LockPrune, repo.WithOwner("nas02", 42), repo.WithRefresh(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runRetention(t, env, "prune"); code != ExitLocked || !strings.Contains(errs, "nas02") || !strings.Contains(errs, "einvault unlock") {
		t.Fatalf("prune under lock: exit %d: %s", code, errs)
	}
	// unlock keeps the live lock; --remove-all removes it.
	out = must("unlock", "--json")
	var uj struct {
		Removed, Remaining []lockJSON
	}
	if err := json.Unmarshal([]byte(out), &uj); err != nil || len(uj.Removed) != 0 || len(uj.Remaining) != 1 {
		t.Fatalf("unlock: %v %s", err, out)
	}
	out = must("unlock", "--remove-all")
	if !strings.Contains(out, "removed prune lock") {
		t.Fatalf("unlock --remove-all:\n%s", out)
	}
	_ = l
	must("prune")

	// Forget by ID.
	snaps, err := r.Snapshots(ctx)
	if err != nil || len(snaps) != 1 {
		t.Fatalf("%d snapshots, %v", len(snaps), err)
	}
	out = must("forget", snaps[0].ID.Short())
	if !strings.Contains(out, "removed snapshot "+snaps[0].ID.Short()) {
		t.Fatalf("forget by ID:\n%s", out)
	}
}
