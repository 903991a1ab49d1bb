package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/einvault/einvault/internal/repo"
	"github.com/einvault/einvault/internal/restorer"
	"github.com/spf13/cobra"
)

type restoreOptions struct {
	target    string
	includes  []string
	excludes  []string
	overwrite bool
	verify    bool
	report    string
	workers   int
	filter    SnapshotFilterFlags
	noInvoice bool
}

func newRestoreCmd(g *Globals) *cobra.Command {
	var o restoreOptions
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT[:SUBPATH] --target DIR",
		Short: "Restore a snapshot, or part of it, into a directory",
		Long: `Restore a snapshot into the directory given by --target.

SNAPSHOT is "latest", a snapshot ID or a unique prefix of one (--host, --tag
and --path narrow what "latest" means). Paths keep their place: a snapshot of
/srv/invoices restores to TARGET/srv/invoices. With SNAPSHOT:SUBPATH only that
directory's content is restored, directly into TARGET (or that one file).

--include and --exclude take patterns (shell syntax: *, ?, [...]) matched
against the path inside the snapshot: a pattern starting with / against the
whole path, any other against its last parts ("*.xml", "2024/01"). A pattern
that matches a directory selects or skips everything under it; --exclude
wins over --include.

Existing files are never replaced unless --overwrite is given; they are
skipped and counted. With --overwrite a file is replaced atomically. Every
file is written under a temporary name and renamed into place only when
all of its data has been read and verified, so an interrupted or failed
restore never leaves a file with wrong content under its real name.
The restore refuses to write through symbolic links found in the target.

When the repository has copies, every pack is read from the first copy
that holds a valid version (local copies first, then by order); a missing or
damaged pack is read from the next copy, each event is reported on stderr,
and the restore succeeds. Before writing, the free space at the target is
checked against the snapshot's size.

Damaged or missing repository data does not stop the restore: everything
else is restored, the damaged files are left out and listed, and the exit
code is 5. --verify re-reads every restored file and compares it with the
snapshot (exit code 5 if anything differs). The report goes to stdout
(--json for machine-readable output) and, with --report FILE, to a JSON file;
nothing but the snapshot's files is written into the target.

When the snapshot has an invoice catalog, every restored invoice is then
compared with it (SHA-256) and its signatures are checked again (in
parallel, one worker per CPU; the verdicts are cached by content ID like
those of 'einvault invoices verify'). A content difference gives exit code
5; signature findings, even a status worse than at backup, are only
reported and never change the exit code. --no-invoice-verify skips this.`,
		Example: `  einvault restore latest --target /tmp/restore
  einvault restore 4f2a9c1e:/srv/invoices/2024 --target /srv/invoices/2024 --overwrite
  einvault restore latest --tag invoices --target /tmp/r --include '*.xml' --exclude '/srv/invoices/tmp'
  einvault restore latest --target /tmp/r --verify --report /var/log/einvault/restore.json --json`,
		Args: argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRestore(cmd.Context(), g, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.target, "target", "t", "", "directory to restore into (created if missing; required)")
	f.StringArrayVarP(&o.includes, "include", "i", nil, "restore only paths matching a pattern (repeat)")
	f.StringArrayVarP(&o.excludes, "exclude", "e", nil, "skip paths matching a pattern (repeat)")
	f.BoolVar(&o.overwrite, "overwrite", false, "replace existing files in the target")
	f.BoolVar(&o.verify, "verify", false, "re-read restored files and compare them with the snapshot")
	f.StringVar(&o.report, "report", "", "also write the report as JSON to this file")
	f.IntVar(&o.workers, "workers", 0, "packs restored in parallel (default 4)")
	f.BoolVar(&o.noInvoice, "no-invoice-verify", false, "skip the invoice check after restoring a snapshot with an invoice catalog")
	f.StringArrayVar(&o.filter.Hosts, "host", nil, "for \"latest\": only snapshots of this host (repeat)")
	f.StringArrayVar(&o.filter.Tags, "tag", nil, "for \"latest\": only snapshots with these tags (repeat, or comma-separated)")
	f.StringArrayVar(&o.filter.Paths, "path", nil, "for \"latest\": only snapshots of exactly these paths (repeat)")
	return cmd
}

func runRestore(ctx context.Context, g *Globals, o restoreOptions, ref string) error {
	if o.target == "" {
		return usageError("no target: give --target DIR (the directory to restore into)")
	}
	if o.workers < 0 {
		return usageError("--workers must be positive")
	}
	r, set, err := g.openRepoForRestoreHealing(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	snap, sub, err := g.FindSnapshot(ctx, r, ref, o.filter.Filter())
	if err != nil {
		return err
	}
	if sub == "" && len(o.includes) == 0 {
		if err := checkTargetSpace(o.target, snap.Summary.TotalBytes); err != nil {
			return err
		}
	}
	defer reportHealing(g, set)
	opts := restorer.Options{Include: o.includes, Exclude: o.excludes, Overwrite: o.overwrite, VerifyAfter: o.verify, Workers: o.workers}
	bar := g.newByteBar("restoring")
	if bar != nil || (g.JSON && !g.Quiet) {
		opts.Progress = func(p restorer.Progress) {
			if g.JSON {
				_ = writeJSONLine(g.Stderr, map[string]any{"message_type": "status", "seconds_elapsed": p.Elapsed.Seconds(),
					"total_files": p.TotalFiles, "total_bytes": p.TotalBytes, "files_done": p.Files, "bytes_done": p.Bytes,
					"skipped": p.Skipped, "damaged": p.Damaged, "errors": p.Errors})
				return
			}
			bar.set(int64(p.Bytes), int64(p.TotalBytes), fmt.Sprintf("%d/%d files", p.Files, p.TotalFiles))
		}
	}
	start := time.Now()
	rep, rerr := restorer.New(r, opts).Restore(ctx, snap, sub, o.target)
	bar.finish()
	if rep == nil {
		if errors.Is(rerr, restorer.ErrUnsafePath) {
			return WithExit(ExitError, rerr)
		}
		return rerr
	}
	if o.report != "" {
		if err := writeReportFile(o.report, rep); err != nil {
			g.Warnf("warning: %v\n", err)
		}
	}
	if err := printRestoreReport(g, snap, rep, time.Since(start)); err != nil {
		return err
	}
	if snap.Catalog != nil && !o.noInvoice && ctx.Err() == nil {
		differ, err := verifyRestoredInvoices(ctx, g, r, snap, sub, o.target)
		switch {
		case err != nil:
			g.Warnf("warning: invoice check after restore: %v\n", err)
		case differ && rerr == nil:
			rerr = fmt.Errorf("%w: restored invoices differ from the catalog (listed above)", restorer.ErrVerifyFailed)
		}
	}
	switch {
	case rerr == nil:
		return nil
	case errors.Is(rerr, repo.ErrDamaged), errors.Is(rerr, repo.ErrBlobMissing), errors.Is(rerr, restorer.ErrVerifyFailed):
		return WithExit(ExitDamaged, rerr)
	}
	return rerr
}

func writeReportFile(p string, rep *restorer.Report) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func printRestoreReport(g *Globals, snap *repo.Snapshot, rep *restorer.Report, took time.Duration) error {
	if g.JSON {
		return g.PrintJSON(struct {
			MessageType string `json:"message_type"`
			*restorer.Report
		}{"summary", rep})
	}
	what := "snapshot " + snap.ID.Short()
	if rep.Subpath != "" {
		what += ":" + rep.Subpath
	}
	rate := ""
	if s := took.Seconds(); s > 0 {
		rate = fmt.Sprintf(" (%s/s, %.0f files/s)", formatBytes(uint64(float64(rep.Bytes)/s)), float64(rep.Files)/s)
	}
	g.Printf("Restored %s to %s in %s: %d of %d files, %d directories, %d symlinks, %s%s.",
		what, rep.Target, formatDuration(took.Seconds()), rep.Files, rep.TotalFiles, rep.Dirs, rep.Symlinks, formatBytes(rep.Bytes), rate)
	if rep.SkippedExisting > 0 {
		g.Printf(" %d existing file(s) or link(s) skipped, not overwritten (use --overwrite to replace them).", rep.SkippedExisting)
	}
	if len(rep.Damaged) > 0 {
		g.Printf(" %d file(s) NOT restored because their data is damaged or missing (listed on stderr; run 'einvault check').", len(rep.Damaged))
	} else {
		g.Printf(" No damaged data.")
	}
	if rep.Verified > 0 || len(rep.VerifyFailed) > 0 {
		g.Printf(" Verified %d file(s), %d differ.", rep.Verified, len(rep.VerifyFailed))
	}
	if len(rep.Errors) > 0 {
		g.Printf(" %d error(s).", len(rep.Errors))
	}
	g.Printf("\n")
	for _, d := range rep.Damaged {
		g.Warnf("damaged: %s: %s\n", d.Path, d.Reason)
	}
	for _, d := range rep.VerifyFailed {
		g.Warnf("verify failed: %s: %s\n", d.Path, d.Reason)
	}
	for _, e := range rep.Errors {
		g.Warnf("error: %s: %s\n", e.Path, e.Reason)
	}
	if g.Verbose > 0 {
		for _, n := range rep.Notes {
			g.Warnf("note: %s: %s\n", n.Path, n.Reason)
		}
		for _, s := range rep.Skipped {
			g.Warnf("skipped: %s: %s\n", s.Path, s.Reason)
		}
	}
	return nil
}
