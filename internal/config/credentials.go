package config

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/einvault/einvault/internal/backend/location"
)

// Secret is a value from the file that must never be shown: it prints
// and marshals as "[redacted]".
type Secret string

const redacted = "[redacted]"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from showing the value.
func (s Secret) GoString() string { return s.String() }

// MarshalJSON never writes the value.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// Credentials are the secrets and key paths of one S3 or SFTP location
// (repository: or one of copies:). Empty settings fall back to the
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN, EINVAULT_SFTP_KEY, EINVAULT_SFTP_KNOWN_HOSTS). A
// secret belongs in a *_file (read when the location is opened) or the
// environment; one written inline is accepted with a warning.
type Credentials struct {
	S3AccessKeyID         string `yaml:"s3_access_key_id"`
	S3SecretAccessKey     Secret `yaml:"s3_secret_access_key"`
	S3SecretAccessKeyFile string `yaml:"s3_secret_access_key_file"`
	S3SessionToken        Secret `yaml:"s3_session_token"`
	S3SessionTokenFile    string `yaml:"s3_session_token_file"`
	SFTPIdentityFile      string `yaml:"sftp_identity_file"`
	SFTPKnownHosts        string `yaml:"sftp_known_hosts"`
}

// empty reports whether c sets nothing.
func (c Credentials) empty() bool { return c == Credentials{} }

// Location converts c for package location.
func (c Credentials) Location() location.Credentials {
	return location.Credentials{
		S3AccessKeyID:         c.S3AccessKeyID,
		S3SecretAccessKey:     string(c.S3SecretAccessKey),
		S3SecretAccessKeyFile: c.S3SecretAccessKeyFile,
		S3SessionToken:        string(c.S3SessionToken),
		S3SessionTokenFile:    c.S3SessionTokenFile,
		SFTPIdentityFile:      c.SFTPIdentityFile,
		SFTPKnownHostsFile:    c.SFTPKnownHosts,
	}
}

// Credentials returns the credentials the file gives for each location
// (the repository and its copies), keyed by the location string as the
// file writes it: a repository location from EINVAULT_REPO gets none.
func (c *Config) Credentials() map[string]location.Credentials {
	m := map[string]location.Credentials{}
	if r := c.Repository; !r.Credentials.empty() && r.written != "" {
		m[r.written] = r.Credentials.Location()
	}
	for _, cp := range c.Repository.Copies {
		if cp != nil && !cp.Credentials.empty() && cp.Location != "" {
			m[cp.Location] = cp.Credentials.Location()
		}
	}
	return m
}

// validateCredentials checks the credentials of the location at path
// (repository, or repository.copies[i]) and warns about inline secrets.
func (l *loader) validateCredentials(loc string, cr Credentials, path ...any) {
	if cr.empty() {
		return
	}
	at := func(key string) []any { return append(append([]any{}, path...), key) }
	scheme := location.Scheme(loc)
	s3Set := cr.S3AccessKeyID != "" || cr.S3SecretAccessKey != "" || cr.S3SecretAccessKeyFile != "" || cr.S3SessionToken != "" || cr.S3SessionTokenFile != ""
	sftpSet := cr.SFTPIdentityFile != "" || cr.SFTPKnownHosts != ""
	if s3Set && scheme != "s3" && loc != "" {
		l.errf(at("s3_access_key_id"), "S3 credentials given for %s location %q: remove them, or use an s3: location", scheme, loc)
	}
	if sftpSet && scheme != "sftp" && loc != "" {
		l.errf(at("sftp_identity_file"), "SFTP settings given for %s location %q: remove them, or use an sftp: location", scheme, loc)
	}
	pair := func(inline Secret, file, key string) {
		if inline != "" && file != "" {
			l.errf(at(key), "both %s and %s_file are set: keep one (the file)", key, key)
		} else if inline != "" {
			l.warnf(at(key), "the secret is written in the config file: move it to %s_file (a file only the backup user can read) or the %s environment variable", key, envFor[key])
		}
	}
	pair(cr.S3SecretAccessKey, cr.S3SecretAccessKeyFile, "s3_secret_access_key")
	pair(cr.S3SessionToken, cr.S3SessionTokenFile, "s3_session_token")
	hasSecret := cr.S3SecretAccessKey != "" || cr.S3SecretAccessKeyFile != ""
	switch {
	case cr.S3AccessKeyID != "" && !hasSecret:
		l.errf(at("s3_access_key_id"), "s3_access_key_id without a secret: add s3_secret_access_key_file")
	case cr.S3AccessKeyID == "" && hasSecret:
		l.errf(at("s3_secret_access_key_file"), "a secret key without s3_access_key_id: add the key ID")
	}
	for key, p := range map[string]string{"s3_secret_access_key_file": cr.S3SecretAccessKeyFile, "s3_session_token_file": cr.S3SessionTokenFile,
		"sftp_identity_file": cr.SFTPIdentityFile, "sftp_known_hosts": cr.SFTPKnownHosts} {
		if p != "" && !filepath.IsAbs(p) {
			l.errf(at(key), "%q is not an absolute path: the daemon runs from /", p)
		}
	}
}

var envFor = map[string]string{"s3_secret_access_key": "AWS_SECRET_ACCESS_KEY", "s3_session_token": "AWS_SESSION_TOKEN"}

// warnf records a warning: the file is valid, but something should change.
func (l *loader) warnf(path []any, format string, args ...any) {
	l.warns = append(l.warns, Problem{Line: l.line(path...), Path: pathString(path), Msg: fmt.Sprintf(format, args...)})
}
