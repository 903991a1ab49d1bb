package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/location"
	"github.com/einvault/einvault/internal/replica"
	"github.com/einvault/einvault/internal/repo"
	"github.com/einvault/einvault/internal/source/pg"
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
	st, err := os.Stat(cacheFile)
	if err != nil {
		return nil, fmt.Errorf("key cache: %w (create it with 'einvault key cache --file %s')", err, cacheFile)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key cache %s is readable by other users (mode %04o): run 'chmod 600 %s'", cacheFile, st.Mode().Perm(), cacheFile)
	}
	data, err := os.ReadFile(cacheFile)
	if err != nil {
		return nil, fmt.Errorf("key cache: %w", err)
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
		Example: `  # postgresql.conf
  archive_mode = on
  archive_command = 'einvault -r /backup/repo wal-push --key-cache /var/lib/postgresql/.einvault-keys %p'`,
		Args: argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			start := time.Now()
			path := args[0]
			name := filepath.Base(path)
			if !pg.ValidWALName(name) {
				return usageError("%s is not a PostgreSQL WAL file name: archive_command must pass %%p", name)
			}
			content, err := pg.ReadWALFile(path)
			if err != nil {
				return err
			}
			relaxGC(len(content))
			r, err := g.openRepoWithKeyCache(ctx, keyCache)
			if err != nil {
				return fmt.Errorf("wal-push %s: %w", name, err)
			}
			defer r.Close()
			res, err := pushWALToCopies(ctx, g, r, name, content)
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

// relaxGC turns the garbage collector off for a short-lived wal-push,
// whose heap is a few times the segment and then exits: collecting it
// cost a tenth of a push's CPU. A memory limit of 8x the segment (at
// least 256 MiB) still bounds it; a GOMEMLIMIT the user set is kept.
func relaxGC(segment int) {
	if debug.SetMemoryLimit(-1) == math.MaxInt64 {
		debug.SetMemoryLimit(max(int64(segment)*8, 256<<20))
	}
	debug.SetGCPercent(-1)
}

// pushWALToCopies archives a WAL file into the repository and into every
// copy of its copy list. It succeeds when at least one place stored it
// (the others are reported loudly: they miss the file); when none could,
// it fails, so PostgreSQL keeps the segment and retries. A conflicting
// file (same name, other content) anywhere is an error.
func pushWALToCopies(ctx context.Context, g *Globals, r *repo.Repository, name string, content []byte) (pg.PushResult, error) {
	st := pg.NewWALStore(r)
	res, primaryErr := st.Push(ctx, name, content)
	if errors.Is(primaryErr, pg.ErrWALConflict) {
		return res, primaryErr
	}
	list, _, err := r.LoadCopies(ctx)
	if err != nil {
		g.Warnf("warning: wal-push %s: cannot read the copy list: %v; the file went only to %s\n", name, err, r.Backend().Location())
		return res, primaryErr
	}
	stored := primaryErr == nil
	var sealed []byte // sealed once for all copies
	primary := replica.NormalizeLocation(r.Backend().Location())
	var failures []string
	if primaryErr != nil {
		failures = append(failures, fmt.Sprintf("%s: %v", r.Backend().Location(), primaryErr))
	}
	for _, c := range list.Sorted() {
		if replica.NormalizeLocation(c.Location) == primary {
			continue
		}
		be, err := location.Open(ctx, c.Location, g.LocationOptions())
		if err == nil && sealed == nil {
			sealed, err = r.SealWAL(name, content)
			if err != nil {
				_ = be.Close()
			}
		}
		if err == nil {
			var cres pg.PushResult
			cres, err = st.PushTo(ctx, be, name, content, sealed)
			_ = be.Close()
			if errors.Is(err, pg.ErrWALConflict) {
				return cres, fmt.Errorf("copy %q: %w", c.Name, err)
			}
			if err == nil && !stored {
				res, stored = cres, true
			}
		}
		if err != nil {
			failures = append(failures, fmt.Sprintf("copy %q: %v", c.Name, err))
		}
	}
	if !stored {
		return res, fmt.Errorf("no copy could store it (PostgreSQL keeps the segment and retries): %s", strings.Join(failures, "; "))
	}
	for _, f := range failures {
		g.Warnf("WARNING: wal-push %s was NOT stored in %s; the other copies have it\n", name, f)
	}
	return res, nil
}

// fetchWALFromCopies reads a WAL file from the repository, or, when it
// is missing or unreadable there, from the copies in their read order.
func fetchWALFromCopies(ctx context.Context, g *Globals, r *repo.Repository, name string) ([]byte, error) {
	st := pg.NewWALStore(r)
	data, firstErr := st.Fetch(ctx, name)
	if firstErr == nil {
		return data, nil
	}
	list, _, err := r.LoadCopies(ctx)
	if err != nil {
		return nil, firstErr
	}
	primary := replica.NormalizeLocation(r.Backend().Location())
	for _, c := range list.Sorted() {
		if replica.NormalizeLocation(c.Location) == primary {
			continue
		}
		be, err := location.Open(ctx, c.Location, g.LocationOptions())
		if err != nil {
			continue
		}
		data, err := st.FetchFrom(ctx, be, name)
		_ = be.Close()
		if err == nil {
			if !errors.Is(firstErr, pg.ErrWALMissing) {
				g.Warnf("warning: wal-fetch %s: %v; served by copy %q\n", name, firstErr, c.Name)
			}
			return data, nil
		}
	}
	return nil, firstErr
}

func newWALFetchCmd(g *Globals) *cobra.Command {
	var keyCache string
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
			r, err := g.openRepoWithKeyCache(ctx, keyCache)
			if err != nil {
				return fmt.Errorf("wal-fetch %s: %w", args[0], err)
			}
			defer r.Close()
			data, err := fetchWALFromCopies(ctx, g, r, args[0])
			if err != nil {
				if errors.Is(err, pg.ErrWALMissing) {
					return WithExit(ExitError, err)
				}
				return fmt.Errorf("wal-fetch %s: %w", args[0], err)
			}
			return pg.WriteFileAtomic(args[1], args[0], data)
		},
	}
	cmd.Flags().StringVar(&keyCache, "key-cache", "", "key cache file (default $EINVAULT_KEY_CACHE; without one the password is used)")
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
