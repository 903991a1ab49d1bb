package s3

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ErrUsage is matched by errors in the repository string itself.
var ErrUsage = errors.New("bad S3 location")

// Lock modes for Config.LockMode.
const (
	ModeGovernance = "GOVERNANCE"
	ModeCompliance = "COMPLIANCE"
)

// DefaultPartSize is the size of the parts of a multipart upload.
const DefaultPartSize = 16 << 20

// DefaultMultipartThreshold is the largest file sent in a single PUT.
// Packs (16 MiB ±25%) and everything smaller go in one request: a
// multipart upload costs three more round trips (initiate, parts,
// complete) and makes the server assemble the parts. Larger files are
// uploaded in parts of the part size, several in parallel.
const DefaultMultipartThreshold = 64 << 20

const minPartSize = 5 << 20

// Config is a parsed S3 location plus what the environment supplies.
type Config struct {
	Endpoint string // host[:port]
	Secure   bool   // https
	Bucket   string
	Prefix   string // "" or a path without leading or trailing slash

	Region      string        // ?region=, else AWS_DEFAULT_REGION
	ObjectLock  time.Duration // ?object-lock=: retention period, 0 = none
	LockMode    string        // ?lock-mode=: ModeGovernance (default) or ModeCompliance
	Quota       int64         // ?quota=: bytes the bucket may hold, 0 = unknown
	Connections int           // ?connections=: concurrent operations, 0 = default
	PartSize    int64         // ?part-size=: multipart part size
	// MultipartThreshold (?multipart-threshold=): larger files are
	// uploaded in parts; 0 means DefaultMultipartThreshold.
	MultipartThreshold int64

	AccessKey    string
	SecretKey    string
	SessionToken string
	CAFile       string // PEM bundle trusted besides the system roots

	// Now returns the current time (retention dates, clock skew); nil
	// means time.Now.
	Now func() time.Time
}

// ParseLocation parses "s3:http[s]://host[:port]/bucket[/prefix][?options]".
// The options are non-secret settings; credentials come from the
// environment (see ApplyEnv).
func ParseLocation(loc string) (Config, error) {
	var c Config
	rest, ok := strings.CutPrefix(loc, "s3:")
	if !ok {
		return c, fmt.Errorf("%w: %q does not start with \"s3:\"", ErrUsage, loc)
	}
	u, err := url.Parse(rest)
	if err != nil {
		return c, fmt.Errorf("%w: %q: %v (expected s3:https://host[:port]/bucket[/prefix])", ErrUsage, loc, err)
	}
	switch u.Scheme {
	case "https":
		c.Secure = true
	case "http":
	default:
		return c, fmt.Errorf("%w: %q: scheme must be http or https (expected s3:https://host[:port]/bucket[/prefix])", ErrUsage, loc)
	}
	if u.User != nil {
		return c, fmt.Errorf("%w: %q: do not put credentials in the location; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", ErrUsage, redact(u))
	}
	if u.Host == "" || u.Hostname() == "" {
		return c, fmt.Errorf("%w: %q: no host (expected s3:https://host[:port]/bucket[/prefix])", ErrUsage, loc)
	}
	if u.Fragment != "" || u.RawFragment != "" {
		return c, fmt.Errorf("%w: %q: unexpected fragment", ErrUsage, loc)
	}
	c.Endpoint = u.Host
	p := strings.Trim(u.Path, "/")
	bucket, prefix, _ := strings.Cut(p, "/")
	if bucket == "" {
		return c, fmt.Errorf("%w: %q: no bucket (expected s3:https://host[:port]/bucket[/prefix])", ErrUsage, loc)
	}
	if err := validBucket(bucket); err != nil {
		return c, fmt.Errorf("%w: %q: %v", ErrUsage, loc, err)
	}
	c.Bucket = bucket
	if strings.ContainsFunc(prefix, unicode.IsControl) {
		return c, fmt.Errorf("%w: %q: the prefix has a control character (%%00-%%1f, %%7f); object keys cannot hold one", ErrUsage, loc)
	}
	for _, seg := range strings.Split(prefix, "/") {
		if prefix != "" && (seg == "" || seg == "." || seg == "..") {
			return c, fmt.Errorf("%w: %q: bad prefix %q", ErrUsage, loc, prefix)
		}
	}
	c.Prefix = prefix
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return c, fmt.Errorf("%w: %q: options: %v", ErrUsage, loc, err)
	}
	c.LockMode = ModeGovernance
	for k, vs := range q {
		if len(vs) != 1 {
			return c, fmt.Errorf("%w: option %q given %d times", ErrUsage, k, len(vs))
		}
		v := vs[0]
		switch k {
		case "region":
			c.Region = v
		case "object-lock":
			d, err := ParseRetention(v)
			if err != nil {
				return c, fmt.Errorf("%w: object-lock=%q: %v", ErrUsage, v, err)
			}
			c.ObjectLock = d
		case "lock-mode":
			switch strings.ToLower(v) {
			case "governance":
				c.LockMode = ModeGovernance
			case "compliance":
				c.LockMode = ModeCompliance
			default:
				return c, fmt.Errorf("%w: lock-mode=%q: use governance or compliance", ErrUsage, v)
			}
		case "quota":
			n, err := ParseSize(v)
			if err != nil || n <= 0 {
				return c, fmt.Errorf("%w: quota=%q: want a size such as 500GiB or 2TB", ErrUsage, v)
			}
			c.Quota = n
		case "connections":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1024 {
				return c, fmt.Errorf("%w: connections=%q: want a number from 1 to 1024", ErrUsage, v)
			}
			c.Connections = n
		case "part-size":
			n, err := ParseSize(v)
			if err != nil || n < minPartSize || n > 5<<30 {
				return c, fmt.Errorf("%w: part-size=%q: want a size from 5MiB to 5GiB", ErrUsage, v)
			}
			c.PartSize = n
		case "multipart-threshold":
			n, err := ParseSize(v)
			if err != nil || n < minPartSize || n > 5<<30 {
				return c, fmt.Errorf("%w: multipart-threshold=%q: want a size from 5MiB to 5GiB", ErrUsage, v)
			}
			c.MultipartThreshold = n
		default:
			return c, fmt.Errorf("%w: unknown option %q (known: region, object-lock, lock-mode, quota, connections, part-size, multipart-threshold)", ErrUsage, k)
		}
	}
	if _, ok := q["lock-mode"]; ok && c.ObjectLock == 0 {
		return c, fmt.Errorf("%w: lock-mode needs object-lock=PERIOD (for example object-lock=90d)", ErrUsage)
	}
	return c, nil
}

func redact(u *url.URL) string {
	v := *u
	v.User = nil
	return "s3:" + v.String()
}

// validBucket applies the S3 bucket naming rules that matter for a
// path-style URL.
func validBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters long", b)
	}
	for i, r := range b {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || (r == '-' || r == '.') && i > 0 && i < len(b)-1
		if !ok {
			return fmt.Errorf("bucket name %q: only lower-case letters, digits, '-' and '.' (not at the ends) are allowed", b)
		}
	}
	return nil
}

// ApplyEnv fills credentials, region and CA file from the environment:
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
// AWS_DEFAULT_REGION (when ?region= is not given), and AWS_CA_BUNDLE or
// EINVAULT_S3_CA_FILE.
func (c *Config) ApplyEnv(getenv func(string) string) {
	if getenv == nil {
		return
	}
	c.AccessKey = getenv("AWS_ACCESS_KEY_ID")
	c.SecretKey = getenv("AWS_SECRET_ACCESS_KEY")
	c.SessionToken = getenv("AWS_SESSION_TOKEN")
	if c.Region == "" {
		c.Region = getenv("AWS_DEFAULT_REGION")
	}
	if f := getenv("EINVAULT_S3_CA_FILE"); f != "" {
		c.CAFile = f
	} else if f := getenv("AWS_CA_BUNDLE"); f != "" {
		c.CAFile = f
	}
}

// String is the location without secrets.
func (c Config) String() string {
	scheme := "http"
	if c.Secure {
		scheme = "https"
	}
	s := "s3:" + scheme + "://" + c.Endpoint + "/" + c.Bucket
	if c.Prefix != "" {
		s += "/" + c.Prefix
	}
	return s
}

// ParseRetention parses a retention period: a whole number of days
// ("90d"), weeks ("2w") or years ("1y" = 365 days), or a Go duration of
// at least one second ("36h").
func ParseRetention(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty period")
	}
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}
	if u, ok := unit[s[len(s)-1]]; ok {
		n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
		if err != nil || n <= 0 || n > 100*365*int64(24*time.Hour/u) {
			return 0, errors.New("want a positive period such as 90d, 12w, 7y or 36h (at most 100 years)")
		}
		return time.Duration(n) * u, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		return 0, errors.New("want a positive period such as 90d, 12w, 7y or 36h")
	}
	return d, nil
}

// ParseSize parses a byte count with an optional unit: B, K/KB (1000),
// KiB (1024), and so on up to PiB.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" {
		return 0, fmt.Errorf("size %q: no number", s)
	}
	mult := map[string]float64{"": 1, "b": 1,
		"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12, "p": 1e15, "pb": 1e15,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50}
	m, ok := mult[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q", s, unit)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %v", s, err)
	}
	v := f * m
	if v >= 1<<62 || v < 0 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return int64(v), nil
}
