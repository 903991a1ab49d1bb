package pg

import (
	"testing"
	"time"
)

func TestParseTargetTime(t *testing.T) {
	want := time.Date(2026, 11, 20, 7, 5, 0, 0, time.UTC)
	for _, s := range []string{"2026-11-20 14:05:00+07", "2026-11-20 14:05:00+07:00", "2026-11-20T07:05:00Z", "2026-11-20 07:05:00 UTC", "2026-11-20T14:05:00.000+07:00"} {
		got, err := ParseTargetTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q: %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"2026-11-20 14:05:00", "yesterday", "2026-11-20 14:05:00 ICT", ""} {
		if _, err := ParseTargetTime(s); err == nil {
			t.Errorf("%q: accepted", s)
		}
	}
}

func FuzzParseTargetTime(f *testing.F) {
	f.Add("2026-11-20 14:05:00+07")
	f.Add("2026-11-20T07:05:00.123456Z")
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTargetTime(s)
		if err != nil {
			return
		}
		again, err := ParseTargetTime(tm.Format("2006-01-02T15:04:05.999999999Z07:00"))
		if err != nil || !again.Equal(tm) {
			t.Fatalf("%q: %v does not round-trip: %v, %v", s, tm, again, err)
		}
	})
}
