// Package location turns repository strings into backends: a local path
// (or "local:PATH"), "s3:http[s]://host[:port]/bucket[/prefix]",
// "sftp:user@host[:port]:/path" and "rclone:REMOTE:path". The command line
// and the copies of a repository both open storage through it.
package location

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/limit"
	"github.com/einvault/einvault/internal/backend/local"
	"github.com/einvault/einvault/internal/backend/retry"
	"github.com/einvault/einvault/internal/backend/s3"
)

// ErrAlreadyExists is matched when Create finds a repository in place.
var ErrAlreadyExists = errors.New("a repository already exists")

// ErrUsage is matched by errors in the repository string itself.
var ErrUsage = errors.New("bad repository location")

// Options carries what opening a location may need besides the string.
type Options struct {
	// Getenv reads environment variables (credentials such as
	// AWS_ACCESS_KEY_ID); nil means no environment.
	Getenv func(string) string
	// Limits (connections, bandwidth) apply to every backend opened; a
	// location's own ?connections= tightens them.
	Limits limit.Options
	// Retry configures the retry decorator that wraps every remote
	// backend (the zero value gives its defaults).
	Retry retry.Options
	// Credentials from the configuration file, by location string (the
	// repository's and its copies'); nil means none.
	Credentials map[string]Credentials
}

func (o Options) getenv(k string) string {
	if o.Getenv == nil {
		return ""
	}
	return o.Getenv(k)
}

// Scheme returns the scheme of a repository string: "local", "s3",
// "sftp" or "rclone".
func Scheme(loc string) string {
	for _, s := range []string{"s3", "sftp", "rclone"} {
		if strings.HasPrefix(loc, s+":") {
			return s
		}
	}
	return "local"
}

// Open opens the storage at loc. A location that does not exist matches
// backend.ErrNotExist.
func Open(ctx context.Context, loc string, opts Options) (backend.Backend, error) {
	return open(ctx, loc, opts, false)
}

// Create creates storage at loc for a new repository; it fails with an
// error matching ErrAlreadyExists when one is there.
func Create(ctx context.Context, loc string, opts Options) (backend.Backend, error) {
	return open(ctx, loc, opts, true)
}

// wrap applies the shared decorators: limits innermost, so that every
// retried attempt is limited too, and retries around remote backends.
// A local backend is left bare without limits, keeping its TempFiler.
func wrap(be backend.Backend, remote bool, opts Options) backend.Backend {
	if opts.Limits.Any() {
		be = limit.New(be, opts.Limits)
	}
	if remote {
		be = retry.New(be, opts.Retry)
	}
	return be
}

func openS3(ctx context.Context, loc string, opts Options, create bool) (backend.Backend, error) {
	cfg, err := s3.ParseLocation(loc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	cfg.ApplyEnv(opts.Getenv)
	if err := opts.Credentials[loc].applyS3(&cfg); err != nil {
		return nil, err
	}
	var be *s3.Backend
	if create {
		be, err = s3.Create(ctx, cfg)
		if errors.Is(err, s3.ErrAlreadyExists) {
			return nil, fmt.Errorf("%w: %v", ErrAlreadyExists, err)
		}
	} else {
		be, err = s3.Open(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Connections > 0 && (opts.Limits.Connections == 0 || cfg.Connections < opts.Limits.Connections) {
		opts.Limits.Connections = cfg.Connections
	}
	return wrap(be, true, opts), nil
}

func open(ctx context.Context, loc string, opts Options, create bool) (backend.Backend, error) {
	switch Scheme(loc) {
	case "s3":
		return openS3(ctx, loc, opts, create)
	case "sftp":
		return openSFTP(ctx, loc, opts, create)
	case "rclone":
		return openRclone(ctx, loc, opts, create)
	case "local":
		path := strings.TrimPrefix(loc, "local:")
		if path == "" {
			return nil, fmt.Errorf("%w: empty path", ErrUsage)
		}
		var be *local.Backend
		var err error
		if create {
			be, err = local.Create(ctx, path)
			if errors.Is(err, local.ErrAlreadyExists) {
				return nil, fmt.Errorf("%w at %s", ErrAlreadyExists, path)
			}
		} else {
			be, err = local.Open(ctx, path)
		}
		if err != nil {
			return nil, err
		}
		return wrap(be, false, opts), nil
	default:
		return nil, fmt.Errorf("%w: %q: the %s backend is not available in this version yet; use a local path or NAS mount", ErrUsage, loc, Scheme(loc))
	}
}

// Credentials are the secrets and key paths the configuration file gives
// for one location. Set fields take precedence over the environment
// (AWS_*, EINVAULT_SFTP_*); options in the location string itself
// (?key=, ?known-hosts=) take precedence over them. Files are read when
// the location is opened.
type Credentials struct {
	S3AccessKeyID         string
	S3SecretAccessKey     string
	S3SecretAccessKeyFile string
	S3SessionToken        string
	S3SessionTokenFile    string
	SFTPIdentityFile      string
	SFTPKnownHostsFile    string
}

// readSecret returns inline, or the first line of file.
func readSecret(inline, file, what string) (string, error) {
	if file == "" {
		return inline, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read the %s: %w (check the config's %s_file setting)", what, err, strings.ReplaceAll(what, " ", "_"))
	}
	s, _, _ := strings.Cut(string(b), "\n")
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("the %s file %s is empty", what, file)
	}
	return s, nil
}

// applyS3 overrides the environment's credentials with the
// configuration's, when it gives a key ID.
func (c Credentials) applyS3(cfg *s3.Config) error {
	if c.S3AccessKeyID == "" {
		return nil
	}
	secret, err := readSecret(c.S3SecretAccessKey, c.S3SecretAccessKeyFile, "s3 secret access key")
	if err != nil {
		return fmt.Errorf("%s: %w", cfg, err)
	}
	token, err := readSecret(c.S3SessionToken, c.S3SessionTokenFile, "s3 session token")
	if err != nil {
		return fmt.Errorf("%s: %w", cfg, err)
	}
	cfg.AccessKey, cfg.SecretKey, cfg.SessionToken = c.S3AccessKeyID, secret, token
	return nil
}
