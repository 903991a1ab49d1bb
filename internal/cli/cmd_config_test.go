package cli

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files")

// TestConfigValidateGolden pins what 'config validate' prints for the
// example file, a file full of mistakes and a file with typos.
func TestConfigValidateGolden(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		json       bool
		code       int
	}{
		{"example", "../../einvault.example.yaml", false, 0},
		{"example_json", "../../einvault.example.yaml", true, 0},
		{"bad", "testdata/config/bad.yaml", false, 1},
		{"bad_json", "testdata/config/bad.yaml", true, 1},
		{"typo", "testdata/config/typo.yaml", false, 1},
		{"secret", "testdata/config/secret.yaml", false, 0},
		{"secret_json", "testdata/config/secret.yaml", true, 0},
		{"missing", "testdata/config/does-not-exist.yaml", false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"config", "validate", "--config", tc.file}
			if tc.json {
				args = append(args, "--json")
			}
			out, errs, code := runRetention(t, map[string]string{"HOME": "/nonexistent"}, args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tc.code, out, errs)
			}
			got := "--- stdout\n" + out + "--- stderr\n" + errs
			golden := filepath.Join("testdata", "config", tc.name+".golden")
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run 'go test ./internal/cli -run ConfigValidateGolden -update')", err)
			}
			if string(want) != got {
				t.Errorf("output differs from %s (run with -update if deliberate):\n--- want\n%s\n--- got\n%s", golden, want, got)
			}
		})
	}
}
