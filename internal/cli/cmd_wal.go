package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/location"
	"github.com/einvault/einvault/internal/repo"
	"github.com/einvault/einvault/internal/source/pg"
	"github.com/einvault/einvault/internal/walarchive"
	"github.com/spf13/cobra"
)

// openRepoWithKeyCache opens the repository with a key cache file when
// one is given (flag or EINVAULT_KEY_CACHE): no KDF, no index. Without
// one it falls back to the password.
func (g *Globals) openRepoWithKeyCache(ctx context.Context, cacheFile string) (*repo.Repository, error) {
	if cacheFile == "" {
		cacheFile = g.Getenv("EINVAULT_KEY_CACHE")
	}
	if cacheFile == "" {
		return g.OpenRepo(ctx)
	}
	data, err := walarchive.ReadKeyCache(cacheFile)
	if err != nil {
		return nil, err
	}
	be, err := g.OpenBackend(ctx, false)
	if err != nil {
		return nil, err
	}
	return repo.OpenWithKeyCache(ctx, be, data, g.repoOptions())
}

func newWALPushCmd(g *Globals) *cobra.Command {
	var keyCache string
	cmd := &cobra.Command{
		Use:   "wal-push [--key-cache FILE] PATH",
		Short: "Archive one PostgreSQL WAL file (use as archive_command)",
		Long: `Archive the WAL file at PATH into the repository, compressed and
encrypted, as wal/<name>. Meant as PostgreSQL's archive_command, which runs
one process per WAL segment: with a key cache (--key-cache or
EINVAULT_KEY_CACHE, made by 'einvault key cache') a call runs no password
KDF and loads no index.

Idempotent: pushing a file that is already archived with the same content
succeeds; the same name with different content fails loudly (two clusters
archiving into one repository) and PostgreSQL keeps the file and retries.
Exit code 0 only once the file is durably stored.`,
		Example: `  # postgresql.conf: einvault-wal (installed beside einvault) is the same
  # command in a small binary that starts in a few milliseconds
  archive_mode = on
  archive_command = 'einvault-wal -r /backup/repo wal-push --key-cache /var/lib/postgresql/.einvault-keys %p'
  # or, slower to start:
  archive_command = 'einvault -r /backup/repo wal-push --key-cache /var/lib/postgresql/.einvault-keys %p'`,
		Args: argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			start := time.Now()
			path := args[0]
			name := filepath.Base(path)
			if !walarchive.ValidName(name) {
				return usageError("%s is not a PostgreSQL WAL file name: archive_command must pass %%p", name)
			}
			f, size, err := walarchive.OpenFile(path)
			if err != nil {
				return err
			}
			defer f.Close()
			walarchive.RelaxGC(int(size))
			r, err := g.openRepoWithKeyCache(ctx, keyCache)
			if err != nil {
				return fmt.Errorf("wal-push %s: %w", name, err)
			}
			defer r.Close()
			res, err := walarchive.PushFileToCopies(ctx, r, name, f, size, g.walCopies())
			if err != nil {
				return fmt.Errorf("wal-push %s: %w", name, err)
			}
			if g.JSON {
				return g.PrintJSON(map[string]any{"name": res.Name, "bytes": res.Bytes, "stored_bytes": res.Stored, "already_archived": res.AlreadyArchived, "seconds": time.Since(start).Seconds()})
			}
			if g.Verbose > 0 {
				g.Printf("archived %s (%s, %s stored, already archived: %v)\n", name, formatBytes(uint64(res.Bytes)), formatBytes(uint64(res.Stored)), res.AlreadyArchived)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keyCache, "key-cache", "", "key cache file (default $EINVAULT_KEY_CACHE; without one the password is used)")
	return cmd
}

// walCopies opens the copies of the repository with this process's
// storage options and reports the ones that missed a WAL file on stderr.
func (g *Globals) walCopies() walarchive.Copies {
	return walarchive.Copies{
		Open: func(ctx context.Context, loc string) (backend.Backend, error) {
			return location.Open(ctx, loc, g.LocationOptions())
		},
		Warnf: g.Warnf,
	}
}

func newWALFetchCmd(g *Globals) *cobra.Command {
	var keyCache, spool string
	cmd := &cobra.Command{
		Use:   "wal-fetch [--key-cache FILE] NAME PATH",
		Short: "Fetch one archived PostgreSQL WAL file (use as restore_command)",
		Long: `Write the archived WAL file NAME to PATH. Meant as PostgreSQL's
restore_command ('einvault pg restore' sets it up). A file that is not in
the archive exits with code 1: that is how PostgreSQL learns it reached the
end of the archived WAL.`,
		Example: `  restore_command = 'einvault -r /backup/repo wal-fetch --key-cache /var/lib/postgresql/.einvault-keys %f %p'`,
		Args:    argsRange(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ok, err := walarchive.ServeSpooled(spool, args[0], args[1]); errors.Is(err, walarchive.ErrMissing) {
				return WithExit(ExitError, err)
			} else if ok || err != nil {
				return err
			}
			r, err := g.openRepoWithKeyCache(ctx, keyCache)
			if err != nil {
				return fmt.Errorf("wal-fetch %s: %w", args[0], err)
			}
			defer r.Close()
			data, err := walarchive.FetchFromCopies(ctx, r, args[0], g.walCopies())
			if err != nil {
				if errors.Is(err, walarchive.ErrMissing) {
					return WithExit(ExitError, err)
				}
				return fmt.Errorf("wal-fetch %s: %w", args[0], err)
			}
			return walarchive.WriteFileAtomic(args[1], args[0], data)
		},
	}
	cmd.Flags().StringVar(&keyCache, "key-cache", "", "key cache file (default $EINVAULT_KEY_CACHE; without one the password is used)")
	cmd.Flags().StringVar(&spool, "spool", "", "serve NAME from this directory of prefetched WAL when it is there ('pg restore' sets it up)")
	return cmd
}

func newKeyCacheCmd(g *Globals) *cobra.Command {
	var file, owner string
	cmd := &cobra.Command{
		Use:   "cache --file FILE [--owner USER]",
		Short: "Write a key cache file for wal-push/wal-fetch (unwrapped keys, mode 0600)",
		Long: `Write the repository's keys, unwrapped, to FILE (mode 0600, owned by
--owner), so that wal-push and wal-fetch, which PostgreSQL starts once per
WAL segment, open the repository without the password and without the
deliberately slow key derivation.

Threat model: whoever can read FILE can decrypt and write the repository,
exactly like whoever knows the password (the file is the password's
equivalent; it cannot be used to change passwords). Keep it readable only
by the database's OS user, on the database host, outside the data
directory and outside any backup. After 'key rotate' run this again: files
sealed under the new key cannot be read with the old cache. Remove the file
to revoke it (and rotate the key if it may have leaked).`,
		Example: `  einvault -r /backup/repo key cache --file /var/lib/postgresql/.einvault-keys --owner postgres`,
		Args:    argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usageError("--file is required")
			}
			r, err := g.OpenRepo(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			data, err := r.ExportKeyCache()
			if err != nil {
				return err
			}
			uid, gid := -1, -1
			if owner != "" {
				u, err := user.Lookup(owner)
				if err != nil {
					return usageError("--owner: %v", err)
				}
				uid, _ = strconv.Atoi(u.Uid)
				gid, _ = strconv.Atoi(u.Gid)
			}
			tmp, err := os.CreateTemp(filepath.Dir(file), ".einvault-keycache-*")
			if err != nil {
				return fmt.Errorf("write key cache: %w", err)
			}
			defer os.Remove(tmp.Name())
			if err := tmp.Chmod(0o600); err == nil && uid >= 0 {
				err = tmp.Chown(uid, gid)
				if err != nil {
					tmp.Close()
					return fmt.Errorf("write key cache: %w", err)
				}
			}
			if _, err := tmp.Write(data); err != nil {
				tmp.Close()
				return fmt.Errorf("write key cache: %w", err)
			}
			if err := tmp.Sync(); err != nil {
				tmp.Close()
				return fmt.Errorf("write key cache: %w", err)
			}
			if err := tmp.Close(); err != nil {
				return fmt.Errorf("write key cache: %w", err)
			}
			if err := os.Rename(tmp.Name(), file); err != nil {
				return fmt.Errorf("write key cache: %w", err)
			}
			g.Printf("Key cache written to %s (mode 0600). Anyone who can read it can read and write the repository.\n", file)
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "where to write the key cache (required)")
	cmd.Flags().StringVar(&owner, "owner", "", "OS user to own the file (the database's user, e.g. postgres)")
	return cmd
}

// walRetention removes the archived WAL files no kept base backup needs
// (pg.ObsoleteWAL). prune runs it after removing snapshots.
func walRetention(ctx context.Context, r *repo.Repository, dryRun bool) ([]string, error) {
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	var bases []pg.BaseBackup
	for _, s := range snaps {
		if b, ok := pg.BaseBackupFromSnapshot(s); ok {
			bases = append(bases, b)
		}
	}
	st := pg.NewWALStore(r)
	names, err := st.List(ctx)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	obsolete := pg.ObsoleteWAL(bases, names)
	if dryRun {
		return obsolete, nil
	}
	for _, n := range obsolete {
		if err := st.Remove(ctx, n); err != nil && !errors.Is(err, backend.ErrNotExist) {
			return nil, fmt.Errorf("remove archived WAL %s: %w", n, err)
		}
	}
	return obsolete, nil
}

// walChain is the WAL-chain section of check; nil when the repository
// holds no archived WAL.
func walChain(ctx context.Context, r *repo.Repository) (*pg.ChainReport, error) {
	st := pg.NewWALStore(r)
	names, err := st.List(ctx)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	snaps, err := r.Snapshots(ctx)
	if err != nil && len(snaps) == 0 {
		return nil, err
	}
	var bases []pg.BaseBackup
	for _, s := range snaps {
		if b, ok := pg.BaseBackupFromSnapshot(s); ok {
			bases = append(bases, b)
		}
	}
	return pg.CheckChain(bases, names), nil
}
