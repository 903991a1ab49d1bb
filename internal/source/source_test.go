package source

import "testing"

func TestMetaRoundTrip(t *testing.T) {
	m := &Metadata{Engine: "postgresql", Database: "inv", Tables: []Table{{Schema: "public", Name: "invoices", Rows: 3}}}
	enc, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := FromMeta(enc)
	if err != nil || !ok || got.Tables[0].Rows != 3 || got.Engine != "postgresql" {
		t.Fatalf("round trip: %+v %v %v", got, ok, err)
	}
	if _, ok, err := FromMeta(nil); ok || err != nil {
		t.Fatalf("no meta: ok=%v err=%v", ok, err)
	}
}

func TestCompareTables(t *testing.T) {
	want := []Table{
		{Schema: "public", Name: "a", Rows: 2, Checksum: "x"},
		{Schema: "public", Name: "b", Rows: 5},
		{Name: "c", Rows: 1},
	}
	tests := []struct {
		name   string
		got    map[string]Table
		ok     bool
		failed int
	}{
		{"equal", map[string]Table{"public.a": {Rows: 2, Checksum: "x"}, "public.b": {Rows: 5}, "c": {Rows: 1}}, true, 0},
		{"missing table", map[string]Table{"public.a": {Rows: 2, Checksum: "x"}, "public.b": {Rows: 5}}, false, 1},
		{"row count", map[string]Table{"public.a": {Rows: 2, Checksum: "x"}, "public.b": {Rows: 4}, "c": {Rows: 1}}, false, 1},
		{"checksum", map[string]Table{"public.a": {Rows: 2, Checksum: "y"}, "public.b": {Rows: 5}, "c": {Rows: 1}}, false, 1},
		{"checksum unknown after restore", map[string]Table{"public.a": {Rows: 2}, "public.b": {Rows: 5}, "c": {Rows: 1}}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &Verification{}
			v.CompareTables(want, tt.got)
			if v.OK() != tt.ok || len(v.Failed()) != tt.failed {
				t.Fatalf("OK=%v failed=%d, want %v %d: %+v", v.OK(), len(v.Failed()), tt.ok, tt.failed, v.Checks)
			}
		})
	}
}
