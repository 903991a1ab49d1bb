package location

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/rclone"
	"github.com/einvault/einvault/internal/backend/sftp"
)

// openSFTP opens "sftp:..." locations, wrapped by the shared limits and
// the retry decorator, so that a cut connection is re-dialled and the
// operation repeated.
func openSFTP(ctx context.Context, loc string, opts Options, create bool) (backend.Backend, error) {
	cfg, err := sftp.ParseLocation(loc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	cfg.Getenv = opts.getenv
	if cr := opts.Credentials[loc]; cr != (Credentials{}) {
		if cfg.KeyFile == "" {
			cfg.KeyFile = cr.SFTPIdentityFile
		}
		if cfg.KnownHostsFile == "" {
			cfg.KnownHostsFile = cr.SFTPKnownHostsFile
		}
	}
	var be *sftp.Backend
	if create {
		be, err = sftp.Create(ctx, cfg)
		if errors.Is(err, sftp.ErrAlreadyExists) {
			return nil, fmt.Errorf("%w: %v", ErrAlreadyExists, err)
		}
	} else {
		be, err = sftp.Open(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	return wrap(be, true, opts), nil
}

// openRclone opens "rclone:REMOTE:path" locations through a private
// "rclone serve sftp", wrapped like SFTP.
func openRclone(ctx context.Context, loc string, opts Options, create bool) (backend.Backend, error) {
	cfg, err := rclone.ParseLocation(loc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	cfg.Getenv = opts.getenv
	cfg.Env = os.Environ()
	var be *rclone.Backend
	if create {
		be, err = rclone.Create(ctx, cfg)
		if errors.Is(err, rclone.ErrAlreadyExists) {
			return nil, fmt.Errorf("%w: %v", ErrAlreadyExists, err)
		}
	} else {
		be, err = rclone.Open(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	return wrap(be, true, opts), nil
}
