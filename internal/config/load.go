package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/backend/location"
	"github.com/einvault/einvault/internal/checker"
	"github.com/einvault/einvault/internal/forget"
	"github.com/einvault/einvault/internal/schedule"
	"go.yaml.in/yaml/v3"
)

// Problem is one error in the file, at a line.
type Problem struct {
	Line int    `json:"line"`
	Path string `json:"path,omitempty"` // e.g. classes.invoices.retention
	Msg  string `json:"message"`
}

func (p Problem) String() string {
	s := ""
	if p.Line > 0 {
		s = fmt.Sprintf("line %d: ", p.Line)
	}
	if p.Path != "" {
		s += p.Path + ": "
	}
	return s + p.Msg
}

// Errors is every problem found in a file.
type Errors struct {
	File     string
	Problems []Problem
}

func (e *Errors) Error() string {
	if len(e.Problems) == 1 {
		return fmt.Sprintf("config %s: %s", e.File, e.Problems[0])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "config %s: %d errors:", e.File, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

// ErrNotFound matches the error of Load for a file that does not exist.
var ErrNotFound = errors.New("config file not found")

// Load reads and validates the file at path; getenv supplies the
// environment overrides (EINVAULT_REPO, EINVAULT_PASSWORD_FILE,
// EINVAULT_STATE_DIR).
func Load(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s (write one from einvault.example.yaml, or give --config)", ErrNotFound, path)
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path, getenv)
}

// Default classes: the policy the procedures set.
var defaultClasses = map[string]Class{
	"invoices":          {Description: "invoice files: signed XML and PDF renderings", Schedule: "hourly", Retention: "7y", RPO: "2h", RTO: "2h"},
	"transactions":      {Description: "transaction and accounting records", Schedule: "hourly", Retention: "7y", RPO: "2h", RTO: "4h"},
	"personal-data":     {Description: "customer personal data", Schedule: "hourly", Retention: "7y", RPO: "2h", RTO: "8h"},
	"product-catalogue": {Description: "product catalogue", Schedule: "daily", Retention: "1y", RPO: "48h", RTO: "24h"},
	"logs":              {Description: "application and audit logs", Schedule: "hourly", Retention: "90d", RPO: "2h", RTO: "24h"},
	"source-code":       {Description: "application source code", Schedule: "on change", Retention: "1y", RTO: "8h"},
	"configuration":     {Description: "application configuration", Schedule: "on change", Retention: "1y", RTO: "2h"},
	"secrets":           {Description: "keys, certificates and secrets", Schedule: "on change", Retention: "1y", RTO: "2h"},
	"invoice-database":  {Description: "invoice database: daily full backup plus continuous WAL", Schedule: "daily", Retention: "7y", Full: true, ContinuousWAL: true, RPO: "26h", RTO: "2h"},
}

// Default legal minimum retention per jurisdiction and class.
// VN: Law on Accounting 88/2015/QH13 art. 41 and Decree 174/2016 art. 12
// (invoices and accounting records 10 years). CN: Accounting Archives
// Measures 2015 art. 14 (accounting vouchers 30 years).
var defaultLegal = map[string]map[string]string{
	"VN": {"invoices": "10y", "transactions": "10y", "invoice-database": "10y"},
	"CN": {"invoices": "30y", "transactions": "30y", "invoice-database": "30y"},
}

const (
	defaultConcurrency = 2
	defaultRetries     = 3
	defaultBackoff     = "1m"
	defaultMaxBackoff  = "30m"
	defaultRetention   = "15 3 * * *" // forget daily at 03:15
	defaultPrune       = "30 4 * * 0" // prune Sundays at 04:30
	defaultMinFree     = "1GiB"
	// DefaultVerify is the share of new packs read back after a job.
	DefaultVerify = "all"
	// DefaultVerifyBudget caps the bytes a job's verification reads.
	DefaultVerifyBudget = "1GiB"
	// DefaultWALMaxAge is the most the newest archived WAL may lag behind
	// in a continuous_wal class: losing 15 minutes of invoices is the
	// most the procedures allow.
	DefaultWALMaxAge = "15m"
	defaultWALCheck  = "5m"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

type loader struct {
	root  *yaml.Node
	probs []Problem
	warns []Problem
}

// node finds the node at path (string keys, int indices); ok is false
// when the path is not in the file, and n is then the deepest node found.
func (l *loader) node(path ...any) (n *yaml.Node, key *yaml.Node, ok bool) {
	n = l.root
	if n == nil {
		return nil, nil, false
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, p := range path {
		switch p := p.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return n, key, false
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					key, n, found = n.Content[i], n.Content[i+1], true
					break
				}
			}
			if !found {
				return n, key, false
			}
		case int:
			if n.Kind != yaml.SequenceNode || p >= len(n.Content) {
				return n, key, false
			}
			key, n = nil, n.Content[p]
		}
	}
	return n, key, true
}

func (l *loader) has(path ...any) bool { _, _, ok := l.node(path...); return ok }

func (l *loader) line(path ...any) int {
	n, key, ok := l.node(path...)
	if ok && n != nil && (n.Kind == yaml.ScalarNode || n.Kind == yaml.AliasNode) {
		return n.Line
	}
	if key != nil {
		return key.Line
	}
	if n != nil {
		return n.Line
	}
	return 0
}

func pathString(path []any) string {
	var b strings.Builder
	for i, p := range path {
		switch p := p.(type) {
		case string:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		}
	}
	return b.String()
}

func (l *loader) errf(path []any, format string, args ...any) {
	l.probs = append(l.probs, Problem{Line: l.line(path...), Path: pathString(path), Msg: fmt.Sprintf(format, args...)})
}

func at(path ...any) []any { return path }

var (
	lineRE    = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownRE = regexp.MustCompile(`^field (\S+) not found in type config\.(\w+)$`)
)

// Parse validates data (the file's bytes; name is used in messages).
func Parse(data []byte, name string, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	fail := func(probs []Problem) error {
		sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
		return &Errors{File: name, Problems: probs}
	}
	l := &loader{root: new(yaml.Node)}
	if err := yaml.Unmarshal(data, l.root); err != nil {
		return nil, fail([]Problem{yamlProblem(err.Error())})
	}
	if len(l.root.Content) == 0 {
		return nil, fail([]Problem{{Line: 1, Msg: "the file is empty: start from einvault.example.yaml"}})
	}
	if top := l.root.Content[0]; top.Kind != yaml.MappingNode {
		return nil, fail([]Problem{{Line: top.Line, Msg: "the file must be a mapping of settings (repository:, sources:, jobs:, ...)"}})
	}
	c := &Config{Path: name}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, fail([]Problem{yamlProblem(err.Error())})
		}
		// Decoding went on past these; check the rest too.
		for _, e := range te.Errors {
			l.probs = append(l.probs, yamlProblem(e))
		}
	}
	c.Path = name
	l.env(c, getenv)
	l.validate(c)
	if len(l.probs) > 0 {
		return nil, fail(l.probs)
	}
	sort.SliceStable(l.warns, func(i, j int) bool { return l.warns[i].Line < l.warns[j].Line })
	c.Warnings = l.warns
	return c, nil
}

var typeNames = map[string]string{"Config": "the top level", "Repository": "repository", "Copy": "a copy", "Source": "a source",
	"Class": "a class", "Keep": "keep", "Job": "a job", "Window": "a maintenance window", "Daemon": "daemon",
	"ChannelConfig": "a notification channel", "Recipient": "a recipient", "Rule": "a notification rule"}

func yamlProblem(msg string) Problem {
	msg = strings.TrimPrefix(msg, "yaml: ")
	p := Problem{Msg: msg}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Msg = m[2]
	}
	if m := unknownRE.FindStringSubmatch(p.Msg); m != nil {
		where := typeNames[m[2]]
		if where == "" {
			where = m[2]
		}
		p.Msg = fmt.Sprintf("unknown setting %q in %s (check the spelling against einvault.example.yaml)", m[1], where)
	} else if strings.HasPrefix(p.Msg, "field ") && strings.Contains(p.Msg, " not found in type ") {
		f, _, _ := strings.Cut(strings.TrimPrefix(p.Msg, "field "), " ")
		p.Msg = fmt.Sprintf("unknown setting %q (check the spelling against einvault.example.yaml)", f)
	}
	p.Msg = strings.ReplaceAll(p.Msg, "cannot unmarshal", "cannot read")
	return p
}

func (l *loader) env(c *Config, getenv func(string) string) {
	c.Repository.written = c.Repository.Location
	if v := getenv("EINVAULT_REPO"); v != "" {
		c.Repository.Location = v
		c.Overrides = append(c.Overrides, "EINVAULT_REPO")
	}
	if v := getenv("EINVAULT_PASSWORD_FILE"); v != "" {
		c.Repository.PasswordFile = v
		c.Overrides = append(c.Overrides, "EINVAULT_PASSWORD_FILE")
	}
	if v := getenv("EINVAULT_STATE_DIR"); v != "" {
		c.Daemon.StateDir = v
		c.Overrides = append(c.Overrides, "EINVAULT_STATE_DIR")
	}
	if c.Daemon.StateDir == "" {
		c.Daemon.StateDir = DefaultStateDir(getenv)
	}
}

// longer reports whether a keeps longer than b.
func longer(a, b forget.Duration) bool {
	ref := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	return a.Before(ref).Before(b.Before(ref))
}

func parseRetention(s string) (forget.Duration, error) {
	if s == "0" {
		return forget.Duration{}, nil
	}
	d, err := forget.ParseDuration(s)
	if err != nil {
		return d, fmt.Errorf("%v", err)
	}
	return d, nil
}

func (l *loader) validate(c *Config) {
	l.validateRepo(c)
	l.validateSources(c)
	l.validateClasses(c)
	l.validateLegal(c)
	l.validateJobs(c)
	l.validateWindows(c)
	l.validateDaemon(c)
	if err := c.Notifications.Validate(); err != nil {
		for _, e := range strings.Split(err.Error(), "\n") {
			l.errf(at("notifications"), "%s", e)
		}
	}
	for i, r := range c.Notifications.Rules {
		for _, j := range r.Jobs {
			if c.Jobs[j] == nil {
				l.errf(at("notifications", "rules", i, "jobs"), "no job named %q", j)
			}
		}
	}
}

func (l *loader) validateRepo(c *Config) {
	r := &c.Repository
	switch {
	case r.Location == "":
		l.errf(at("repository", "location"), "no repository: set repository.location (or EINVAULT_REPO)")
	case location.Scheme(r.Location) == "local" && !filepath.IsAbs(r.Location):
		l.errf(at("repository", "location"), "%q is not an absolute path: the daemon runs from / (write e.g. /srv/einvault/repo)", r.Location)
	}
	l.validateCredentials(r.written, r.Credentials, "repository")
	seen := map[string]bool{}
	for i, cp := range r.Copies {
		switch {
		case cp == nil:
			l.errf(at("repository", "copies", i), "empty copy: give name and location")
			continue
		case !nameRE.MatchString(cp.Name):
			l.errf(at("repository", "copies", i, "name"), "copy name %q: use letters, digits, '.', '_' or '-'", cp.Name)
		case seen[cp.Name]:
			l.errf(at("repository", "copies", i, "name"), "copy %q is declared twice", cp.Name)
		}
		seen[cp.Name] = true
		switch {
		case cp.Location == "":
			l.errf(at("repository", "copies", i, "location"), "copy %q has no location", cp.Name)
		case cp.Location == r.Location:
			l.errf(at("repository", "copies", i, "location"), "copy %q is the repository itself: a copy must be another place", cp.Name)
		case location.Scheme(cp.Location) == "local" && !filepath.IsAbs(cp.Location):
			l.errf(at("repository", "copies", i, "location"), "%q is not an absolute path", cp.Location)
		}
		l.validateCredentials(cp.Location, cp.Credentials, "repository", "copies", i)
	}
}

var dbSchemes = []string{"pg://", "postgres://", "postgresql://", "mysql://", "mariadb://", "sqlite:"}

func (l *loader) validateSources(c *Config) {
	for _, name := range sortedKeys(c.Sources) {
		s := c.Sources[name]
		p := at("sources", name)
		if !nameRE.MatchString(name) {
			l.errf(p, "source name %q: use letters, digits, '.', '_' or '-'", name)
		}
		if s == nil {
			l.errf(p, "empty source: give paths, database or command")
			c.Sources[name] = &Source{Name: name}
			continue
		}
		s.Name = name
		n := 0
		for _, set := range []bool{len(s.Paths) > 0, s.Database != "", len(s.Command) > 0} {
			if set {
				n++
			}
		}
		if n != 1 {
			l.errf(p, "a source has exactly one of paths, database or command (this one has %d)", n)
			continue
		}
		for i, path := range s.Paths {
			if !filepath.IsAbs(path) {
				l.errf(at("sources", name, "paths", i), "%q is not an absolute path", path)
			}
		}
		for i, pat := range s.Exclude {
			if _, err := filepath.Match(strings.TrimPrefix(pat, "!"), ""); err != nil {
				l.errf(at("sources", name, "exclude", i), "pattern %q: %v", pat, err)
			}
		}
		if s.Database != "" {
			ok := false
			for _, sc := range dbSchemes {
				ok = ok || strings.HasPrefix(s.Database, sc)
			}
			if !ok {
				l.errf(at("sources", name, "database"), "DSN %q: start it with pg://, postgres://, mysql://, mariadb:// or sqlite:", redactDSN(s.Database))
			} else if strings.Contains(s.Database, "://") && strings.Contains(strings.SplitN(strings.SplitN(s.Database, "://", 2)[1], "@", 2)[0], ":") && strings.Contains(s.Database, "@") {
				l.errf(at("sources", name, "database"), "the DSN holds a password: move it to password_file (or ~/.pgpass, ~/.my.cnf)")
			}
		}
		if len(s.Command) > 0 && s.Command[0] == "" {
			l.errf(at("sources", name, "command"), "the command is empty")
		}
		if s.StdinFilename != "" && len(s.Command) == 0 {
			l.errf(at("sources", name, "stdin_filename"), "stdin_filename only applies to a command source")
		}
	}
}

func redactDSN(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if u, _, ok := strings.Cut(rest[:at], ":"); ok {
				return s[:i+3] + u + ":***" + rest[at:]
			}
		}
	}
	return s
}

func (l *loader) validateClasses(c *Config) {
	if c.Classes == nil {
		c.Classes = map[string]*Class{}
	}
	for name, def := range defaultClasses {
		user, ok := c.Classes[name]
		if !ok || user == nil {
			d := def
			c.Classes[name] = &d
			continue
		}
		if user.Description == "" {
			user.Description = def.Description
		}
		if user.Schedule == "" {
			user.Schedule = def.Schedule
		}
		if user.Retention == "" {
			user.Retention = def.Retention
		}
		if !l.has("classes", name, "full") {
			user.Full = def.Full
		}
		if !l.has("classes", name, "continuous_wal") {
			user.ContinuousWAL = def.ContinuousWAL
		}
		if user.RPO == "" {
			user.RPO = def.RPO
		}
		if user.RTO == "" {
			user.RTO = def.RTO
		}
	}
	for _, name := range sortedKeys(c.Classes) {
		cl := c.Classes[name]
		if cl == nil {
			cl = &Class{}
			c.Classes[name] = cl
		}
		cl.Name = name
		p := at("classes", name)
		if !nameRE.MatchString(name) {
			l.errf(p, "class name %q: use letters, digits, '.', '_' or '-'", name)
		}
		if cl.Schedule == "" {
			l.errf(p, "class %q has no schedule (e.g. hourly, daily, \"every 15m\", \"on change\")", name)
		} else if sp, err := schedule.Parse(cl.Schedule); err != nil {
			l.errf(append(p, "schedule"), "%v", err)
		} else {
			cl.Spec = sp
		}
		if cl.Retention == "" {
			l.errf(p, "class %q has no retention (e.g. 7y, 1y, 90d)", name)
		} else if d, err := parseRetention(cl.Retention); err != nil {
			l.errf(append(p, "retention"), "%v", err)
		} else if d.Negative() {
			l.errf(append(p, "retention"), "retention %q is negative", cl.Retention)
		} else {
			cl.Policy = d
		}
		if cl.RPO != "" && cl.RPO != "off" {
			if d, err := time.ParseDuration(cl.RPO); err != nil || d <= 0 {
				l.errf(append(p, "rpo"), "rpo %q: write a duration such as 2h or 26h, or off", cl.RPO)
			} else {
				cl.RPODur = d
			}
		}
		if cl.RTO != "" && cl.RTO != "off" {
			if d, err := time.ParseDuration(cl.RTO); err != nil || d <= 0 {
				l.errf(append(p, "rto"), "rto %q: write a duration such as 30m or 4h, or off", cl.RTO)
			} else {
				cl.RTODur = d
			}
		}
		switch {
		case cl.WALMaxAge != "" && !cl.ContinuousWAL:
			l.errf(append(p, "wal_max_age"), "wal_max_age applies only to a class with continuous_wal: true")
		case cl.ContinuousWAL:
			if cl.WALMaxAge == "" {
				cl.WALMaxAge = DefaultWALMaxAge
			}
			if d, err := time.ParseDuration(cl.WALMaxAge); err != nil || d <= 0 {
				l.errf(append(p, "wal_max_age"), "wal_max_age %q: write a duration such as 15m or 1h", cl.WALMaxAge)
			} else {
				cl.WALMaxAgeDur = d
			}
		}
		k := cl.Keep
		for _, f := range []struct {
			n string
			v int
		}{{"last", k.Last}, {"hourly", k.Hourly}, {"daily", k.Daily}, {"weekly", k.Weekly}, {"monthly", k.Monthly}, {"yearly", k.Yearly}} {
			if f.v < -1 {
				l.errf(append(p, "keep", f.n), "%d: use a count, 0 (off) or -1 (unlimited)", f.v)
			}
		}
	}
}

func (l *loader) validateLegal(c *Config) {
	c.legal = map[string]map[string]forget.Duration{}
	merged := map[string]map[string]string{}
	for j, m := range defaultLegal {
		merged[j] = map[string]string{}
		for k, v := range m {
			merged[j][k] = v
		}
	}
	for j, m := range c.LegalMinimums {
		if merged[j] == nil {
			merged[j] = map[string]string{}
		}
		for k, v := range m {
			merged[j][k] = v
		}
	}
	for _, j := range sortedKeys(merged) {
		c.legal[j] = map[string]forget.Duration{}
		for _, class := range sortedKeys(merged[j]) {
			p := at("legal_minimums", j, class)
			d, err := parseRetention(merged[j][class])
			switch {
			case err != nil:
				l.errf(p, "%v", err)
				continue
			case c.Classes[class] == nil:
				l.errf(p, "no class named %q: a legal minimum for a misspelt class would protect nothing", class)
				continue
			}
			c.legal[j][class] = d
		}
	}
	if len(c.Jurisdictions) == 0 {
		c.Jurisdictions = sortedKeys(merged)
	}
	for i, j := range c.Jurisdictions {
		if merged[j] == nil {
			l.errf(at("jurisdictions", i), "no legal minimums for jurisdiction %q (known: %s); add them under legal_minimums", j, strings.Join(sortedKeys(merged), ", "))
		}
	}
	for _, cl := range c.Classes {
		cl.Legal, cl.LegalBy = forget.Duration{}, nil
		for _, j := range c.Jurisdictions {
			d, ok := c.legal[j][cl.Name]
			if !ok || d.Zero() {
				continue
			}
			switch {
			case cl.Legal.Zero() || longer(d, cl.Legal):
				cl.Legal, cl.LegalBy = d, []string{j}
			case !longer(cl.Legal, d):
				cl.LegalBy = append(cl.LegalBy, j)
			}
		}
	}
}

func (l *loader) validateJobs(c *Config) {
	for _, name := range sortedKeys(c.Jobs) {
		j := c.Jobs[name]
		p := at("jobs", name)
		if !nameRE.MatchString(name) {
			l.errf(p, "job name %q: use letters, digits, '.', '_' or '-'", name)
		}
		if j == nil {
			l.errf(p, "empty job: give class and sources")
			c.Jobs[name] = &Job{Name: name}
			continue
		}
		j.Name = name
		cl := c.Classes[j.Class]
		switch {
		case j.Class == "":
			l.errf(p, "job %q has no class (one of %s)", name, strings.Join(sortedKeys(c.Classes), ", "))
		case cl == nil:
			l.errf(append(p, "class"), "no class named %q (one of %s)", j.Class, strings.Join(sortedKeys(c.Classes), ", "))
		}
		if len(j.Sources) == 0 {
			l.errf(p, "job %q has no sources", name)
		}
		for i, s := range j.Sources {
			if c.Sources[s] == nil {
				l.errf(at("jobs", name, "sources", i), "no source named %q", s)
			}
		}
		sched := j.Schedule
		if sched == "" && cl != nil {
			sched = cl.Schedule
		}
		if sched != "" {
			sp, err := schedule.Parse(sched)
			if err != nil {
				if j.Schedule != "" {
					l.errf(append(p, "schedule"), "%v", err)
				}
			} else {
				j.Spec = sp
			}
		}
		if j.Spec.Kind == schedule.KindChange {
			for _, s := range j.Sources {
				if src := c.Sources[s]; src != nil && src.Type() != "files" {
					l.errf(append(p, "schedule"), "\"on change\" watches files, but source %q is a %s: use a timed schedule", s, src.Type())
				}
			}
		}
		if j.Verify == "" {
			j.Verify = DefaultVerify
		}
		if j.Verify != "off" && j.Verify != "all" {
			if _, err := checker.ParseSubset(j.Verify); err != nil {
				l.errf(append(p, "verify"), "%v (or \"all\", \"off\")", err)
			}
		}
		if j.VerifyBudget == "" {
			j.VerifyBudget = DefaultVerifyBudget
		}
		if n, err := ParseBytes(j.VerifyBudget); err != nil || n <= 0 {
			l.errf(append(p, "verify_budget"), "verify_budget %q: write a size such as 512MiB or 2GiB", j.VerifyBudget)
		} else {
			j.VerifyBytes = n
		}
		if j.Drill != "" {
			sp, err := schedule.Parse(j.Drill)
			switch {
			case err != nil:
				l.errf(append(p, "drill"), "%v", err)
			case !sp.Timed() && sp.Kind != schedule.KindManual:
				l.errf(append(p, "drill"), "a drill runs at times: use a cron expression or an interval, not %q", j.Drill)
			default:
				j.DrillSpec = sp
			}
		}
		if j.Binlog != "" {
			sp, err := schedule.Parse(j.Binlog)
			switch {
			case err != nil:
				l.errf(append(p, "binlog"), "%v", err)
			case !sp.Timed():
				l.errf(append(p, "binlog"), "binary logs are archived at times: use a cron expression or an interval such as \"every 5m\", not %q", j.Binlog)
			default:
				j.BinlogSpec = sp
			}
			mysqlSources := 0
			for _, sn := range j.Sources {
				if s := c.Sources[sn]; s != nil && IsMySQLDSN(s.Database) {
					mysqlSources++
				}
			}
			if mysqlSources == 0 {
				l.errf(append(p, "binlog"), "job %s has no MariaDB/MySQL source (database: mysql://...) whose binary logs could be archived", name)
			}
		}
		if j.Retries != nil && *j.Retries < 0 {
			l.errf(append(p, "retries"), "retries must be 0 or more")
		}
		for i, t := range j.Tags {
			if t == "" || strings.ContainsAny(t, ", ") {
				l.errf(at("jobs", name, "tags", i), "tag %q: no spaces or commas", t)
			}
		}
	}
}

func (l *loader) validateWindows(c *Config) {
	names := map[string]bool{}
	for i, w := range c.Maintenance {
		p := at("maintenance", i)
		if w == nil {
			l.errf(p, "empty window: give name, start and duration")
			c.Maintenance[i] = &Window{}
			continue
		}
		if w.Name == "" {
			w.Name = fmt.Sprintf("window %d", i+1)
		} else if names[w.Name] {
			l.errf(append(p, "name"), "window %q is declared twice", w.Name)
		}
		names[w.Name] = true
		w.Window.Name, w.Window.Jobs = w.Name, w.Jobs
		sp, err := schedule.Parse(w.Start)
		switch {
		case w.Start == "":
			l.errf(p, "window %q has no start (a cron expression such as \"0 1 * * 6\")", w.Name)
		case err != nil:
			l.errf(append(p, "start"), "%v", err)
		case !sp.Timed():
			l.errf(append(p, "start"), "a window starts at times: use a cron expression, not %q", w.Start)
		default:
			w.Window.Start = sp
		}
		d, err := time.ParseDuration(w.Duration)
		switch {
		case w.Duration == "":
			l.errf(p, "window %q has no duration (e.g. 2h)", w.Name)
		case err != nil || d <= 0:
			l.errf(append(p, "duration"), "%q is not a positive duration (write e.g. 2h or 90m)", w.Duration)
		default:
			w.Window.Duration = d
		}
		for k, j := range w.Jobs {
			if c.Jobs[j] == nil {
				l.errf(at("maintenance", i, "jobs", k), "no job named %q", j)
			}
		}
	}
}

func (l *loader) validateDaemon(c *Config) {
	d := &c.Daemon
	p := at("daemon")
	if d.Concurrency < 0 {
		l.errf(append(p, "concurrency"), "concurrency must be 1 or more")
	}
	if d.Concurrency == 0 {
		d.Concurrency = defaultConcurrency
	}
	if d.Retention == "" {
		d.Retention = defaultRetention
	}
	const defaultReportSchedule = "0 7 1 * *" // 07:00 on the 1st: the month before
	if d.Prune == "" {
		d.Prune = defaultPrune
	}
	if sp, err := schedule.Parse(d.Retention); err != nil {
		l.errf(append(p, "retention_schedule"), "%v", err)
	} else {
		d.RetentionSpec = sp
	}
	if sp, err := schedule.Parse(d.Prune); err != nil {
		l.errf(append(p, "prune_schedule"), "%v", err)
	} else {
		d.PruneSpec = sp
	}
	rp := append(p, "report")
	if d.Report.Schedule == "" {
		d.Report.Schedule = defaultReportSchedule
	}
	if sp, err := schedule.Parse(d.Report.Schedule); err != nil {
		l.errf(append(rp, "schedule"), "%v", err)
	} else {
		d.Report.Spec = sp
	}
	switch d.Report.Lang {
	case "", "en", "vi", "zh":
	default:
		l.errf(append(rp, "lang"), "language %q: use en, vi or zh", d.Report.Lang)
	}
	for i, r := range d.Report.Recipients {
		found := false
		for _, nr := range c.Notifications.Recipients {
			found = found || nr.Name == r
		}
		if !found {
			l.errf(append(rp, "recipients", i), "no recipient named %q in notifications.recipients", r)
		}
	}
	d.RetryCount = defaultRetries
	if d.Retries != nil {
		if *d.Retries < 0 {
			l.errf(append(p, "retries"), "retries must be 0 or more")
		}
		d.RetryCount = *d.Retries
	}
	for _, f := range []struct {
		key string
		v   *string
		def string
		out *time.Duration
	}{{"backoff", &d.Backoff, defaultBackoff, &d.BackoffDur}, {"max_backoff", &d.MaxBackoff, defaultMaxBackoff, &d.MaxBackoffDur}} {
		if *f.v == "" {
			*f.v = f.def
		}
		v, err := time.ParseDuration(*f.v)
		if err != nil || v < 0 {
			l.errf(append(p, f.key), "%q is not a duration (write e.g. 1m or 30s)", *f.v)
		}
		*f.out = v
	}
	if d.WALCheck == "" {
		d.WALCheck = defaultWALCheck
	}
	if d.WALCheck != "off" {
		if v, err := time.ParseDuration(d.WALCheck); err != nil || v < time.Second {
			l.errf(append(p, "wal_check_interval"), "%q is not a duration of at least 1s (write e.g. 5m, or off)", d.WALCheck)
		} else {
			d.WALCheckDur = v
		}
	}
	if d.MinFreeSpace == "" {
		d.MinFreeSpace = defaultMinFree
	}
	n, err := ParseBytes(d.MinFreeSpace)
	if err != nil {
		l.errf(append(p, "min_free_space"), "%v", err)
	}
	d.MinFreeBytes = n
	if d.StateDir != "" && !filepath.IsAbs(d.StateDir) {
		l.errf(append(p, "state_dir"), "%q is not an absolute path", d.StateDir)
	}
}

// ParseBytes reads a size such as "512MiB", "2G", "1048576".
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TIB", 1 << 40}, {"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n < 0 || n > 1e18/float64(mult) {
		return 0, fmt.Errorf("invalid size %q: use a number with an optional unit such as 512MiB or 2G", s)
	}
	return int64(n * float64(mult)), nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
