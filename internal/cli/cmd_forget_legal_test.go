package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestForgetRefusesLegalMinimum(t *testing.T) {
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "repo")
	cfg := filepath.Join(dir, "einvault.yaml")
	if err := os.WriteFile(cfg, []byte("repository:\n  location: "+repoDir+"\njurisdictions: [VN]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"EINVAULT_REPO": repoDir, "EINVAULT_PASSWORD": "pw", "EINVAULT_INSECURE_TEST_KDF": "1", "EINVAULT_CONFIG": cfg}
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
	backup := func(tag string, i int) {
		if err := os.WriteFile(filepath.Join(src, "f.xml"), []byte(strings.Repeat("x", i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		must("backup", "--tag", tag, src)
	}
	backup("class=invoices", 0)
	backup("class=invoices", 1)
	backup("class=logs", 2)
	backup("class=logs", 3)
	ids := func(tag string) []string {
		out := must("snapshots", "--json", "--tag", tag)
		var res []string
		for _, f := range strings.Split(out, "\"id\":\"")[1:] {
			res = append(res, f[:64])
		}
		return res
	}
	inv := ids("class=invoices")
	if len(inv) != 2 {
		t.Fatalf("invoice snapshots: %v", inv)
	}

	// By ID: refused, nothing removed, even with --prune.
	out, errs, code := runRetention(t, env, "forget", inv[0][:8])
	if code != ExitError || !strings.Contains(errs, "legal minimum") || !strings.Contains(errs, "nothing removed") {
		t.Fatalf("forget of a protected snapshot: exit %d\n%s%s", code, out, errs)
	}
	if got := ids("class=invoices"); len(got) != 2 {
		t.Fatalf("protected snapshot removed: %v", got)
	}

	// By policy: the protected snapshots stay, the logs go.
	out, errs, code = runRetention(t, env, "forget", "--keep-last", "1", "--group-by", "tags")
	if code != 0 {
		t.Fatalf("forget --keep-last 1: exit %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(errs, "legal minimum: keeping 1 snapshot") || !strings.Contains(out, "legal minimum 10y for class invoices (VN)") {
		t.Errorf("no legal-minimum notice:\n%s%s", out, errs)
	}
	if got := ids("class=invoices"); len(got) != 2 {
		t.Errorf("policy removed a protected snapshot: %d left", len(got))
	}
	if got := ids("class=logs"); len(got) != 1 {
		t.Errorf("logs snapshots: %d left, want 1", len(got))
	}

	// A broken config refuses forget instead of ignoring the minimums.
	if err := os.WriteFile(cfg, []byte("repository: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := runRetention(t, env, "forget", inv[0][:8]); code == 0 || !strings.Contains(errs, "legal minimums") {
		t.Errorf("forget with a broken config: exit %d %s", code, errs)
	}
}
