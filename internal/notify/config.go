package notify

import (
	"errors"
	"fmt"
	"time"
)

// Config is the notifications section of einvault.yaml.
type Config struct {
	Channels   []ChannelConfig `yaml:"channels" json:"channels"`
	Recipients []Recipient     `yaml:"recipients" json:"recipients"`
	Rules      []Rule          `yaml:"rules" json:"rules"`
	// Escalation is when each level is notified, counted from the alert's
	// creation, while it is not acknowledged. Default 0, 15m, 30m, 60m.
	Escalation []Duration `yaml:"escalation" json:"escalation"`
}

// Duration is a time.Duration written as "15m" in YAML and JSON.
type Duration time.Duration

// UnmarshalText parses "15m", "1h30m" or "0".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w (write e.g. 15m or 1h)", b, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as "15m0s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// DefaultEscalation is the schedule the procedures set: 0 / 15 / 30 / 60 minutes.
var defaultEscalation = []time.Duration{0, 15 * time.Minute, 30 * time.Minute, 60 * time.Minute}

// EscalationSchedule returns the configured schedule or the default.
func (c *Config) EscalationSchedule() []time.Duration {
	if len(c.Escalation) == 0 {
		return append([]time.Duration(nil), defaultEscalation...)
	}
	out := make([]time.Duration, len(c.Escalation))
	for i, d := range c.Escalation {
		out[i] = time.Duration(d)
	}
	return out
}

// ChannelConfig configures one way of sending. Secrets are never written
// in the file itself: the *_env fields name environment variables and
// *_file fields name files that hold them.
type ChannelConfig struct {
	Name string `yaml:"name" json:"name"`
	Type string `yaml:"type" json:"type"` // email, webhook, slack, teams, telegram, dingtalk, wecom, feishu, sms

	// email
	SMTPHost     string `yaml:"smtp_host,omitempty" json:"smtp_host,omitempty"`
	SMTPPort     int    `yaml:"smtp_port,omitempty" json:"smtp_port,omitempty"`
	TLS          string `yaml:"tls,omitempty" json:"tls,omitempty"` // starttls (default), tls, none
	CAFile       string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	Username     string `yaml:"username,omitempty" json:"username,omitempty"`
	PasswordEnv  string `yaml:"password_env,omitempty" json:"password_env,omitempty"`
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	From         string `yaml:"from,omitempty" json:"from,omitempty"`

	// webhook, slack, teams, dingtalk, wecom, feishu: the incoming-webhook URL;
	// sms: the gateway URL template; telegram: the API base (default https://api.telegram.org)
	URL    string `yaml:"url,omitempty" json:"url,omitempty"`
	URLEnv string `yaml:"url_env,omitempty" json:"url_env,omitempty"` // URL with its token kept out of the file
	// DingTalk and Feishu signing secret ("sign" security setting).
	SecretEnv string `yaml:"secret_env,omitempty" json:"secret_env,omitempty"`
	// Telegram bot token.
	TokenEnv string `yaml:"token_env,omitempty" json:"token_env,omitempty"`

	// sms: HTTP method (default POST), body template and headers; the
	// templates see {{.To}}, {{.Text}}, {{.Subject}} (text/template; use
	// {{urlquery .Text}} in URLs, {{json .Text}} in JSON bodies).
	Method  string            `yaml:"method,omitempty" json:"method,omitempty"`
	Body    string            `yaml:"body,omitempty" json:"body,omitempty"`
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
}

// Recipient is a person or a chat room that receives alerts on one channel.
type Recipient struct {
	Name    string `yaml:"name" json:"name"`
	Channel string `yaml:"channel" json:"channel"`
	// Address: e-mail address, Telegram chat ID, phone number for SMS;
	// empty for webhook channels (the URL is the address).
	Address string `yaml:"address,omitempty" json:"address,omitempty"`
	Lang    string `yaml:"lang,omitempty" json:"lang,omitempty"` // en (default), vi, zh
}

// Rule sends matching events to recipients, level by level.
type Rule struct {
	Name        string   `yaml:"name" json:"name"`
	Kinds       []Kind   `yaml:"kinds" json:"kinds"`                                   // empty: every kind
	MinSeverity Severity `yaml:"min_severity,omitempty" json:"min_severity,omitempty"` // default info
	Jobs        []string `yaml:"jobs,omitempty" json:"jobs,omitempty"`                 // empty: every job
	// Levels lists the recipients of each escalation level; level 0 is
	// told at once, level i after the schedule's i-th delay while nobody
	// has acknowledged. Success digests are never escalated.
	Levels [][]string `yaml:"levels" json:"levels"`
}

var channelTypes = map[string]bool{"email": true, "webhook": true, "slack": true, "teams": true, "telegram": true,
	"dingtalk": true, "wecom": true, "feishu": true, "sms": true}

// Validate checks the section's meaning without network access.
func (c *Config) Validate() error {
	var errs []error
	chans := map[string]ChannelConfig{}
	for i, ch := range c.Channels {
		switch {
		case ch.Name == "":
			errs = append(errs, fmt.Errorf("channel %d: name is empty", i+1))
		case !channelTypes[ch.Type]:
			errs = append(errs, fmt.Errorf("channel %s: unknown type %q (use email, webhook, slack, teams, telegram, dingtalk, wecom, feishu or sms)", ch.Name, ch.Type))
		case chans[ch.Name].Name != "":
			errs = append(errs, fmt.Errorf("channel %s: defined twice", ch.Name))
		}
		switch ch.Type {
		case "email":
			if ch.SMTPHost == "" || ch.From == "" {
				errs = append(errs, fmt.Errorf("channel %s: email needs smtp_host and from", ch.Name))
			}
			if ch.TLS != "" && ch.TLS != "starttls" && ch.TLS != "tls" && ch.TLS != "none" {
				errs = append(errs, fmt.Errorf("channel %s: tls %q: use starttls, tls or none", ch.Name, ch.TLS))
			}
		case "webhook", "slack", "teams", "dingtalk", "wecom", "feishu", "sms":
			if ch.URL == "" && ch.URLEnv == "" {
				errs = append(errs, fmt.Errorf("channel %s: %s needs url or url_env", ch.Name, ch.Type))
			}
		case "telegram":
			if ch.TokenEnv == "" {
				errs = append(errs, fmt.Errorf("channel %s: telegram needs token_env (the variable holding the bot token)", ch.Name))
			}
		}
		chans[ch.Name] = ch
	}
	recips := map[string]bool{}
	for i, r := range c.Recipients {
		ch, ok := chans[r.Channel]
		switch {
		case r.Name == "":
			errs = append(errs, fmt.Errorf("recipient %d: name is empty", i+1))
		case !ok:
			errs = append(errs, fmt.Errorf("recipient %s: no channel named %q", r.Name, r.Channel))
		case (ch.Type == "email" || ch.Type == "telegram" || ch.Type == "sms") && r.Address == "":
			errs = append(errs, fmt.Errorf("recipient %s: a %s recipient needs an address", r.Name, ch.Type))
		}
		if r.Lang != "" && !ValidLanguage(r.Lang) {
			errs = append(errs, fmt.Errorf("recipient %s: language %q: use en, vi or zh", r.Name, r.Lang))
		}
		recips[r.Name] = true
	}
	for i, ru := range c.Rules {
		name := ru.Name
		if name == "" {
			name = fmt.Sprint(i + 1)
		}
		if len(ru.Levels) == 0 {
			errs = append(errs, fmt.Errorf("rule %s: no recipients (levels is empty)", name))
		}
		if len(ru.Levels) > len(c.EscalationSchedule()) {
			errs = append(errs, fmt.Errorf("rule %s: %d levels but the escalation schedule has %d steps", name, len(ru.Levels), len(c.EscalationSchedule())))
		}
		for _, lv := range ru.Levels {
			for _, r := range lv {
				if !recips[r] {
					errs = append(errs, fmt.Errorf("rule %s: no recipient named %q", name, r))
				}
			}
		}
		for _, k := range ru.Kinds {
			switch k {
			case KindFailure, KindDegraded, KindStale, KindSuccess, KindRecovered, KindHost:
			default:
				errs = append(errs, fmt.Errorf("rule %s: unknown kind %q", name, k))
			}
		}
	}
	sched := c.EscalationSchedule()
	for i := 1; i < len(sched); i++ {
		if sched[i] <= sched[i-1] {
			errs = append(errs, fmt.Errorf("escalation: step %d (%s) is not after step %d (%s)", i+1, sched[i], i, sched[i-1]))
		}
	}
	return errors.Join(errs...)
}

func (r Rule) matches(ev Event) bool {
	if len(r.Kinds) > 0 {
		ok := false
		for _, k := range r.Kinds {
			ok = ok || k == ev.Kind
		}
		if !ok {
			return false
		}
	}
	if r.MinSeverity != "" && ev.Severity.Rank() < r.MinSeverity.Rank() {
		return false
	}
	if len(r.Jobs) > 0 {
		ok := false
		for _, j := range r.Jobs {
			ok = ok || j == ev.Job
		}
		if !ok {
			return false
		}
	}
	return true
}
