// Package location turns repository strings into backends: a local path
// (or "local:PATH"), "s3:http[s]://host[:port]/bucket[/prefix]",
// "sftp:user@host[:port]:/path" and "rclone:REMOTE:path". The command line
// and the copies of a repository both open storage through it.
package location

import (
	"context"
	"errors"
	"fmt"
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
