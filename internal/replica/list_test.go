package replica

import (
	"testing"
	"time"
)

func TestListRoundTripAndValidate(t *testing.T) {
	l := List{Seq: 3, Time: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), Copies: []Copy{
		{Name: "primary", Location: "/srv/einvault", Kind: KindDisk, Order: 0},
		{Name: "minio", Location: "s3:http://127.0.0.1:9000/b", Kind: KindS3, Offsite: true, Immutable: true, Order: 1, VerifyErrors: 2},
	}}
	data, err := l.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeList(data)
	if err != nil || len(got.Copies) != 2 || got.Copies[1].VerifyErrors != 2 || got.Seq != 3 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	bad := []List{
		{Copies: []Copy{{Name: "", Location: "/x", Kind: KindDisk}}},
		{Copies: []Copy{{Name: "a", Location: "/x", Kind: "tape"}}},
		{Copies: []Copy{{Name: "a", Location: "/x", Kind: KindDisk}, {Name: "a", Location: "/y", Kind: KindDisk}}},
		{Copies: []Copy{{Name: "a", Location: "/x", Kind: KindDisk}, {Name: "b", Location: "local:/x/", Kind: KindDisk}}},
		{Copies: []Copy{{Name: "-a", Location: "/x", Kind: KindDisk}}},
	}
	for i, b := range bad {
		if b.Validate() == nil {
			t.Errorf("case %d: invalid list accepted", i)
		}
	}
	if _, err := DecodeList([]byte(`{"version":2,"copies":[]}`)); err == nil {
		t.Error("unknown version accepted")
	}
}

func FuzzDecodeList(f *testing.F) {
	f.Add([]byte(`{"version":1,"seq":1,"copies":[{"name":"a","location":"/x","kind":"disk","order":0}]}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := DecodeList(data)
		if err != nil {
			return
		}
		enc, err := l.Encode()
		if err != nil {
			t.Fatal(err)
		}
		l2, err := DecodeList(enc)
		if err != nil {
			t.Fatalf("re-encoded list does not decode: %v", err)
		}
		if len(l2.Copies) != len(l.Copies) || l2.Seq != l.Seq {
			t.Fatal("round trip changed the list")
		}
	})
}
