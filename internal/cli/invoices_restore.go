package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/catalog"
	"github.com/einvault/einvault/internal/repo"
	"github.com/spf13/cobra"
)

type invoicesRestoreOptions struct {
	target    string
	snapshot  string
	overwrite bool
}

func newInvoicesRestoreCmd(g *Globals) *cobra.Command {
	var o invoicesRestoreOptions
	cmd := &cobra.Command{
		Use:   "restore KEY --target DIR",
		Short: "Restore one invoice (and its PDF rendering) by key or content ID",
		Long: `Restore one invoice file into --target under its original path relative to
the backed-up directory, with the PDF rendering stored beside it (same file
name stem) when there is one. KEY is SELLERMST/FORM/SERIES/NUMBER or a content
ID (SHA-256 of the file). Without --snapshot the newest snapshot holding the
invoice is used; when it holds two different versions, give the content ID
of the one you want (listed in the error and by 'invoices find').

The file's data is read from where the catalog recorded it, without loading
the repository index, so this takes well under a second on a repository of
millions of invoices. When the local catalog cache lacks snapshots (a new
machine after a disaster), the invoice is looked up in the snapshots'
catalogs directly, through their look-up index, newest first, instead of
filling the cache first; the next 'invoices find', 'gaps' or 'stats' fills
it. --json says which answered ("found_in": "cache" or "catalog"). Every file is written under a temporary name, checked
against the catalog (SHA-256) and renamed into place; existing files are
kept unless --overwrite is given. Exit code 5 when the stored data is damaged.`,
		Example: `  einvault invoices restore 0105987432-999/1/C21TAQ/11 --target /tmp/inv
  einvault invoices restore 0105987432-999/1/C21TAQ/11 --target /tmp/inv --snapshot 4f2a9c1e
  einvault invoices restore 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 --target . --json`,
		Args: argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInvoicesRestore(cmd.Context(), g, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.target, "target", "t", "", "directory to restore into (created if missing; required)")
	f.StringVar(&o.snapshot, "snapshot", "", "restore from this snapshot (ID or prefix) instead of the newest holding it")
	f.BoolVar(&o.overwrite, "overwrite", false, "replace existing files")
	return cmd
}

type restoredFile struct {
	Path      string `json:"path"`
	Snapshot  string `json:"snapshot_path"`
	Size      int    `json:"size"`
	SHA256    string `json:"sha256"`
	Verified  bool   `json:"verified"`
	Rendering bool   `json:"rendering,omitempty"`
}

func runInvoicesRestore(ctx context.Context, g *Globals, o invoicesRestoreOptions, key string) error {
	start := time.Now()
	if o.target == "" {
		return usageError("no target: give --target DIR (the directory to restore into)")
	}
	if strings.Count(key, "/") != 3 && len(key) != 64 {
		return usageError("KEY %q: give SELLERMST/FORM/SERIES/NUMBER (e.g. 0105987432-999/1/C21TAQ/11) or a 64-character content ID", key)
	}
	r, err := g.OpenRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	loc, sources, via, err := locateInvoice(ctx, g, r, key, o.snapshot)
	if err != nil {
		return err
	}
	fe := &catalog.Fetcher{Store: r}
	var out []restoredFile
	files := []*catalog.File{&loc.Entry.File}
	if loc.Entry.PDF != nil {
		files = append(files, loc.Entry.PDF)
	}
	for i, f := range files {
		data, err := fe.ReadFile(ctx, *f, loc.Packs)
		if err != nil {
			return err
		}
		sum := catalog.ContentID(data)
		if i == 0 && sum != loc.Entry.ContentID {
			return WithExit(ExitDamaged, fmt.Errorf("%s: the stored data does not match the catalog (SHA-256 %s, cataloged %s): run 'einvault check --read-data'", f.Path, sum[:16], loc.Entry.ContentID[:16]))
		}
		dst := filepath.Join(o.target, filepath.FromSlash(relativeToSource(f.Path, sources)))
		if err := writeVerified(dst, data, o.overwrite); err != nil {
			return err
		}
		out = append(out, restoredFile{Path: dst, Snapshot: f.Path, Size: len(data), SHA256: sum, Verified: true, Rendering: i > 0})
	}
	took := time.Since(start)
	if g.JSON {
		return g.PrintJSON(map[string]any{"key": loc.Entry.Key(), "content_id": loc.Entry.ContentID, "snapshot": loc.Snapshot,
			"files": out, "index_loaded": fe.IndexLoads > 0, "found_in": via, "seconds": took.Seconds()})
	}
	g.Printf("Restored %s from snapshot %s in %s:\n", loc.Entry.Key(), loc.Snapshot[:8], took.Round(time.Millisecond))
	for _, f := range out {
		what := "invoice"
		if f.Rendering {
			what = "rendering"
		}
		g.Printf("  %s %s (%d bytes, SHA-256 %s verified)\n", what, f.Path, f.Size, f.SHA256[:16])
	}
	return nil
}

// locateInvoice finds one invoice and the backed-up paths of the snapshot
// it is taken from. An up-to-date catalog cache answers at once; a cache
// that lacks snapshots (a new machine after a disaster, or backups since
// the last query) is not filled first, which would read every entry of
// every catalog: the snapshots' catalogs are searched directly, newest
// first, each through its look-up index. The next command that needs the
// whole cache (find, gaps, stats) fills it. via says which was used:
// "cache" or "catalog".
func locateInvoice(ctx context.Context, g *Globals, r *repo.Repository, key, snapRef string) (loc *catalog.Located, sources []string, via string, err error) {
	snaps, err := r.Snapshots(ctx)
	if err != nil && len(snaps) == 0 {
		return nil, nil, "", err
	}
	p, err := g.cachePath(r.Config().ID)
	if err != nil {
		return nil, nil, "", err
	}
	c, err := catalog.OpenCache(ctx, p, r.Now)
	if err != nil {
		return nil, nil, "", err
	}
	defer c.Close()
	current, err := c.Current(ctx, snaps)
	if err != nil {
		return nil, nil, "", err
	}
	if current {
		via = "cache"
		var sid string
		if sid, err = snapshotID(ctx, c, snapRef); err != nil {
			return nil, nil, "", err
		}
		loc, err = c.Locate(ctx, key, sid)
	} else {
		via = "catalog"
		g.Logger().Info("invoice catalog cache is not up to date: looking the invoice up in the catalogs directly")
		sel, serr := catalog.SelectSnapshots(snaps, snapRef)
		if serr != nil {
			if errors.Is(serr, catalog.ErrNoSnapshot) {
				return nil, nil, "", WithExit(ExitError, serr)
			}
			return nil, nil, "", serr
		}
		loc, err = catalog.LocateInCatalogs(ctx, r, sel, key)
	}
	if err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return nil, nil, "", WithExit(ExitError, err)
		}
		return nil, nil, "", err
	}
	for _, s := range snaps {
		if s.ID.String() == loc.Snapshot {
			sources = s.Paths
		}
	}
	return loc, sources, via, nil
}

// relativeToSource is a snapshot path relative to the backed-up path
// that holds it (the file name alone for a backed-up file).
func relativeToSource(p string, sources []string) string {
	best := ""
	for _, s := range sources {
		if (strings.HasPrefix(p, s+"/") || p == s) && len(s) > len(best) {
			best = s
		}
	}
	if best == "" || best == p {
		return path.Base(p)
	}
	return strings.TrimPrefix(p, best+"/")
}

// writeVerified writes data to dst through a temporary file, reads it
// back, compares and renames it into place.
func writeVerified(dst string, data []byte, overwrite bool) error {
	if _, err := os.Lstat(dst); err == nil && !overwrite {
		return WithExit(ExitError, fmt.Errorf("%s exists: use --overwrite to replace it, or another --target", dst))
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(dst), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".einvault-tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	back, err := os.ReadFile(tmp.Name())
	if err != nil || !bytes.Equal(back, data) {
		return WithExit(ExitDamaged, fmt.Errorf("%s: the written file reads back differently (disk problem?)", dst))
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}
