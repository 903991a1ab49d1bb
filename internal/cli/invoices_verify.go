package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/catalog"
	"github.com/einvault/einvault/internal/repo"
	"github.com/spf13/cobra"
)

func newInvoicesVerifyCmd(g *Globals) *cobra.Command {
	var snapshot string
	cmd := &cobra.Command{
		Use:   "verify SNAPSHOT|DIR",
		Short: "Compare invoices with the catalog and check their signatures again",
		Long: `Check every invoice of a snapshot's catalog: its bytes must match the
content ID recorded at backup (SHA-256), and its signatures are verified
again. With SNAPSHOT ("latest", an ID or a prefix) the copies stored in the
repository are checked; with a DIR (after a restore) the restored files are,
against the catalog of --snapshot (the newest by default): a file at snapshot
path /srv/inv/a.xml is looked for at DIR/srv/inv/a.xml and at DIR/a.xml
relative to the backed-up path.

Signature verdicts are kept in the local cache by content ID (backups only
recognise invoices; this is where their signatures are checked, and the cost
is reported separately). Every failure is listed, then counts. Exit code 5
only when bytes differ from the catalog, a file is missing or unreadable, or
a signature status is worse than the first verdict for the same bytes; other
signature findings (unsigned, partial, ...) are reported with exit code 0.`,
		Example: `  einvault invoices verify latest
  einvault restore latest --target /tmp/r && einvault invoices verify /tmp/r
  einvault invoices verify /tmp/r --snapshot 4f2a9c1e --json`,
		Args: argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInvoicesVerify(cmd.Context(), g, args[0], snapshot)
		},
	}
	cmd.Flags().StringVar(&snapshot, "snapshot", "", "with DIR: the snapshot it was restored from (default: newest with a catalog)")
	return cmd
}

func runInvoicesVerify(ctx context.Context, g *Globals, arg, snapshot string) error {
	fi, statErr := os.Stat(arg)
	isDir := statErr == nil && fi.IsDir()
	if !isDir && snapshot != "" {
		return usageError("--snapshot goes with a DIR; to check a snapshot's stored copies give it as the argument")
	}
	cs, err := openCatalog(ctx, g)
	if err != nil {
		return err
	}
	defer cs.Close()
	r, c := cs.repo, cs.cache
	var src catalog.FileSource
	opts := catalog.VerifyOptions{Recheck: recheckInvoices, Workers: runtime.GOMAXPROCS(0)}
	ref := snapshot
	if isDir {
		abs, err := filepath.Abs(arg)
		if err != nil {
			return err
		}
		s, err := c.ResolveSnapshot(ctx, ref)
		if err != nil {
			return WithExit(ExitError, err)
		}
		ref = s.ID
		src, opts.Source = catalog.DirSource(abs, s.Paths), abs
	} else {
		if strings.ContainsRune(arg, os.PathSeparator) {
			return usageError("%s: no such directory (give a snapshot ID or a restored directory)", arg)
		}
		s, err := c.ResolveSnapshot(ctx, arg)
		if err != nil {
			return WithExit(ExitError, err)
		}
		ref = s.ID
		src, opts.Source = catalog.RepoSource(&catalog.Fetcher{Store: r}), "repository"
	}
	start := time.Now()
	rep, err := c.Verify(ctx, ref, src, opts)
	if err != nil {
		return err
	}
	if err := printVerifyReport(g, rep, time.Since(start)); err != nil {
		return err
	}
	if rep.Failed() {
		return WithExit(ExitDamaged, fmt.Errorf("invoice verification failed: %d content difference(s), %d missing, %d unreadable, %d signature(s) worse than before",
			rep.ContentDiffers, rep.Missing, rep.Unreadable, rep.StatusWorse))
	}
	return nil
}

func printVerifyReport(g *Globals, rep *catalog.VerifyReport, took time.Duration) error {
	if g.JSON {
		if rep.Findings == nil {
			rep.Findings = []catalog.Finding{}
		}
		return g.PrintJSON(struct {
			*catalog.VerifyReport
			Seconds float64 `json:"seconds"`
			Failed  bool    `json:"failed"`
		}{rep, took.Seconds(), rep.Failed()})
	}
	for _, f := range rep.Findings {
		level := "note"
		if f.Fatal {
			level = "FAIL"
		}
		g.Printf("%s %s: %s %s: %s\n", level, f.Kind, f.Path, f.Key, f.Detail)
	}
	var st []string
	for _, k := range sortedKeys(rep.ByStatus) {
		st = append(st, fmt.Sprintf("%d %s", rep.ByStatus[k], k))
	}
	g.Printf("Verified %d invoice(s) in %d file(s) of snapshot %s (%s) in %s: %d ok, %d content differ, %d missing, %d unreadable, %d signature(s) worse, %d signature finding(s). Signatures: %s (checking took %s).\n",
		rep.Invoices, rep.Files, rep.Snapshot[:8], rep.Source, took.Round(time.Millisecond), rep.OK, rep.ContentDiffers, rep.Missing,
		rep.Unreadable, rep.StatusWorse, rep.SigFindings, orDash(strings.Join(st, ", ")), rep.SigCheckTime.Round(time.Millisecond))
	return nil
}

// verifyRestoredInvoices runs after a restore of a snapshot with a
// catalog: every restored invoice is compared with the catalog (SHA-256)
// and its signatures are checked again (one worker per CPU). Content
// differences and unreadable files are verification failures; signature
// findings, even a status worse than at backup, are only reported and
// never change restore's exit code.
func verifyRestoredInvoices(ctx context.Context, g *Globals, r *repo.Repository, snap *repo.Snapshot, sub, target string) (bool, error) {
	c, err := openCatalogCache(ctx, g, r)
	if err != nil {
		return false, err
	}
	defer c.Close()
	abs, err := filepath.Abs(target)
	if err != nil {
		return false, err
	}
	sources := append([]string(nil), snap.Paths...)
	if sub != "" {
		sources = append(sources, repo.CleanSnapshotPath(sub))
	}
	start := time.Now()
	rep, err := c.Verify(ctx, snap.ID.String(), catalog.DirSource(abs, sources), catalog.VerifyOptions{Recheck: recheckInvoices, SkipMissing: true, ReuseVerdicts: true, Source: abs, Workers: runtime.GOMAXPROCS(0)})
	if err != nil {
		return false, err
	}
	if g.JSON {
		_ = writeJSONLine(g.Stderr, map[string]any{"message_type": "invoice_verify", "invoices": rep.Invoices, "ok": rep.OK,
			"content_differs": rep.ContentDiffers, "signature_worse": rep.StatusWorse, "signature_findings": rep.SigFindings,
			"by_signature_status": rep.ByStatus, "findings": rep.Findings})
	} else if err := printVerifyReport(g, rep, time.Since(start)); err != nil {
		return false, err
	}
	return rep.ContentDiffers > 0 || rep.Unreadable > 0, nil
}
