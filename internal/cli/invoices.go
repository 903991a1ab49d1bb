package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/einvault/einvault/internal/catalog"
	"github.com/einvault/einvault/internal/invoice"
	"github.com/einvault/einvault/internal/repo"
	"github.com/spf13/cobra"
)

// recognizeInvoices is the catalog's recogniser: content only, default limits.
func recognizeInvoices(ctx context.Context, name string, data []byte) ([]invoice.Invoice, error) {
	return invoice.Recognize(ctx, name, data, invoice.Limits{})
}

// recheckInvoices parses a file again and checks every signature.
func recheckInvoices(ctx context.Context, name string, data []byte) ([]invoice.Invoice, error) {
	invs, err := invoice.Recognize(ctx, name, data, invoice.Limits{})
	if err != nil {
		return nil, err
	}
	for i := range invs {
		if err := invoice.VerifySignatures(ctx, data, &invs[i], invoice.VerifyOptions{}); err != nil {
			return nil, err
		}
	}
	return invs, nil
}

// newCatalogBuilder prepares the invoice catalog of a backup. A parent
// whose catalog cannot be read only costs the carried-over entries (a
// warning says so); it never stops the backup.
func newCatalogBuilder(ctx context.Context, g *Globals, r *repo.Repository, parent *repo.Snapshot) *catalog.Builder {
	var pcat *catalog.Reader
	if parent != nil && parent.Catalog != nil {
		c, err := catalog.LoadReader(ctx, r, parent)
		if err != nil {
			g.Warnf("warning: %v: unchanged invoices are not carried over into this snapshot's catalog (run 'einvault check'; a --full backup catalogs everything)\n", err)
		} else {
			pcat = c
		}
	} else if parent != nil {
		g.Warnf("warning: the parent snapshot %s has no invoice catalog: invoices in files unchanged since then are not cataloged (run a --full backup once)\n", parent.ID.Short())
	}
	return catalog.NewBuilder(ctx, catalog.BuilderOptions{Recognize: recognizeInvoices, Parent: pcat, Index: r.Index(), Store: r, Logger: g.Logger()})
}

// cachePath is where the catalog cache of a repository lives:
// $EINVAULT_CACHE_DIR, $XDG_CACHE_HOME/einvault or ~/.cache/einvault, in
// catalog/<repository ID>.sqlite.
func (g *Globals) cachePath(id repo.ID) (string, error) {
	dir := g.Getenv("EINVAULT_CACHE_DIR")
	if dir == "" {
		if x := g.Getenv("XDG_CACHE_HOME"); x != "" {
			dir = filepath.Join(x, "einvault")
		} else if h := g.Getenv("HOME"); h != "" {
			dir = filepath.Join(h, ".cache", "einvault")
		} else {
			return catalog.DefaultPath(id)
		}
	}
	return filepath.Join(dir, "catalog", id.String()+".sqlite"), nil
}

// openCatalogCache opens the repository's catalog cache and brings it up
// to date with the repository's snapshots.
func openCatalogCache(ctx context.Context, g *Globals, r *repo.Repository) (*catalog.Cache, error) {
	p, err := g.cachePath(r.Config().ID)
	if err != nil {
		return nil, err
	}
	c, err := catalog.OpenCache(ctx, p, r.Now)
	if err != nil {
		return nil, err
	}
	st, err := c.Sync(ctx, r)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("update the invoice catalog cache: %w", err)
	}
	if st.SnapshotsAdded > 0 || st.SnapshotsRemoved > 0 {
		g.Logger().Info("invoice catalog cache updated", "snapshots_added", st.SnapshotsAdded, "snapshots_removed", st.SnapshotsRemoved, "entries", st.Entries)
	}
	return c, nil
}

// catalogSession is a repository opened for an invoices command together
// with its invoice catalog cache, already brought up to date.
type catalogSession struct {
	repo  *repo.Repository
	cache *catalog.Cache
}

// openCatalog opens the repository and its catalog cache; Close releases
// both.
func openCatalog(ctx context.Context, g *Globals) (*catalogSession, error) {
	r, err := g.OpenRepo(ctx)
	if err != nil {
		return nil, err
	}
	c, err := openCatalogCache(ctx, g, r)
	if err != nil {
		r.Close()
		return nil, err
	}
	return &catalogSession{repo: r, cache: c}, nil
}

// Close closes the cache, then the repository.
func (s *catalogSession) Close() {
	s.cache.Close()
	s.repo.Close()
}

func newInvoicesCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "invoices",
		Short: "Find, restore, verify and account for the invoices in the snapshots",
		Long: `Every backup records the invoices it finds (recognised by content) in the
snapshot's invoice catalog, stored encrypted in the repository. These commands
query the catalogs through a local cache (SQLite, in ~/.cache/einvault/catalog
or $EINVAULT_CACHE_DIR) that is brought up to date with new snapshots
automatically and can be rebuilt at any time.

An invoice's KEY is SELLERMST/FORM/SERIES/NUMBER, for example
0105987432-999/1/C21TAQ/11; a content ID (the SHA-256 of the file, 64 hex
characters) names one exact version.`,
		Example: `  einvault invoices find --seller 0105987432-999 --series C21TAQ --number 11
  einvault invoices restore 0105987432-999/1/C21TAQ/11 --target /tmp/inv
  einvault invoices gaps --year 2024
  einvault invoices stats --json`,
	}
	cmd.AddCommand(newInvoicesFindCmd(g), newInvoicesRestoreCmd(g), newInvoicesGapsCmd(g), newInvoicesImportStatusCmd(g),
		newInvoicesReconcileCmd(g), newInvoicesVerifyCmd(g), newInvoicesStatsCmd(g), newInvoicesCacheCmd(g))
	return cmd
}

func newInvoicesCacheCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Manage the local invoice catalog cache",
	}
	rebuild := &cobra.Command{
		Use:   "rebuild",
		Short: "Build the local invoice catalog cache again from the repository",
		Long: `Empty the local cache and build it again from every snapshot's catalog and
every imported status-record file in the repository. The cache holds nothing
that is not in the repository; signature verdicts cached by 'invoices verify'
are dropped and found again by the next verify.`,
		Example: `  einvault invoices cache rebuild
  einvault invoices cache rebuild --json`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := g.OpenRepo(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			p, err := g.cachePath(r.Config().ID)
			if err != nil {
				return err
			}
			c, err := catalog.OpenCache(ctx, p, r.Now)
			if err != nil {
				return err
			}
			defer c.Close()
			start := time.Now()
			st, err := c.Rebuild(ctx, r)
			if err != nil {
				return err
			}
			if g.JSON {
				return g.PrintJSON(map[string]any{"cache": p, "snapshots": st.SnapshotsAdded, "snapshots_without_catalog": st.NoCatalog,
					"entries": st.Entries, "status_files": st.StatusFiles, "seconds": time.Since(start).Seconds()})
			}
			g.Printf("Rebuilt %s in %s: %d snapshot(s) (%d without a catalog), %d invoice entries, %d status-record file(s).\n",
				p, time.Since(start).Round(time.Millisecond), st.SnapshotsAdded, st.NoCatalog, st.Entries, st.StatusFiles)
			return nil
		},
	}
	cmd.AddCommand(rebuild)
	return cmd
}

// snapshotID resolves a snapshot reference among cataloged snapshots.
func snapshotID(ctx context.Context, c *catalog.Cache, ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	s, err := c.ResolveSnapshot(ctx, ref)
	if err != nil {
		if errors.Is(err, catalog.ErrNoSnapshot) {
			return "", WithExit(ExitError, err)
		}
		return "", err
	}
	return s.ID, nil
}
