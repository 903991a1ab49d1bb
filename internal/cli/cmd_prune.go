package cli

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/pruner"
	"github.com/einvault/einvault/internal/repo"
	"github.com/spf13/cobra"
)

// pruneFlags are shared by prune and forget --prune.
type pruneFlags struct {
	grace     time.Duration
	maxUnused string
}

func addPruneFlags(cmd *cobra.Command, f *pruneFlags) {
	cmd.Flags().DurationVar(&f.grace, "grace", pruner.DefaultGrace, "delete marked data only after this grace window (0: in the same run)")
	cmd.Flags().StringVar(&f.maxUnused, "max-unused", "50%", "repack packs in which more than this share is unused (0% repacks any pack with garbage, 100% never repacks)")
}

// options converts the flags; dryRun is passed through.
func (f pruneFlags) options(g *Globals, dryRun bool) (pruner.Options, error) {
	o := pruner.Options{DryRun: dryRun, Logger: g.Logger(), Grace: f.grace}
	switch {
	case f.grace < 0:
		return o, usageError("--grace %v: must not be negative", f.grace)
	case f.grace == 0:
		o.Grace = -1 // no grace window
	}
	s := strings.TrimSpace(f.maxUnused)
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || v < 0 || (!pct && v > 1) || (pct && v > 100) {
		return o, usageError("--max-unused %q: give a percentage such as 50%% (or a fraction such as 0.5)", f.maxUnused)
	}
	if pct {
		v /= 100
	}
	o.MaxUnused = v
	if v == 0 {
		o.MaxUnused = -1 // repack any pack with garbage
	}
	return o, nil
}

func newPruneCmd(g *Globals) *cobra.Command {
	var pf pruneFlags
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Free the storage of data no snapshot references (two-phase, never blocks backups)",
		Long: `Prune frees the storage of data that no snapshot references any more, in two
phases, so that it never blocks a backup and never deletes what a running backup
may still reference:

  1. mark: find the data every snapshot uses, repack packs that are mostly
     garbage (--max-unused), drop unused packs from the index and record them,
     with the time, in a pending mark. New backups stop deduplicating against
     them. Packs no index lists (left by interrupted backups) are marked too.
  2. sweep (at the start of every prune): a mark older than the grace window
     (--grace) is deleted, unless a backup that started before the mark is
     still running (it waits), and except packs that a snapshot saved since the
     mark references (they are indexed again, nothing is lost).

So data usually goes away at the next prune after the grace window; use
--grace 0 to mark and delete in one run when no backup is running. Only one
prune runs at a time: a second one exits with code 11 (locked).`,
		Example: `  einvault prune
  einvault prune --dry-run
  einvault prune --grace 0 --max-unused 10%
  einvault forget --keep-daily 7 --keep-monthly 12 --prune`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := pf.options(g, dryRun)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			r, err := g.OpenRepo(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			rep, err := runPrune(ctx, g, r, o)
			if err != nil {
				return err
			}
			if g.JSON {
				return g.PrintJSON(pruneJSON(rep))
			}
			return nil
		},
	}
	addPruneFlags(cmd, &pf)
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "only show what would be done")
	return cmd
}

// runPrune runs the pruner on r (opened without its index) and prints a
// human summary unless --json.
func runPrune(ctx context.Context, g *Globals, r *repo.Repository, o pruner.Options) (*pruner.Report, error) {
	rep, err := pruner.Prune(ctx, r, o)
	if err != nil {
		if rep != nil && !g.JSON {
			printPruneReport(g, rep)
		}
		return rep, err
	}
	if !g.JSON {
		printPruneReport(g, rep)
	}
	// Archived PostgreSQL WAL follows base-backup retention.
	wal, err := walRetention(ctx, r, o.DryRun)
	if err != nil {
		return rep, err
	}
	if len(wal) > 0 {
		g.Printf("%d archived WAL file(s) older than the oldest kept base backup %s\n", len(wal), map[bool]string{true: "would be removed", false: "removed"}[o.DryRun])
	}
	return rep, nil
}

type pruneReportJSON struct {
	MessageType string `json:"message_type"`
	*pruner.Report
}

func pruneJSON(rep *pruner.Report) pruneReportJSON {
	if rep.Waiting == nil {
		rep.Waiting = []pruner.Waiting{}
	}
	return pruneReportJSON{MessageType: "prune_summary", Report: rep}
}

func printPruneReport(g *Globals, rep *pruner.Report) {
	marked, repacked, deleted, reindexed := "marked for deletion", "repacked", "deleted", "indexed again"
	if rep.DryRun {
		g.Printf("dry run: nothing is changed\n")
		marked, repacked, deleted, reindexed = "would mark for deletion", "would repack", "would delete", "would index again"
	}
	g.Printf("%d snapshot(s) use %d blobs; %d pack(s), %s in storage\n", rep.Snapshots, rep.UsedBlobs, rep.Packs, formatBytes(uint64(rep.StoredSize)))
	if rep.PacksDeleted > 0 || rep.PendingDone > 0 {
		g.Printf("%s: %d pack(s), freeing %s\n", deleted, rep.PacksDeleted, formatBytes(uint64(rep.BytesFreed)))
	}
	if rep.PacksKeptBack > 0 {
		g.Printf("kept back: %d marked pack(s) that a newer snapshot references (%s)\n", rep.PacksKeptBack, reindexed)
	}
	if rep.PacksMarked > 0 {
		g.Printf("%s: %d pack(s), %s", marked, rep.PacksMarked, formatBytes(uint64(rep.BytesMarked)))
		if rep.PacksUnindexed > 0 {
			g.Printf(" (%d left by interrupted backups)", rep.PacksUnindexed)
		}
		g.Printf("\n")
	}
	if rep.CatalogsDeleted > 0 {
		g.Printf("%s: %d invoice catalog(s) of forgotten snapshots\n", deleted, rep.CatalogsDeleted)
	}
	if rep.CatalogsMarked > 0 {
		g.Printf("%s: %d invoice catalog(s) of forgotten snapshots\n", marked, rep.CatalogsMarked)
	}
	if rep.PacksRepacked > 0 {
		g.Printf("%s: %d pack(s), copying %d blobs (%s) still in use\n", repacked, rep.PacksRepacked, rep.BlobsRepacked, formatBytes(uint64(rep.BytesRepacked)))
	}
	if rep.PacksReindexed > 0 {
		g.Printf("%s: %d unindexed pack(s) that snapshots need\n", reindexed, rep.PacksReindexed)
	}
	for _, w := range rep.Waiting {
		g.Printf("waiting: %d marked pack(s), %s, marked %s: %s\n", w.Packs, formatBytes(uint64(w.Bytes)), w.Created.Local().Format("2006-01-02 15:04:05"), w.Reason)
	}
	if len(rep.Waiting) > 0 {
		g.Printf("marked packs are deleted by the first 'einvault prune' after their grace window\n")
	}
	if n := len(rep.Protected); n > 0 {
		g.Printf("kept %d file(s) that storage retention (object lock) still protects; a later prune removes them:\n", n)
		for i, p := range rep.Protected {
			if i == 5 && n > 6 {
				g.Printf("  ... and %d more\n", n-i)
				break
			}
			g.Printf("  %s\n", p)
		}
	}
	if rep.MissingPacks > 0 || rep.MissingBlobs > 0 {
		g.Warnf("warning: %d indexed pack(s) missing from storage, %d used blob(s) found nowhere: run 'einvault check'\n", rep.MissingPacks, rep.MissingBlobs)
	}
	if rep.PacksMarked == 0 && rep.PacksDeleted == 0 && rep.PacksRepacked == 0 && len(rep.Waiting) == 0 && rep.PacksKeptBack == 0 && rep.CatalogsMarked == 0 && rep.CatalogsDeleted == 0 {
		g.Printf("nothing to prune\n")
	}
}
