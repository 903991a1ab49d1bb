package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/einvault/einvault/internal/catalog"
	"github.com/einvault/einvault/internal/invoice"
	"github.com/spf13/cobra"
)

var yearRE = regexp.MustCompile(`^\d{4}$`)

func newInvoicesGapsCmd(g *Globals) *cobra.Command {
	var q catalog.GapQuery
	cmd := &cobra.Command{
		Use:   "gaps",
		Short: "Missing and duplicate invoice numbers per seller, form, series and year",
		Long: `Check the numbering of every sequence (seller, form, series, year of issue) in
a snapshot (the newest with a catalog by default): every number between the
lowest and the highest ever seen in any snapshot must be present once.

Listed per sequence: missing numbers, each with the newest snapshot that
still held it (restore it with 'einvault invoices restore KEY --snapshot ID');
numbers present twice with different content (duplicates); and numbers whose
cancellation or replacement is on record ('invoices import-status'), which
are not gaps. A number never seen in any snapshot has no snapshot to name.`,
		Example: `  einvault invoices gaps
  einvault invoices gaps --seller 0105987432-999 --series C21TAQ --year 2021
  einvault invoices gaps --snapshot 4f2a9c1e --json`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if q.Year != "" && !yearRE.MatchString(q.Year) {
				return usageError("--year %q: give a year such as 2024", q.Year)
			}
			ctx := cmd.Context()
			cs, err := openCatalog(ctx, g)
			if err != nil {
				return err
			}
			defer cs.Close()
			c := cs.cache
			if q.Snapshot, err = snapshotID(ctx, c, q.Snapshot); err != nil {
				return err
			}
			rep, err := c.Gaps(ctx, q)
			if err != nil {
				return WithExit(ExitError, err)
			}
			if g.JSON {
				return g.PrintJSON(rep)
			}
			printGaps(g, rep)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Seller, "seller", "", "only this seller's tax code")
	f.StringVar(&q.Series, "series", "", "only this series")
	f.StringVar(&q.Year, "year", "", "only invoices issued in this year")
	f.StringVar(&q.Snapshot, "snapshot", "", "check this snapshot instead of the newest")
	return cmd
}

func printGaps(g *Globals, rep *catalog.GapReport) {
	g.Printf("Snapshot %s: %d sequence(s), %d missing, %d duplicate, %d cancelled or replaced.\n",
		rep.Snapshot[:8], len(rep.Groups), rep.Missing, rep.Dupes, rep.Recorded)
	for _, gr := range rep.Groups {
		if len(gr.Missing) == 0 && len(gr.Duplicates) == 0 && len(gr.Recorded) == 0 {
			continue
		}
		g.Printf("%s/%s/%s %s: numbers %d-%d, %d present\n", gr.Seller, gr.Form, gr.Series, gr.Year, gr.First, gr.Last, gr.Present)
		for _, m := range gr.Missing {
			if m.LastSnapshot != "" {
				g.Printf("  missing   %d  last in snapshot %s (%s)\n", m.Number, m.LastSnapshot[:8], m.Key)
			} else {
				g.Printf("  missing   %d  in no snapshot\n", m.Number)
			}
		}
		if gr.Truncated {
			g.Printf("  ... more missing numbers not listed (see --json)\n")
		}
		for _, d := range gr.Duplicates {
			g.Printf("  duplicate %d  %d versions: %s\n", d.Number, len(d.Contents), strings.Join(d.Paths, ", "))
		}
		for _, rc := range gr.Recorded {
			g.Printf("  %-9s %d  (on record: %s)\n", rc.Status, rc.Number, rc.Source)
		}
	}
}

func newInvoicesStatsCmd(g *Globals) *cobra.Command {
	var snapshot string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count the invoices of a snapshot per seller, series, month and status",
		Long: `Count the invoices in a snapshot (the newest with a catalog by default) per
seller, series (SELLERMST/FORM/SERIES), month of issue and signature status,
for the monthly report. Signature statuses are "pending" until
'einvault invoices verify' has checked them. With --json one object is printed
whose integer field "total" is the number of invoices in the snapshot.`,
		Example: `  einvault invoices stats
  einvault invoices stats --snapshot 4f2a9c1e --json`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cs, err := openCatalog(ctx, g)
			if err != nil {
				return err
			}
			defer cs.Close()
			c := cs.cache
			sid, err := snapshotID(ctx, c, snapshot)
			if err != nil {
				return err
			}
			st, err := c.Stats(ctx, sid)
			if err != nil {
				return WithExit(ExitError, err)
			}
			if g.JSON {
				return g.PrintJSON(st)
			}
			g.Printf("Snapshot %s (%s): %d invoices in %d files, %d file(s) refused by the parser, %d duplicate key(s).\n",
				st.Snapshot[:8], st.Time, st.Total, st.Files, st.Rejected, st.Duplicate)
			for _, t := range []struct {
				title string
				m     map[string]int
			}{{"By seller", st.BySeller}, {"By series", st.BySeries}, {"By month", st.ByMonth}, {"By signature status", st.ByStatus}, {"By format", st.ByFormat}} {
				g.Printf("%s:\n", t.title)
				keys := make([]string, 0, len(t.m))
				for k := range t.m {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					g.Printf("  %-40s %8d\n", k, t.m[k])
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&snapshot, "snapshot", "", "count this snapshot instead of the newest")
	return cmd
}

func newInvoicesImportStatusCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import-status FILE...",
		Short: "Import tax-authority status records (portal JSON exports, TDiep messages)",
		Long: `Read what the tax authority has on record: JSON exports of the Vietnamese
e-invoice portal and TDiep messages (issued invoices in 200/202/203 messages,
cancellations, replacements and adjustments in 300 messages). The records are
stored in the repository (encrypted, beside the catalogs), so every machine
sees them: 'invoices gaps' lists cancelled and replaced numbers as such
instead of as gaps, and 'invoices reconcile' shows invoices the authority has
that the files or the database lack, and the reverse.`,
		Example: `  einvault invoices import-status export-2024-03.json
  einvault invoices import-status tdiep/*.xml --json`,
		Args: argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var recs []catalog.StatusRecord
			for _, a := range args {
				data, err := os.ReadFile(a)
				if err != nil {
					return usageError("read %s: %v", a, err)
				}
				rs, err := invoice.ParseStatusRecords(filepath.Base(a), data)
				if err != nil {
					return WithExit(ExitError, fmt.Errorf("%w (nothing was imported)", err))
				}
				for _, x := range rs {
					detail := x.Related
					if detail != "" {
						detail = "related " + detail
					}
					recs = append(recs, catalog.StatusRecord{Key: x.Key, Status: x.Status, Date: x.Date, Detail: detail,
						Source: filepath.Base(a) + " (" + x.Source + ")"})
				}
			}
			if len(recs) == 0 {
				return WithExit(ExitError, fmt.Errorf("no status records found in %s", strings.Join(args, ", ")))
			}
			r, err := g.OpenRepo(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			id, err := catalog.SaveStatus(ctx, r, recs)
			if err != nil {
				return err
			}
			c, err := openCatalogCache(ctx, g, r)
			if err != nil {
				return err
			}
			defer c.Close()
			counts := map[string]int{}
			for _, x := range recs {
				counts[x.Status]++
			}
			if g.JSON {
				return g.PrintJSON(map[string]any{"file": id.String(), "records": len(recs), "by_status": counts})
			}
			var parts []string
			for _, k := range sortedKeys(counts) {
				parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
			}
			g.Printf("Imported %d status record(s) (%s) into catalogs/%s.\n", len(recs), strings.Join(parts, ", "), id.Short())
			return nil
		},
	}
	return cmd
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
