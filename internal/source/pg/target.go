package pg

import (
	"fmt"
	"strings"
	"time"
)

var targetLayouts = []string{
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999 Z07:00",
	"2006-01-02 15:04:05.999999999 Z07",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999 MST",
}

// ParseTargetTime parses a recovery target time such as
// "2026-11-20 14:05:00+07", "2026-11-20T07:05:00Z" or
// "2026-11-20 07:05:00 UTC". A time zone is required: a recovery target
// that silently depends on the machine's zone is a trap.
func ParseTargetTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range targetLayouts {
		t, err := time.Parse(l, s)
		if err != nil {
			continue
		}
		if strings.HasSuffix(l, "MST") && t.Location() != time.UTC && !strings.HasSuffix(s, "UTC") && !strings.HasSuffix(s, "GMT") {
			continue // zone abbreviations other than UTC are ambiguous
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("invalid recovery target time %q: use \"2006-01-02 15:04:05+07\" (a time zone offset or UTC is required)", s)
}
