package catalog

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/einvault/einvault/internal/invoice"
	"github.com/einvault/einvault/internal/repo"
)

func stdJSON(t testing.TB, v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// fillStrings sets every string field reachable in v (structs, slices of
// structs) to a distinct value built from s.
func fillStrings(v reflect.Value, s string) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s + "·" + v.Type().Name())
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillStrings(v.Field(i), s+strings.Repeat("x", i))
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			fillStrings(v.Index(i), s)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			fillStrings(v.Elem(), s)
		}
	}
}

// TestAppendEntryMatchesJSON: the hand-written encoder writes what
// encoding/json writes, for entries with every field set and with
// only the required ones. It fails when a field is added to Entry,
// File, Blob or invoice.Invoice/Signature without teaching appendEntry.
func TestAppendEntryMatchesJSON(t *testing.T) {
	full := Entry{
		Invoice:   invoice.Invoice{Signatures: []invoice.Signature{{}, {}}},
		File:      File{Size: 1 << 40, Blobs: []Blob{{ID: repo.Hash([]byte("a")), Pack: -1}, {ID: repo.Hash([]byte("b")), Pack: 7, Flags: 3, Offset: 1<<32 - 1, Length: 9}}},
		PDF:       &File{Size: 3, Blobs: []Blob{{ID: repo.Hash([]byte("c"))}}},
		Reused:    true,
		ContentID: "",
	}
	fillStrings(reflect.ValueOf(&full).Elem(), "a\"b\\c\n\t\x01<>&\u2028é\xff")
	for name, e := range map[string]Entry{"full": full, "minimal": {}, "sample": sampleCatalog().Entries[0]} {
		got := appendEntry(nil, &e)
		if want := stdJSON(t, &e); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\", "\x00\x1f\x7f", "\u2028\u2029", "\xff\xfe", "Hóa đơn 发票 <&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := appendString(nil, s), stdJSON(t, s); !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}
