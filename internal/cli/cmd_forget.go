package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/config"
	"github.com/einvault/einvault/internal/forget"
	"github.com/einvault/einvault/internal/pruner"
	"github.com/einvault/einvault/internal/repo"
	"github.com/spf13/cobra"
)

type forgetOptions struct {
	policy  forget.Policy
	within  forget.Duration
	groupBy string
	filter  SnapshotFilterFlags
	prune   bool
	dryRun  bool
	pf      pruneFlags
}

type forgetGroupJSON struct {
	Group   forget.GroupKey     `json:"group"`
	Keep    []snapshotJSON      `json:"keep"`
	Remove  []snapshotJSON      `json:"remove"`
	Reasons map[string][]string `json:"reasons"`
}

type forgetJSON struct {
	MessageType string            `json:"message_type"`
	DryRun      bool              `json:"dry_run"`
	Policy      string            `json:"policy"`
	Groups      []forgetGroupJSON `json:"groups"`
	Removed     int               `json:"removed"`
	Prune       *pruneReportJSON  `json:"prune,omitempty"`
	Errors      []string          `json:"errors,omitempty"`
	// Protected are snapshots kept because storage retention (object
	// lock) refused their removal.
	Protected []string `json:"protected,omitempty"`
}

func newForgetCmd(g *Globals) *cobra.Command {
	var o forgetOptions
	cmd := &cobra.Command{
		Use:   "forget [flags] [SNAPSHOT...]",
		Short: "Remove snapshots by a retention policy or by ID",
		Long: `Forget removes snapshots, either those named (IDs, unique ID prefixes or
"latest") or those a retention policy does not keep. Snapshots are grouped
by host and paths (--group-by) and the policy applies to each group:

  --keep-last N       the N newest snapshots
  --keep-hourly N     the newest snapshot of each of the N newest hours with one
  --keep-daily N      ... days, --keep-weekly N (ISO weeks), --keep-monthly N,
  --keep-yearly N     ... years; -1 means unlimited
  --keep-within D     every snapshot within D of the group's newest (7d, 1y2m, 36h)
  --keep-tag T        every snapshot with tag T (repeat; "a,b" needs both)

Calendar buckets use local time. If counts are left over, the oldest snapshot
of the group is kept too. A policy with no keep rule is refused, since it would
forget everything.

Forgetting only removes snapshot files; the data goes with 'einvault prune'
(or --prune here), which deletes it after a grace window.`,
		Example: `  einvault forget --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --keep-yearly 10
  einvault forget --keep-within 30d --keep-tag audit --dry-run
  einvault forget --host erp01 --keep-last 10 --prune
  einvault forget 1a2b3c4d 9f8e7d6c
  einvault forget --keep-daily 7 --json | jq '.removed'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runForget(cmd, g, &o, args)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.policy.Last, "keep-last", 0, "keep the `N` newest snapshots")
	f.IntVar(&o.policy.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the last `N` hours")
	f.IntVar(&o.policy.Daily, "keep-daily", 0, "keep the newest snapshot of each of the last `N` days")
	f.IntVar(&o.policy.Weekly, "keep-weekly", 0, "keep the newest snapshot of each of the last `N` weeks")
	f.IntVar(&o.policy.Monthly, "keep-monthly", 0, "keep the newest snapshot of each of the last `N` months")
	f.IntVar(&o.policy.Yearly, "keep-yearly", 0, "keep the newest snapshot of each of the last `N` years")
	f.Var(&o.within, "keep-within", "keep snapshots within this `duration` of the newest (e.g. 7d, 1y2m, 36h)")
	f.StringArrayVar(&o.policy.Tags, "keep-tag", nil, "keep snapshots with this `tag` (repeat; a,b = both)")
	f.StringVar(&o.groupBy, "group-by", "host,paths", "group snapshots by these `fields` (host, paths, tags; '' = one group)")
	addFilterFlags(cmd, &o.filter)
	f.BoolVar(&o.prune, "prune", false, "run 'prune' afterwards")
	f.BoolVarP(&o.dryRun, "dry-run", "n", false, "only show what would be removed")
	addPruneFlags(cmd, &o.pf)
	return cmd
}

func runForget(cmd *cobra.Command, g *Globals, o *forgetOptions, args []string) error {
	ctx := cmd.Context()
	p := o.policy
	p.Within = o.within
	by, err := forget.ParseGroupBy(o.groupBy)
	if err != nil {
		return usageError("%v", err)
	}
	p.GroupBy = &by
	if len(args) > 0 && !p.Empty() {
		return usageError("give either snapshot IDs or --keep-* options, not both")
	}
	if len(args) == 0 {
		if err := p.Validate(); err != nil {
			return usageError("%v", err)
		}
	}
	var popts pruner.Options
	if o.prune {
		if popts, err = o.pf.options(g, o.dryRun); err != nil {
			return err
		}
	}

	cfg, err := g.LoadConfig(false)
	if err != nil {
		return fmt.Errorf("%w (forget needs the legal minimums of the config)", err)
	}
	r, err := g.OpenRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	all, loadErr := r.Snapshots(ctx)
	if loadErr != nil {
		if len(all) == 0 {
			return loadErr
		}
		g.Warnf("warning: %v\n", loadErr)
	}
	filter := o.filter.Filter()

	out := forgetJSON{MessageType: "forget_summary", DryRun: o.dryRun, Groups: []forgetGroupJSON{}}
	var groups []forget.GroupResult
	if len(args) > 0 {
		out.Policy = "explicit snapshots"
		gr := forget.GroupResult{Reasons: map[repo.ID][]string{}}
		seen := repo.IDSet{}
		for _, a := range args {
			s, err := repo.FindSnapshot(all, a, filter)
			if err != nil {
				return WithExit(ExitError, err)
			}
			if !seen.Has(s.ID) {
				seen.Insert(s.ID)
				gr.Remove = append(gr.Remove, s)
			}
		}
		repo.SortSnapshots(gr.Remove)
		if cfg != nil {
			var held []string
			for _, s := range gr.Remove {
				if ok, why := cfg.LegalHold(s, r.Now()); ok {
					held = append(held, fmt.Sprintf("%s (%s)", s.ID.Short(), why))
				}
			}
			if len(held) > 0 {
				return WithExit(ExitError, fmt.Errorf("refusing to forget %d snapshot(s) younger than their legal minimum retention, nothing removed: %s", len(held), strings.Join(held, "; ")))
			}
		}
		groups = []forget.GroupResult{gr}
	} else {
		out.Policy = p.String()
		var sel []*repo.Snapshot
		for _, s := range all {
			if filter.Match(s) {
				sel = append(sel, s)
			}
		}
		groups = forget.ApplyGroups(sel, p, r.Now())
		if cfg != nil {
			for i := range groups {
				if n := applyLegalHold(cfg, &groups[i], r.Now()); n > 0 {
					g.Warnf("legal minimum: keeping %d snapshot(s) of %v that the policy would forget\n", n, groups[i].Key)
				}
			}
		}
	}

	var errs []error
	for _, gr := range groups {
		if len(args) == 0 {
			g.Printf("snapshots of %v:\n", gr.Key)
			printForgetGroup(g, gr)
		}
		for _, s := range gr.Remove {
			if o.dryRun {
				out.Removed++
				if len(args) > 0 {
					g.Printf("would remove snapshot %s of %s\n", s.ID.Short(), s.Time.Local().Format("2006-01-02 15:04:05"))
				}
				continue
			}
			err := r.Backend().Remove(ctx, backend.Handle{Type: backend.SnapshotFile, Name: s.ID.String()})
			if errors.Is(err, backend.ErrProtected) {
				out.Protected = append(out.Protected, err.Error())
				g.Printf("kept snapshot %s: %v\n", s.ID.Short(), err)
				continue
			}
			if err != nil && !errors.Is(err, backend.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove snapshot %s: %w", s.ID.Short(), err))
				continue
			}
			out.Removed++
			if len(args) > 0 {
				g.Printf("removed snapshot %s of %s\n", s.ID.Short(), s.Time.Local().Format("2006-01-02 15:04:05"))
			}
		}
		out.Groups = append(out.Groups, toForgetGroupJSON(gr))
	}
	verb := "removed"
	if o.dryRun {
		verb = "would remove"
	}
	g.Printf("%s %d snapshot(s)\n", verb, out.Removed)
	if err := errors.Join(errs...); err != nil {
		for _, e := range errs {
			out.Errors = append(out.Errors, e.Error())
		}
		if g.JSON {
			_ = g.PrintJSON(out)
		}
		return err
	}

	if o.prune {
		g.Printf("\n")
		rep, err := runPrune(ctx, g, r, popts)
		if rep != nil {
			pj := pruneJSON(rep)
			out.Prune = &pj
		}
		if err != nil {
			if g.JSON {
				out.Errors = append(out.Errors, err.Error())
				_ = g.PrintJSON(out)
			}
			return err
		}
	}
	if g.JSON {
		return g.PrintJSON(out)
	}
	return nil
}

func printForgetGroup(g *Globals, gr forget.GroupResult) {
	if g.JSON || g.Quiet {
		return
	}
	tw := tabwriter.NewWriter(g.Stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "keep %d:\n", len(gr.Keep))
	for _, s := range gr.Keep {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", s.ID.Short(), s.Time.Local().Format("2006-01-02 15:04:05"), strings.Join(s.Tags, ","), strings.Join(gr.Reasons[s.ID], ", "))
	}
	fmt.Fprintf(tw, "remove %d:\n", len(gr.Remove))
	for _, s := range gr.Remove {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t\n", s.ID.Short(), s.Time.Local().Format("2006-01-02 15:04:05"), strings.Join(s.Tags, ","))
	}
	tw.Flush()
	fmt.Fprintln(g.Stdout)
}

func toForgetGroupJSON(gr forget.GroupResult) forgetGroupJSON {
	j := forgetGroupJSON{Group: gr.Key, Keep: []snapshotJSON{}, Remove: []snapshotJSON{}, Reasons: map[string][]string{}}
	for _, s := range gr.Keep {
		j.Keep = append(j.Keep, toSnapshotJSON(s))
		j.Reasons[s.ID.String()] = gr.Reasons[s.ID]
	}
	for _, s := range gr.Remove {
		j.Remove = append(j.Remove, toSnapshotJSON(s))
	}
	return j
}

// applyLegalHold moves the snapshots of gr that their class's legal
// minimum protects from Remove to Keep, with the reason, and returns
// how many it moved.
func applyLegalHold(cfg *config.Config, gr *forget.GroupResult, now time.Time) int {
	var remove []*repo.Snapshot
	n := 0
	for _, s := range gr.Remove {
		if ok, why := cfg.LegalHold(s, now); ok {
			gr.Keep = append(gr.Keep, s)
			gr.Reasons[s.ID] = append(gr.Reasons[s.ID], why)
			n++
			continue
		}
		remove = append(remove, s)
	}
	gr.Remove = remove
	repo.SortSnapshots(gr.Keep)
	return n
}
