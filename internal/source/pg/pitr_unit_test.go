package pg

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestPostmasterStatus(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content, want string
	}{
		{"starting", "123\n/data\n1700000000\n5432\n/tmp\n\n  1234567     42\nstarting\n", "starting"},
		{"standby", "123\n/data\n1700000000\n5432\n/tmp\n\n  1234567     42\nstandby \n", "standby"},
		{"ready", "123\n/data\n1700000000\n5432\n/tmp\n\n  1234567     42\nready   \n", "ready"},
		{"no status line yet", "123\n/data\n1700000000\n5432\n", ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := postmasterStatus(p)
			if err != nil || got != tc.want {
				t.Fatalf("postmasterStatus = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := postmasterStatus(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Fatalf("missing postmaster.pid: err %v, want not-exist", err)
	}
}

func TestSyncfsSupported(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    bool
	}{
		{"15\n", runtime.GOOS == "linux"},
		{"14", runtime.GOOS == "linux"},
		{"13\n", false},
		{"9.6\n", false},
		{"", false},
	} {
		dir := t.TempDir()
		if tc.version != "" {
			if err := os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte(tc.version), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if got := syncfsSupported(dir); got != tc.want {
			t.Errorf("PG_VERSION %q: syncfsSupported = %v, want %v", tc.version, got, tc.want)
		}
	}
}
