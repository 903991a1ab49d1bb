package config

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/repo"
)

func noEnv(string) string { return "" }

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		line       int
		msg        string
	}{
		{"empty", "", 1, "empty"},
		{"not a mapping", "- a\n- b\n", 1, "mapping"},
		{"syntax", "repository:\n  location: [\n", 2, "did not find"},
		{"no repository", "jobs: {}\n", 1, "no repository"},
		{"unknown key", "repository:\n  location: /r\n  colour: red\n", 3, `unknown setting "colour"`},
		{"bad retention", "repository: {location: /r}\nclasses:\n  logs:\n    retention: 3 months\n", 4, "invalid duration"},
		{"bad schedule", "repository: {location: /r}\nclasses:\n  logs:\n    schedule: \"61 * * * *\"\n", 4, "schedule"},
		{"job class", "repository: {location: /r}\nsources: {a: {paths: [/a]}}\njobs:\n  j:\n    class: nope\n    sources: [a]\n", 5, `no class named "nope"`},
		{"job source", "repository: {location: /r}\njobs:\n  j:\n    class: logs\n    sources: [a]\n", 5, `no source named "a"`},
		{"type", "repository: {location: /r}\ndaemon:\n  concurrency: lots\n", 3, "cannot read"},
		{"legal class", "repository: {location: /r}\nlegal_minimums:\n  VN: {invoice: 10y}\n", 3, "misspelt"},
		{"jurisdiction", "repository: {location: /r}\njurisdictions: [FR]\n", 2, `"FR"`},
		{"window", "repository: {location: /r}\nmaintenance:\n  - name: w\n    start: \"0 1 * * *\"\n    duration: 0s\n", 5, "positive duration"},
		{"rpo", "repository: {location: /r}\nclasses:\n  invoices:\n    rpo: soon\n", 4, "rpo \"soon\""},
		{"rto", "repository: {location: /r}\nclasses:\n  invoices:\n    rto: -1h\n", 4, "rto \"-1h\""},
		{"wal_max_age without wal", "repository: {location: /r}\nclasses:\n  invoices:\n    wal_max_age: 5m\n", 4, "continuous_wal"},
		{"wal_max_age", "repository: {location: /r}\nclasses:\n  invoice-database:\n    wal_max_age: often\n", 4, "wal_max_age \"often\""},
		{"wal check", "repository: {location: /r}\ndaemon:\n  wal_check_interval: 0s\n", 3, "at least 1s"},
		{"drill schedule", "repository: {location: /r}\nsources: {a: {paths: [/a]}}\njobs:\n  j:\n    class: logs\n    sources: [a]\n    drill: \"61 * * * *\"\n", 7, "61"},
		{"binlog without a MariaDB source", "repository: {location: /r}\nsources: {a: {paths: [/a]}}\njobs:\n  j:\n    class: logs\n    sources: [a]\n    binlog: every 5m\n", 7, "no MariaDB/MySQL source"},
		{"binlog on change", "repository: {location: /r}\nsources: {a: {database: \"mysql://u@h/db\"}}\njobs:\n  j:\n    class: logs\n    sources: [a]\n    binlog: on change\n", 7, "archived at times"},
		{"drill on change", "repository: {location: /r}\nsources: {a: {paths: [/a]}}\njobs:\n  j:\n    class: logs\n    sources: [a]\n    drill: on change\n", 7, "runs at times"},
		{"verify", "repository: {location: /r}\nsources: {a: {paths: [/a]}}\njobs:\n  j:\n    class: logs\n    sources: [a]\n    verify: most\n", 7, "invalid subset"},
		{"verify budget", "repository: {location: /r}\nsources: {a: {paths: [/a]}}\njobs:\n  j:\n    class: logs\n    sources: [a]\n    verify_budget: lots\n", 7, "verify_budget"},
		{"notify", "repository: {location: /r}\nnotifications:\n  channels:\n    - {name: x, type: pigeon}\n", 2, "unknown type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), "t.yaml", noEnv)
			var e *Errors
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want *Errors", err)
			}
			for _, p := range e.Problems {
				if p.Line == tc.line && strings.Contains(p.Msg, tc.msg) {
					return
				}
			}
			t.Errorf("no problem at line %d containing %q in:\n%v", tc.line, tc.msg, err)
		})
	}
}

func TestEffectiveRetentionAndLegalHold(t *testing.T) {
	for _, tc := range []struct {
		name, yaml     string
		class, eff, by string
	}{
		{"all jurisdictions by default", "repository: {location: /r}\n", "invoices", "30y", "CN"},
		{"VN", "repository: {location: /r}\njurisdictions: [VN]\n", "invoices", "10y", "VN"},
		{"policy longer", "repository: {location: /r}\njurisdictions: [VN]\nclasses: {invoices: {retention: 12y}}\n", "invoices", "12y", "VN"},
		{"no minimum", "repository: {location: /r}\n", "logs", "90d", ""},
		{"edited minimum", "repository: {location: /r}\njurisdictions: [VN]\nlegal_minimums: {VN: {logs: 1y}}\n", "logs", "1y", "VN"},
		{"removed minimum", "repository: {location: /r}\njurisdictions: [VN]\nlegal_minimums: {VN: {invoices: \"0\"}}\n", "invoices", "7y", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "t.yaml", noEnv)
			if err != nil {
				t.Fatal(err)
			}
			cl := c.Classes[tc.class]
			if got := cl.Effective().String(); got != tc.eff {
				t.Errorf("effective %s, want %s", got, tc.eff)
			}
			if got := strings.Join(cl.LegalBy, ","); got != tc.by {
				t.Errorf("legal by %q, want %q", got, tc.by)
			}
		})
	}
	c, err := Parse([]byte("repository: {location: /r}\njurisdictions: [VN]\n"), "t.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		tags []string
		age  time.Duration
		held bool
	}{
		{[]string{"class=invoices"}, 24 * time.Hour, true},
		{[]string{"x", "class=invoices"}, 9 * 365 * 24 * time.Hour, true},
		{[]string{"class=invoices"}, 11 * 366 * 24 * time.Hour, false},
		{[]string{"class=logs"}, time.Hour, false},
		{nil, time.Hour, false},
	} {
		s := &repo.Snapshot{Time: now.Add(-tc.age), Tags: tc.tags}
		if held, why := c.LegalHold(s, now); held != tc.held {
			t.Errorf("%v aged %s: held %v (%s), want %v", tc.tags, tc.age, held, why, tc.held)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	env := map[string]string{"EINVAULT_REPO": "/env/repo", "EINVAULT_PASSWORD_FILE": "/env/pw", "EINVAULT_STATE_DIR": "/env/state"}
	c, err := Parse([]byte("repository: {location: relative}\n"), "t.yaml", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Repository.Location != "/env/repo" || c.Repository.PasswordFile != "/env/pw" || c.Daemon.StateDir != "/env/state" || len(c.Overrides) != 3 {
		t.Errorf("overrides not applied: %+v %v", c.Repository, c.Overrides)
	}
}

func TestResolve(t *testing.T) {
	env := map[string]string{}
	get := func(k string) string { return env[k] }
	if p, ex := Resolve("/x.yaml", get); p != "/x.yaml" || !ex {
		t.Errorf("flag: %s %v", p, ex)
	}
	env["EINVAULT_CONFIG"] = "/e.yaml"
	if p, ex := Resolve("", get); p != "/e.yaml" || !ex {
		t.Errorf("env: %s %v", p, ex)
	}
	delete(env, "EINVAULT_CONFIG")
	env["XDG_CONFIG_HOME"] = "/xdg"
	want := "/xdg/einvault/einvault.yaml"
	if os.Geteuid() == 0 {
		want = "/etc/einvault/einvault.yaml"
	}
	if p, ex := Resolve("", get); p != want || ex {
		t.Errorf("default: %s %v, want %s", p, ex, want)
	}
}

// FuzzParse: the decoder never panics, and every error it returns is a
// list of problems (with line numbers where the file has them).
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../../einvault.example.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("repository: {location: /r}\njobs: {j: {class: logs, sources: [a]}}\nsources: {a: {paths: [/a]}}\n"))
	f.Add([]byte("repository:\n  location: [\n"))
	f.Add([]byte("classes: {x: {schedule: 'on change 5s', retention: 1y2m}}\n"))
	f.Add([]byte("maintenance: [{start: '0 1 * * *', duration: 1h}]\n&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml", noEnv)
		if err != nil {
			var e *Errors
			if !errors.As(err, &e) || len(e.Problems) == 0 {
				t.Fatalf("error is not a problem list: %v", err)
			}
			return
		}
		for _, cl := range c.Classes {
			_ = cl.Effective()
		}
	})
}

func TestReportSettings(t *testing.T) {
	good := "repository: {location: /r}\nnotifications:\n  channels:\n    - {name: m, type: email, smtp_host: h, from: a@b}\n  recipients:\n    - {name: boss, channel: m, address: b@c}\ndaemon:\n  report:\n    recipients: [boss]\n    lang: vi\n"
	c, err := Parse([]byte(good), "t.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Daemon.Report.Schedule != "0 7 1 * *" || c.Daemon.Report.Spec.Describe() == "" {
		t.Fatalf("default report schedule: %+v", c.Daemon.Report)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"repository: {location: /r}\ndaemon:\n  report:\n    recipients: [ghost]\n", `no recipient named "ghost"`},
		{"repository: {location: /r}\ndaemon:\n  report:\n    lang: fr\n", `language "fr"`},
		{"repository: {location: /r}\ndaemon:\n  report:\n    schedule: sometimes\n", "schedule"},
	} {
		if _, err := Parse([]byte(tc.yaml), "t.yaml", func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestDrillAndWALDefaults(t *testing.T) {
	c, err := Parse([]byte("repository: {location: /r}\nsources: {a: {paths: [/a]}}\njobs:\n  j:\n    class: invoices\n    sources: [a]\n    drill: \"0 3 * * 0\"\n"), "t.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Classes["invoices"].RTODur; got != 2*time.Hour {
		t.Errorf("invoices rto = %v, want 2h", got)
	}
	db := c.Classes["invoice-database"]
	if db.WALMaxAgeDur != 15*time.Minute || c.Classes["invoices"].WALMaxAgeDur != 0 {
		t.Errorf("wal_max_age: invoice-database %v, invoices %v", db.WALMaxAgeDur, c.Classes["invoices"].WALMaxAgeDur)
	}
	j := c.Jobs["j"]
	if j.Verify != "all" || j.VerifyBytes != 1<<30 || !j.DrillSpec.Timed() {
		t.Errorf("job defaults: verify %q budget %d drill %+v", j.Verify, j.VerifyBytes, j.DrillSpec)
	}
	if c.Daemon.WALCheckDur != 5*time.Minute {
		t.Errorf("wal check interval %v", c.Daemon.WALCheckDur)
	}
}
