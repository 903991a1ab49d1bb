package sftp

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// ErrBadLocation is matched by errors of ParseLocation.
var ErrBadLocation = errors.New("bad sftp location")

// ParseLocation parses "sftp:[user@]host[:port]:PATH" or
// "sftp://[user@]host[:port]/PATH", optionally followed by "?options":
//
//	key=FILE                  private key file (else agent and ~/.ssh/id_*)
//	known-hosts=FILE          known_hosts file (else ~/.ssh/known_hosts)
//	accept-new-host-key=1     add an unknown host key to known_hosts
//
// In the first form PATH is taken as written ("/srv/backup" is absolute,
// "backup" is relative to the login directory); in the URL form the path
// after the host is absolute. IPv6 hosts are written in brackets. The
// port defaults to 22; a missing user is left empty (the caller picks the
// current user).
func ParseLocation(loc string) (Config, error) {
	var cfg Config
	rest, ok := strings.CutPrefix(loc, "sftp:")
	if !ok {
		return cfg, fmt.Errorf("%w %q: must start with \"sftp:\"", ErrBadLocation, loc)
	}
	rest, query, _ := strings.Cut(rest, "?")
	if r, isURL := strings.CutPrefix(rest, "//"); isURL {
		u, err := url.Parse("sftp://" + r)
		if err != nil {
			return cfg, fmt.Errorf("%w %q: %v", ErrBadLocation, loc, err)
		}
		cfg.User = u.User.Username()
		if _, has := u.User.Password(); has {
			return cfg, fmt.Errorf("%w %q: passwords in the location are not supported; use an SSH key", ErrBadLocation, loc)
		}
		cfg.Host = u.Hostname()
		if p := u.Port(); p != "" {
			if cfg.Port, err = parsePort(p); err != nil {
				return cfg, fmt.Errorf("%w %q: %v", ErrBadLocation, loc, err)
			}
		}
		cfg.Path = u.Path
	} else {
		// user@host ends at the first colon outside brackets.
		end, inBracket := -1, false
		for i, c := range rest {
			switch {
			case c == '[':
				inBracket = true
			case c == ']':
				inBracket = false
			case c == ':' && !inBracket:
				end = i
			}
			if end >= 0 {
				break
			}
		}
		if end < 0 {
			return cfg, fmt.Errorf("%w %q: want sftp:user@host[:port]:/path", ErrBadLocation, loc)
		}
		host := rest[:end]
		rest = rest[end+1:]
		if i := strings.LastIndex(host, "@"); i >= 0 {
			cfg.User, host = host[:i], host[i+1:]
		}
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		}
		if strings.ContainsAny(host, "[]") {
			return cfg, fmt.Errorf("%w %q: bad IPv6 address; write [addr]", ErrBadLocation, loc)
		}
		// An optional port: digits followed by another colon.
		if i := strings.Index(rest, ":"); i > 0 && isDigits(rest[:i]) {
			p, err := parsePort(rest[:i])
			if err != nil {
				return cfg, fmt.Errorf("%w %q: %v", ErrBadLocation, loc, err)
			}
			cfg.Port, rest = p, rest[i+1:]
		}
		cfg.Host, cfg.Path = host, rest
	}
	if cfg.Host == "" {
		return cfg, fmt.Errorf("%w %q: no host", ErrBadLocation, loc)
	}
	if !validHost(cfg.Host) {
		return cfg, fmt.Errorf("%w %q: bad host %q", ErrBadLocation, loc, cfg.Host)
	}
	if cfg.Path == "" {
		return cfg, fmt.Errorf("%w %q: no path; write sftp:user@host:/path/to/repo", ErrBadLocation, loc)
	}
	if strings.ContainsRune(cfg.Path, 0) || strings.ContainsRune(cfg.User, 0) {
		return cfg, fmt.Errorf("%w %q: NUL character", ErrBadLocation, loc)
	}
	if query != "" {
		vals, err := url.ParseQuery(query)
		if err != nil {
			return cfg, fmt.Errorf("%w %q: options: %v", ErrBadLocation, loc, err)
		}
		for k, v := range vals {
			val := v[len(v)-1]
			switch k {
			case "key":
				cfg.KeyFile = val
			case "known-hosts":
				cfg.KnownHostsFile = val
			case "accept-new-host-key":
				b, err := parseBool(val)
				if err != nil {
					return cfg, fmt.Errorf("%w %q: accept-new-host-key: %v", ErrBadLocation, loc, err)
				}
				cfg.AcceptNewHostKey = b
			default:
				return cfg, fmt.Errorf("%w %q: unknown option %q (known: key, known-hosts, accept-new-host-key)", ErrBadLocation, loc, k)
			}
		}
	}
	return cfg, nil
}

// validHost accepts host names and IPv4 or IPv6 addresses.
func validHost(h string) bool {
	if strings.Contains(h, ":") {
		return net.ParseIP(h) != nil
	}
	for _, c := range h {
		if c <= ' ' || c == 0x7f || strings.ContainsRune("[]/@?#%\\", c) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return p, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on", "":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("want 1 or 0, got %q", s)
}

// String writes cfg back as a location, without options.
func (c Config) String() string {
	host := c.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	user := ""
	if c.User != "" {
		user = c.User + "@"
	}
	port := ""
	if c.Port != 0 && c.Port != 22 {
		port = strconv.Itoa(c.Port) + ":"
	}
	return "sftp:" + user + host + ":" + port + c.Path
}

// addr returns host:port for dialling.
func (c Config) addr() string {
	p := c.Port
	if p == 0 {
		p = 22
	}
	return net.JoinHostPort(c.Host, strconv.Itoa(p))
}
