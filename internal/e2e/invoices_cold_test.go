package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInvoicesColdRestore: on a machine whose catalog cache is empty (a
// new machine after a disaster), 'invoices restore' finds the invoice
// through the catalogs' look-up index without filling the cache first,
// by key and by content ID, in the newest snapshot holding it or the one
// given; once the cache is filled, the cache answers.
func TestInvoicesColdRestore(t *testing.T) {
	t.Parallel()
	e := newRepo(t)
	src := filepath.Join(e.dir, "corpus")
	e.mustRun("corpus", "generate", src, "--files", "40", "--seed", "5", "--pdf-ratio", "0", "--dump-size", "-1")
	xmls := corpusXMLs(t, src, 40)
	type snapOut struct {
		Snapshot string `json:"snapshot_id"`
	}
	var s1, s2 snapOut
	if err := json.Unmarshal([]byte(lastLine(e.mustRun("backup", src, "--json").stdout)), &s1); err != nil {
		t.Fatal(err)
	}
	// the same invoice re-issued with other bytes (a reformatted copy)
	x := xmls[7]
	old := readFile(t, x)
	if err := os.WriteFile(x, append(bytes.Clone(old), '\n', '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lastLine(e.mustRun("backup", src, "--json").stdout)), &s2); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(src, x)
	// the key from the file name: SELLER_FORMSERIES_NUMBER.xml
	parts := strings.Split(strings.TrimSuffix(filepath.Base(x), ".xml"), "_")
	key := parts[0] + "/" + parts[1][:1] + "/" + parts[1][1:] + "/" + strings.TrimLeft(parts[2], "0")

	type restoreOut struct {
		FoundIn   string `json:"found_in"`
		Snapshot  string `json:"snapshot"`
		ContentID string `json:"content_id"`
		Files     []struct {
			Verified bool `json:"verified"`
		} `json:"files"`
	}
	restore := func(cache string, args ...string) (restoreOut, []byte) {
		t.Helper()
		e.vars["EINVAULT_CACHE_DIR"] = filepath.Join(e.dir, cache)
		target := filepath.Join(e.dir, "target-"+cache)
		os.RemoveAll(target)
		res := e.mustRun(append(append([]string{"invoices", "restore"}, args...), "--target", target, "--json")...)
		var out restoreOut
		if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || len(out.Files) != 1 || !out.Files[0].Verified {
			t.Fatalf("restore %v: %v\n%s", args, err, res)
		}
		return out, readFile(t, filepath.Join(target, rel))
	}
	now := readFile(t, x)
	sum := sha256.Sum256(old)
	oldCID := hex.EncodeToString(sum[:])
	tests := []struct {
		name string
		args []string
		snap string
		data []byte
	}{
		{"key, newest snapshot", []string{key}, s2.Snapshot, now},
		{"key in the first snapshot", []string{key, "--snapshot", s1.Snapshot[:10]}, s1.Snapshot, old},
		{"content ID of the old version", []string{strings.ToUpper(oldCID)}, s1.Snapshot, old},
	}
	for i, tt := range tests {
		cache := "cold" + string(rune('a'+i))
		got, data := restore(cache, tt.args...)
		if got.FoundIn != "catalog" || got.Snapshot != tt.snap || !bytes.Equal(data, tt.data) {
			t.Fatalf("%s: found in %q, snapshot %s (want %s), same bytes %v", tt.name, got.FoundIn, got.Snapshot, tt.snap, bytes.Equal(data, tt.data))
		}
		// the cache stays empty: the next look-up is cold again
		if again, _ := restore(cache, tt.args...); again.FoundIn != "catalog" {
			t.Fatalf("%s: the restore filled the cache", tt.name)
		}
	}
	e.vars["EINVAULT_CACHE_DIR"] = filepath.Join(e.dir, "cold-missing")
	if res := e.run("invoices", "restore", "0000000000/1/X/1", "--target", filepath.Join(e.dir, "t")); res.code != exitError || !strings.Contains(res.stderr, "no invoice matches") {
		t.Fatalf("unknown key, cold: %s", res)
	}
	if res := e.run("invoices", "restore", key, "--snapshot", "ffffffff", "--target", filepath.Join(e.dir, "t")); res.code != exitError {
		t.Fatalf("unknown snapshot, cold: %s", res)
	}
	// find --key, cold: the history from the catalogs
	type findOut struct {
		Count    int    `json:"count"`
		FoundIn  string `json:"found_in"`
		Invoices []struct {
			Key      string `json:"key"`
			Changed  bool   `json:"changed"`
			Versions []struct {
				ContentID string `json:"content_id"`
				Snapshots []struct {
					Snapshot string `json:"snapshot"`
				} `json:"snapshots"`
			} `json:"versions"`
		} `json:"invoices"`
	}
	find := func(cache string) findOut {
		t.Helper()
		e.vars["EINVAULT_CACHE_DIR"] = filepath.Join(e.dir, cache)
		var out findOut
		if err := json.Unmarshal([]byte(e.mustRun("invoices", "find", "--key", key, "--json").stdout), &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	cold := find("cold-find")
	if cold.FoundIn != "catalog" || cold.Count != 1 || !cold.Invoices[0].Changed || len(cold.Invoices[0].Versions) != 2 ||
		cold.Invoices[0].Versions[0].ContentID != oldCID || cold.Invoices[0].Versions[1].Snapshots[0].Snapshot != s2.Snapshot {
		t.Fatalf("cold find --key: %+v", cold)
	}
	// a filled cache answers the same
	e.vars["EINVAULT_CACHE_DIR"] = filepath.Join(e.dir, "warm")
	e.mustRun("invoices", "stats", "-q")
	if got, data := restore("warm", key); got.FoundIn != "cache" || got.Snapshot != s2.Snapshot || !bytes.Equal(data, now) {
		t.Fatalf("warm: found in %q, snapshot %s", got.FoundIn, got.Snapshot)
	}
	warm := find("warm")
	cold.FoundIn = ""
	if a, b := mustJSON(t, cold), mustJSON(t, warm); a != b {
		t.Fatalf("find --key, cold and warm differ:\n%s\n%s", a, b)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
