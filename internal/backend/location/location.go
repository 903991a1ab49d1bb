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
	"github.com/einvault/einvault/internal/backend/local"
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

func open(ctx context.Context, loc string, opts Options, create bool) (backend.Backend, error) {
	_ = opts.getenv
	switch Scheme(loc) {
	case "sftp":
		return openSFTP(ctx, loc, opts, create)
	case "rclone":
		return openRclone(ctx, loc, opts, create)
	case "local":
		path := strings.TrimPrefix(loc, "local:")
		if path == "" {
			return nil, fmt.Errorf("%w: empty path", ErrUsage)
		}
		if create {
			be, err := local.Create(ctx, path)
			if errors.Is(err, local.ErrAlreadyExists) {
				return nil, fmt.Errorf("%w at %s", ErrAlreadyExists, path)
			}
			return be, err
		}
		return local.Open(ctx, path)
	default:
		return nil, fmt.Errorf("%w: %q: the %s backend is not available in this version yet; use a local path or NAS mount", ErrUsage, loc, Scheme(loc))
	}
}
