package invoice

import (
	"archive/zip"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func zipOf(t testing.TB, members map[string][]byte, method uint16) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range members {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func nested(depth int) string {
	return "<HDon>" + strings.Repeat("<a>", depth) + strings.Repeat("</a>", depth) + "</HDon>"
}

const billionLaughs = `<?xml version="1.0"?>
<!DOCTYPE HDon [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<HDon><DLHDon><TTChung><KHHDon>&lol3;</KHHDon></TTChung></DLHDon></HDon>`

// TestRecognizeHostile: invoice-like hostile input is rejected with a
// reason (never a panic, never unbounded work); anything else is simply
// not an invoice.
func TestRecognizeHostile(t *testing.T) {
	valid := []byte(hdonXML("0312345678", "K24TAA", 7, false))
	bomb := zipOf(t, map[string][]byte{"inv.xml": append([]byte("<HDon>"), make([]byte, 8<<20)...)}, zip.Deflate)
	many := map[string][]byte{}
	for i := range 30 {
		many[strings.Repeat("x", i+1)+".txt"] = []byte("x")
	}
	utf16 := []byte{0xFF, 0xFE}
	for _, c := range "<HDon></HDon>" {
		utf16 = append(utf16, byte(c), 0)
	}
	tests := []struct {
		name   string
		data   []byte
		lim    Limits
		reason string // "" = not an invoice (nil, nil)
	}{
		{"billion laughs", []byte(billionLaughs), Limits{}, "DOCTYPE"},
		{"external entity", []byte(`<!DOCTYPE HDon [<!ENTITY x SYSTEM "file:///etc/passwd">]><HDon>&x;</HDon>`), Limits{}, "DOCTYPE"},
		{"undefined entity", []byte(`<HDon>&x;</HDon>`), Limits{}, "malformed"},
		{"deep nesting", []byte(nested(10000)), Limits{}, "nesting deeper"},
		{"deep nesting under a lower limit", []byte(nested(20)), Limits{MaxDepth: 10}, "nesting deeper"},
		{"100 MB text node", hugeText(100 << 20), Limits{}, "exceeds"},
		{"5 MB text node", hugeText(5 << 20), Limits{}, "text node longer"},
		{"long attribute", []byte(`<HDon a="` + strings.Repeat("a", 2<<20) + `"/>`), Limits{MaxTokenBytes: 1 << 20}, "attribute longer"},
		{"too many elements", []byte("<HDon>" + strings.Repeat("<a/>", 2000) + "</HDon>"), Limits{MaxElements: 1000}, "elements"},
		{"latin-1 declared", []byte(`<?xml version="1.0" encoding="ISO-8859-1"?><HDon></HDon>`), Limits{}, "ISO-8859-1"},
		{"utf-16", utf16, Limits{}, "UTF-16"},
		{"invalid utf-8", []byte("<HDon><Ten>\xff\xfe</Ten></HDon>"), Limits{}, "malformed"},
		{"truncated", valid[:len(valid)/2], Limits{}, "malformed"},
		{"two roots", []byte("<HDon/><HDon/>"), Limits{}, "malformed"},
		{"zip bomb", bomb, Limits{}, "zip bomb"},
		{"zip with too many entries", zipOf(t, many, zip.Store), Limits{MaxEntries: 10}, "entries"},
		{"zip total over the limit", zipOf(t, map[string][]byte{"a.xml": valid, "b.xml": valid}, zip.Store), Limits{MaxZipBytes: int64(len(valid)) + 10}, "expands"},
		{"corrupt zip", append([]byte("PK\x03\x04"), make([]byte, 100)...), Limits{}, "ZIP"},
		{"pdf", []byte("%PDF-1.7\n..."), Limits{}, ""},
		{"json", []byte(`{"HDon": 1}`), Limits{}, ""},
		{"other xml", []byte(`<?xml version="1.0"?><project><HDon/></project>`), Limits{}, ""},
		{"doctype of other xml", []byte(`<!DOCTYPE html><html></html>`), Limits{}, ""},
		{"empty", nil, Limits{}, ""},
		{"tdiep notice without invoice", []byte(`<TDiep><TTChung><MLTDiep>204</MLTDiep></TTChung></TDiep>`), Limits{}, ""},
		{"zip of non-invoices", zipOf(t, map[string][]byte{"a.txt": []byte("hello"), "b.png": {0x89, 'P', 'N', 'G'}}, zip.Deflate), Limits{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			invs, err := Recognize(t.Context(), tc.name, tc.data, tc.lim)
			if tc.reason == "" {
				if err != nil || invs != nil {
					t.Fatalf("got %v, %v; want nil, nil", invs, err)
				}
				return
			}
			if !errors.Is(err, ErrRejected) {
				t.Fatalf("got %v, %v; want ErrRejected", invs, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("reason %q does not mention %q", err, tc.reason)
			}
		})
	}
}

// hugeText generates an invoice-shaped document with one text node of n
// bytes (not stored as a file).
func hugeText(n int) []byte {
	const head, tail = "<HDon><DLHDon><TTChung><KHHDon>", "</KHHDon></TTChung></DLHDon></HDon>"
	b := make([]byte, len(head)+n+len(tail))
	copy(b, head)
	text := b[len(head) : len(head)+n]
	if n > 0 {
		text[0] = 'A'
		for filled := 1; filled < n; filled *= 2 {
			copy(text[filled:], text[:filled])
		}
	}
	copy(b[len(head)+n:], tail)
	return b
}

func TestRecognizeZipMembers(t *testing.T) {
	a := []byte(hdonXML("0312345678", "K24TAA", 7, false))
	b := []byte(hdonXML("0312345678", "K24TAA", 8, false))
	inner := zipOf(t, map[string][]byte{"deep/b.xml": b}, zip.Deflate)
	data := zipOf(t, map[string][]byte{"2024/a.xml": a, "readme.txt": []byte("x"), "more.zip": inner}, zip.Deflate)
	invs, err := Recognize(t.Context(), "x.zip", data, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, inv := range invs {
		got[inv.Inner] = inv.Key()
	}
	want := map[string]string{"2024/a.xml": "0312345678/1/K24TAA/7", "more.zip!/deep/b.xml": "0312345678/1/K24TAA/8"}
	if len(got) != len(want) || got["2024/a.xml"] != want["2024/a.xml"] || got["more.zip!/deep/b.xml"] != want["more.zip!/deep/b.xml"] {
		t.Fatalf("got %v, want %v", got, want)
	}
	// a signed invoice inside a ZIP verifies through Inner
	p := getPKI(t)
	s := p.signer(t, "0312345678", testTime.AddDate(-1, 0, 0), testTime.AddDate(1, 0, 0), false)
	signed := signedInvoice(t, "0312345678", s, nil, testTime)
	data = zipOf(t, map[string][]byte{"x/signed.xml": signed}, zip.Deflate)
	invs, err = Recognize(t.Context(), "s.zip", data, Limits{})
	if err != nil || len(invs) != 1 {
		t.Fatal(invs, err)
	}
	if err := VerifySignatures(t.Context(), data, &invs[0], VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	if st := invs[0].SigStatus(); st != SigValid {
		t.Errorf("signed invoice in a ZIP: %s %+v", st, invs[0].Signatures)
	}
	// nesting deeper than MaxZipDepth is not followed
	invs, err = Recognize(t.Context(), "x.zip", zipOf(t, map[string][]byte{"a.zip": inner}, zip.Store), Limits{MaxZipDepth: 1})
	if err != nil || invs != nil {
		t.Errorf("zip depth limit: %v %v", invs, err)
	}
}

// TestParseXMLManyTextPieces: a text node split into a million pieces
// by comments is linear work, not quadratic.
func TestParseXMLManyTextPieces(t *testing.T) {
	doc := "<HDon>" + strings.Repeat("x<!---->", 1<<20) + "</HDon>"
	n, err := parseXML(t.Context(), []byte(doc), Limits{}.withDefaults())
	if err != nil {
		t.Fatal(err)
	}
	if len(n.txt()) != 1<<20 {
		t.Fatalf("text of %d bytes", len(n.txt()))
	}
}
