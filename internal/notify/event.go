// Package notify delivers alerts about backups, copies and hosts to
// people: e-mail over SMTP, generic JSON webhooks, Slack, Microsoft
// Teams, Telegram, DingTalk, WeCom, Feishu and SMS gateways. Rules choose
// which events go to which recipients; an alert that is not acknowledged
// in time escalates to the next level (0/15/30/60 minutes by default);
// messages are written in each recipient's language (English, Vietnamese
// or Chinese). Alerts wait in a persistent outbox until delivered, so a
// mail server that is down delays an alert but never loses it.
package notify

import "time"

// Kind classifies an event; rules select events by kind.
type Kind string

// Event kinds.
const (
	KindFailure   Kind = "failure"        // a job or operation failed
	KindDegraded  Kind = "degraded"       // done, but a copy or a pre-flight check failed
	KindStale     Kind = "stale"          // the newest backup is older than its RPO
	KindSuccess   Kind = "success-digest" // periodic summary of what went well
	KindRecovered Kind = "recovered"      // a job that failed has succeeded again
	KindHost      Kind = "host"           // host monitoring threshold crossed (CPU, memory, disk, ...)
)

// Severity orders events; rules may select a minimum severity.
type Severity string

// Severities, from least to most urgent.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Rank orders severities: info 0, warning 1, critical 2 (unknown: 1).
func (s Severity) Rank() int {
	switch s {
	case SeverityInfo:
		return 0
	case SeverityCritical:
		return 2
	}
	return 1
}

// Event is something people should hear about.
type Event struct {
	ID       string            `json:"id,omitempty"` // set by the dispatcher when empty
	Kind     Kind              `json:"kind"`
	Severity Severity          `json:"severity"`
	Job      string            `json:"job,omitempty"`
	Op       string            `json:"op,omitempty"`   // backup, restore, sync, check, prune, drill
	Host     string            `json:"host,omitempty"` // the machine the event is about
	Message  string            `json:"message"`        // one line, in English; channels translate the frame around it
	Time     time.Time         `json:"time"`
	Fields   map[string]string `json:"fields,omitempty"` // copy, error, age, rpo, snapshot, ...
}
