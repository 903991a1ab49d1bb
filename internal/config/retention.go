package config

import (
	"strings"
	"time"

	"github.com/einvault/einvault/internal/forget"
	"github.com/einvault/einvault/internal/repo"
)

// ClassTag is the tag prefix that records a snapshot's data class
// ("class=invoices"); the daemon and 'einvault run' set it.
const ClassTag = "class="

// JobTag records the job that made a snapshot ("job=invoices-hourly").
const JobTag = "job="

// ClassOf returns the class named by a snapshot's tags, or "".
func ClassOf(tags []string) string {
	for _, t := range tags {
		if v, ok := strings.CutPrefix(t, ClassTag); ok {
			return v
		}
	}
	return ""
}

// Effective is a class's effective retention: the larger of its policy
// and its legal minimum.
func (cl *Class) Effective() forget.Duration {
	if longer(cl.Legal, cl.Policy) {
		return cl.Legal
	}
	return cl.Policy
}

// LegalHold reports whether s may not be deleted at now because its
// class's legal minimum has not passed, and why.
func (c *Config) LegalHold(s *repo.Snapshot, now time.Time) (held bool, why string) {
	class := ClassOf(s.Tags)
	cl := c.Classes[class]
	if cl == nil || cl.Legal.Zero() {
		return false, ""
	}
	until := s.Time.AddDate(cl.Legal.Years, cl.Legal.Months, cl.Legal.Days).Add(time.Duration(cl.Legal.Hours) * time.Hour)
	if !now.Before(until) {
		return false, ""
	}
	return true, "legal minimum " + cl.Legal.String() + " for class " + class + " (" + strings.Join(cl.LegalBy, ", ") + ") until " + until.Format("2006-01-02")
}

// ForgetPolicy is the forget policy of a class: keep everything within its
// effective retention, plus its count rules.
func (cl *Class) ForgetPolicy() forget.Policy {
	k := cl.Keep
	return forget.Policy{Within: cl.Effective(), Last: k.Last, Hourly: k.Hourly, Daily: k.Daily, Weekly: k.Weekly, Monthly: k.Monthly, Yearly: k.Yearly}
}
