package invoice

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// sharedSamples returns the public sample collection when it is present
// (its unlicensed files are not copied into the repository), or "".
func sharedSamples(t testing.TB) string {
	t.Helper()
	cands := []string{os.Getenv("EINVAULT_EINVOICE_SAMPLES"),
		"../../../shared/testdata/einvoice", "../../../../shared/testdata/einvoice"}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if st, err := os.Stat(filepath.Join(c, "FORMATS.md")); err == nil && !st.IsDir() {
			return c
		}
	}
	return ""
}

type sampleFile struct {
	dir, name, path string
	external        bool
}

// sampleFiles lists the committed samples and, when the collection is
// present, its files that are not committed.
func sampleFiles(t testing.TB) []sampleFile {
	t.Helper()
	var out []sampleFile
	have := map[string]bool{}
	for _, d := range []string{"cn", "eu", "vn"} {
		ms, _ := filepath.Glob(filepath.Join("testdata", "samples", d, "*"))
		for _, m := range ms {
			if isSampleInvoiceName(m) {
				out = append(out, sampleFile{dir: d, name: filepath.Base(m), path: m})
				have[d+"/"+filepath.Base(m)] = true
			}
		}
	}
	if sh := sharedSamples(t); sh != "" {
		for _, d := range []string{"cn", "eu", "vn"} {
			ms, _ := filepath.Glob(filepath.Join(sh, d, "*"))
			for _, m := range ms {
				if isSampleInvoiceName(m) && !have[d+"/"+filepath.Base(m)] {
					out = append(out, sampleFile{dir: d, name: filepath.Base(m), path: m, external: true})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].dir+out[i].name < out[j].dir+out[j].name })
	return out
}

func isSampleInvoiceName(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".xml", ".ofd":
		return true
	}
	return false
}

// identity is what golden files of external (uncommitted) samples keep:
// no names or addresses, only identity, totals and signature roles.
type identity struct {
	Key, Format, Kind, IssueDate, AuthorityCode, Currency string
	TotalNet, TotalTax, Total, Related, Inner             string
	BuyerTaxCode                                          string
	Signatures                                            []string
}

func identities(invs []Invoice) []identity {
	out := make([]identity, 0, len(invs))
	for i := range invs {
		v := &invs[i]
		id := identity{Key: v.Key(), Format: string(v.Format), Kind: v.Kind, IssueDate: v.IssueDate,
			AuthorityCode: v.AuthorityCode, Currency: v.Currency, TotalNet: v.TotalNet, TotalTax: v.TotalTax,
			Total: v.Total, Related: v.Related, Inner: v.Inner, BuyerTaxCode: v.BuyerTaxCode}
		for _, s := range v.Signatures {
			id.Signatures = append(id.Signatures, s.Role+":"+string(s.Status)+":"+s.Algorithm)
		}
		out = append(out, id)
	}
	return out
}

func checkGolden(t *testing.T, golden string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("missing golden file (run go test -run %s -update): %v", t.Name(), err)
	}
	if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(got)) {
		t.Errorf("output differs from %s (run with -update after checking):\n got: %s\nwant: %s", golden, got, want)
	}
}

var (
	vnName = regexp.MustCompile(`^(?:tt32_)?([0-9]{10}(?:-[0-9]{3})?)_([0-9])([A-Z][0-9]{2}[A-Z]{3})_([0-9]{8}|nonum)_`)
	cnName = regexp.MustCompile(`^eordinary_([0-9]{12})-([0-9]{8})_`)
	sdName = regexp.MustCompile(`^sdp_([0-9]{20})_`)
)

// TestSamplesGolden recognises every public sample and compares the
// result with its golden file; identity fields are also checked against
// the values the collection encodes in the file names.
func TestSamplesGolden(t *testing.T) {
	files := sampleFiles(t)
	if len(files) == 0 {
		t.Fatal("no samples under testdata/samples")
	}
	for _, f := range files {
		t.Run(f.dir+"/"+f.name, func(t *testing.T) {
			data, err := os.ReadFile(f.path)
			if err != nil {
				t.Fatal(err)
			}
			invs, err := Recognize(context.Background(), f.name, data, Limits{})
			if err != nil {
				t.Fatalf("Recognize: %v", err)
			}
			if len(invs) != 1 {
				t.Fatalf("got %d invoices, want 1", len(invs))
			}
			inv := invs[0]
			checkNameFields(t, f.name, &inv)
			var out []byte
			golden := filepath.Join("testdata", "golden", f.dir, f.name+".json")
			if f.external {
				golden = filepath.Join("testdata", "golden", "external", f.dir, f.name+".json")
				out, err = json.MarshalIndent(identities(invs), "", "  ")
			} else {
				out, err = json.MarshalIndent(invs, "", "  ")
			}
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, golden, out)
		})
	}
}

func checkNameFields(t *testing.T, name string, inv *Invoice) {
	t.Helper()
	if inv.Number == "" && !strings.Contains(name, "nonum") {
		t.Errorf("empty number")
	}
	if inv.SellerTaxCode == "" {
		t.Errorf("empty seller tax code")
	}
	if m := vnName.FindStringSubmatch(name); m != nil && !strings.HasPrefix(name, "tt32_") {
		num := normNumber(m[4])
		if m[4] == "nonum" {
			num = ""
		}
		want := strings.Join([]string{m[1], m[2], m[3], num}, "/")
		if inv.Key() != want {
			t.Errorf("key %q, want %q (from the file name)", inv.Key(), want)
		}
		if inv.IssueDate[2:4] != m[3][1:3] {
			t.Errorf("issue date %s does not match the series year %s", inv.IssueDate, m[3])
		}
	}
	if m := cnName.FindStringSubmatch(name); m != nil {
		if inv.Series != m[1] || inv.Number != m[2] {
			t.Errorf("code/number %s/%s, want %s/%s", inv.Series, inv.Number, m[1], m[2])
		}
	}
	if m := sdName.FindStringSubmatch(name); m != nil && inv.Number != m[1] {
		t.Errorf("number %s, want %s", inv.Number, m[1])
	}
}

// TestSamplesSameInvoiceTwoSyntaxes: the EN 16931 examples exist in UBL
// and CII; both must give the same key and totals.
func TestSamplesSameInvoiceTwoSyntaxes(t *testing.T) {
	pairs := [][2]string{
		{"en16931_ubl-invoice_tc434-example1.xml", "en16931_cii_example1.xml"},
		{"en16931_ubl-invoice_tc434-example2.xml", "en16931_cii_business-example-01.xml"},
	}
	for _, p := range pairs {
		var got [2]Invoice
		for i, n := range p {
			data, err := os.ReadFile(filepath.Join("testdata", "samples", "eu", n))
			if err != nil {
				t.Fatal(err)
			}
			invs, err := Recognize(context.Background(), n, data, Limits{})
			if err != nil || len(invs) != 1 {
				t.Fatalf("%s: %v %v", n, invs, err)
			}
			got[i] = invs[0]
		}
		if got[0].Key() != got[1].Key() || got[0].IssueDate != got[1].IssueDate ||
			amountEq(got[0].Total, got[1].Total) == false || got[0].Currency != got[1].Currency {
			t.Errorf("%s and %s differ:\n%+v\n%+v", p[0], p[1], got[0], got[1])
		}
	}
}

// amountEq compares decimal strings numerically ("1436.5" == "1436.50").
func amountEq(a, b string) bool {
	x, err1 := Amount(a)
	y, err2 := Amount(b)
	return err1 == nil && err2 == nil && x.Cmp(y) == 0
}
