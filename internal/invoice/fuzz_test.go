package invoice

import (
	"context"
	"errors"
	"testing"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/.

// FuzzRecognize: any input either is not an invoice, is rejected with
// ErrRejected, or gives invoices whose signatures can be checked without
// a panic; recognition is deterministic.
func FuzzRecognize(f *testing.F) {
	f.Add([]byte(hdonXML("0312345678", "K24TAA", 7, true)))
	f.Add([]byte(billionLaughs))
	lim := Limits{MaxBytes: 1 << 20, MaxTokenBytes: 64 << 10, MaxElements: 20000, MaxZipBytes: 4 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		invs, err := Recognize(ctx, "fuzz", data, lim)
		if err != nil {
			if !errors.Is(err, ErrRejected) {
				t.Fatalf("error not matching ErrRejected: %v", err)
			}
			return
		}
		again, err := Recognize(ctx, "fuzz", data, lim)
		if err != nil || len(again) != len(invs) {
			t.Fatalf("not deterministic: %d then %d (%v)", len(invs), len(again), err)
		}
		for i := range invs {
			if invs[i].Key() != again[i].Key() {
				t.Fatalf("key %q then %q", invs[i].Key(), again[i].Key())
			}
			for _, s := range invs[i].Signatures {
				if s.Status != SigPending {
					t.Fatalf("unverified signature with status %s", s.Status)
				}
			}
			_ = VerifySignatures(ctx, data, &invs[i], VerifyOptions{Limits: lim})
			for _, s := range invs[i].Signatures {
				if s.Status == SigPending {
					t.Fatalf("signature left pending after VerifySignatures")
				}
			}
		}
	})
}

// FuzzParseStatusRecords: no panic; every record has a key and a known
// status.
func FuzzParseStatusRecords(f *testing.F) {
	f.Add([]byte(`[{"nbmst":"0102671977","khmshdon":1,"khhdon":"C25TEK","shdon":5090,"tthai":2,"khhdgoc":"C25TEK","shdgoc":5084}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParseStatusRecords("fuzz", data)
		if err != nil {
			return
		}
		for _, r := range recs {
			switch r.Status {
			case StatusIssued, StatusCancelled, StatusReplaced, StatusAdjusted:
			default:
				t.Fatalf("record %+v has status %q", r, r.Status)
			}
			if r.Key == "" {
				t.Fatalf("record without key: %+v", r)
			}
		}
	})
}

// FuzzSniffRoot: the cheap sniffer never panics and agrees with itself.
func FuzzSniffRoot(f *testing.F) {
	f.Add([]byte("\xEF\xBB\xBF<?xml version=\"1.0\"?><!-- c --><inv:invoice/>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, okA := sniffRoot(data)
		b, okB := sniffRoot(data)
		if a != b || okA != okB {
			t.Fatal("not deterministic")
		}
	})
}
