package cli

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/einvault/einvault/internal/catalog"
	"github.com/spf13/cobra"
)

type invoicesFindOptions struct {
	q        catalog.Query
	min, max string
	snapshot string
}

var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

func newInvoicesFindCmd(g *Globals) *cobra.Command {
	var o invoicesFindOptions
	cmd := &cobra.Command{
		Use:   "find",
		Short: "Find invoices in all snapshots, with their history",
		Long: `List every invoice matching all the given filters, across all snapshots, with
its history: the snapshot it was first and last seen in, its versions (each
distinct content, with the snapshots holding it), whether its content changed
between snapshots, whether two versions sit in one snapshot (duplicate), and
whether it is gone from the newest snapshot of the same paths (deleted).

--number compares numerically when the number is digits only (11 finds
00000011). --from/--to are issue dates (YYYY-MM-DD, inclusive), --min/--max
the amount payable (inclusive). At most --limit invoices are listed.

--key names one invoice exactly. While the local catalog cache lacks
snapshots (a new machine after a disaster), --key alone is answered from the
snapshots' catalogs through their look-up index instead of filling the cache
first; signature statuses are then those recorded at backup.`,
		Example: `  einvault invoices find --number 11 --series C21TAQ
  einvault invoices find --seller 0105987432-999 --from 2024-01-01 --to 2024-03-31
  einvault invoices find --buyer 1818944089 --min 1000000 --json
  einvault invoices find --key 0105987432-999/1/C21TAQ/11`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInvoicesFind(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.q.Key, "key", "", "exact key SELLERMST/FORM/SERIES/NUMBER (answered from the catalogs' look-up index while the cache lacks snapshots)")
	f.StringVar(&o.q.Number, "number", "", "invoice number (SHDon)")
	f.StringVar(&o.q.Series, "series", "", "series (KHHDon), e.g. C21TAQ")
	f.StringVar(&o.q.Form, "form", "", "form (KHMSHDon), e.g. 1")
	f.StringVar(&o.q.Seller, "seller", "", "seller's tax code (MST)")
	f.StringVar(&o.q.Buyer, "buyer", "", "buyer's tax code")
	f.StringVar(&o.q.From, "from", "", "issued on or after this date (YYYY-MM-DD)")
	f.StringVar(&o.q.To, "to", "", "issued on or before this date (YYYY-MM-DD)")
	f.StringVar(&o.min, "min", "", "amount payable at least")
	f.StringVar(&o.max, "max", "", "amount payable at most")
	f.StringVar(&o.snapshot, "snapshot", "", "only invoices in this snapshot")
	f.IntVar(&o.q.Limit, "limit", 1000, "list at most this many invoices")
	return cmd
}

func parseAmountFlag(name, s string) (*float64, error) {
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
	if err != nil {
		return nil, usageError("--%s %q is not an amount", name, s)
	}
	return &v, nil
}

func runInvoicesFind(ctx context.Context, g *Globals, o invoicesFindOptions) error {
	for name, d := range map[string]string{"from": o.q.From, "to": o.q.To} {
		if d != "" && !dateRE.MatchString(d) {
			return usageError("--%s %q: give a date as YYYY-MM-DD", name, d)
		}
	}
	var err error
	if o.q.Min, err = parseAmountFlag("min", o.min); err != nil {
		return err
	}
	if o.q.Max, err = parseAmountFlag("max", o.max); err != nil {
		return err
	}
	if o.q.Limit <= 0 {
		return usageError("--limit must be positive")
	}
	if o.q.Key != "" && strings.Count(o.q.Key, "/") != 3 {
		return usageError("--key %q: give SELLERMST/FORM/SERIES/NUMBER (e.g. 0105987432-999/1/C21TAQ/11)", o.q.Key)
	}
	if done, err := findKeyCold(ctx, g, o); done || err != nil {
		return err
	}
	cs, err := openCatalog(ctx, g)
	if err != nil {
		return err
	}
	defer cs.Close()
	c := cs.cache
	if o.q.Snapshot, err = snapshotID(ctx, c, o.snapshot); err != nil {
		return err
	}
	ms, err := c.Find(ctx, o.q)
	if err != nil {
		return err
	}
	if g.JSON {
		if ms == nil {
			ms = []catalog.Match{}
		}
		return g.PrintJSON(map[string]any{"count": len(ms), "truncated": len(ms) == o.q.Limit, "invoices": ms})
	}
	printMatches(g, ms)
	if len(ms) == o.q.Limit {
		g.Warnf("only the first %d invoices are listed: narrow the filters or raise --limit\n", o.q.Limit)
	}
	return nil
}

// findKeyCold answers 'find --key KEY' (no other filter) from the
// snapshots' catalogs when the cache lacks snapshots, instead of filling
// the cache first (which reads every entry of every catalog). done is
// false when the cache is current or the query is not a bare key.
func findKeyCold(ctx context.Context, g *Globals, o invoicesFindOptions) (done bool, err error) {
	q := o.q
	q.Key, q.Limit = "", 0
	if o.q.Key == "" || q != (catalog.Query{}) || o.min != "" || o.max != "" {
		return false, nil
	}
	r, err := g.OpenRepo(ctx)
	if err != nil {
		return false, err
	}
	defer r.Close()
	snaps, err := r.Snapshots(ctx)
	if err != nil && len(snaps) == 0 {
		return false, err
	}
	p, err := g.cachePath(r.Config().ID)
	if err != nil {
		return false, err
	}
	c, err := catalog.OpenCache(ctx, p, r.Now)
	if err != nil {
		return false, err
	}
	current, err := c.Current(ctx, snaps)
	c.Close()
	if err != nil || current {
		return false, err
	}
	g.Logger().Info("invoice catalog cache is not up to date: looking the invoice up in the catalogs directly")
	if o.snapshot != "" {
		sel, err := catalog.SelectSnapshots(snaps, o.snapshot)
		if err != nil {
			if errors.Is(err, catalog.ErrNoSnapshot) {
				return true, WithExit(ExitError, err)
			}
			return true, err
		}
		o.snapshot = sel[0].ID.String()
	}
	m, err := catalog.HistoryInCatalogs(ctx, r, snaps, o.q.Key)
	if err != nil {
		return true, err
	}
	ms := []catalog.Match{}
	if m != nil && (o.snapshot == "" || slices.ContainsFunc(m.Versions, func(v catalog.Version) bool {
		return slices.ContainsFunc(v.Snapshots, func(s catalog.Seen) bool { return s.Snapshot == o.snapshot })
	})) {
		ms = append(ms, *m)
	}
	if g.JSON {
		return true, g.PrintJSON(map[string]any{"count": len(ms), "truncated": false, "invoices": ms, "found_in": "catalog"})
	}
	printMatches(g, ms)
	return true, nil
}

func printMatches(g *Globals, ms []catalog.Match) {
	if len(ms) == 0 {
		g.Printf("No invoice matches.\n")
		return
	}
	for _, m := range ms {
		var flags []string
		if m.Deleted {
			flags = append(flags, "DELETED")
		}
		if m.Changed {
			flags = append(flags, "CHANGED")
		}
		if m.Duplicate {
			flags = append(flags, "DUPLICATE")
		}
		fl := ""
		if len(flags) > 0 {
			fl = "  [" + strings.Join(flags, ", ") + "]"
		}
		g.Printf("%s  %s  %s %s  buyer %s%s\n", m.Key, orDash(m.IssueDate), orDash(m.Total), m.Currency, orDash(m.Buyer), fl)
		g.Printf("  first seen %s (%s), last seen %s (%s), %d version(s)\n",
			m.FirstSeen.Time.UTC().Format("2006-01-02 15:04"), m.FirstSeen.Snapshot[:8],
			m.LastSeen.Time.UTC().Format("2006-01-02 15:04"), m.LastSeen.Snapshot[:8], len(m.Versions))
		for i, v := range m.Versions {
			inner := ""
			if v.Inner != "" {
				inner = " [" + v.Inner + "]"
			}
			g.Printf("  v%d %s  %s%s  %s, %d snapshot(s) %s..%s\n", i+1, v.ContentID[:16], v.LastSeen.Path, inner, v.Status,
				len(v.Snapshots), v.FirstSeen.Snapshot[:8], v.LastSeen.Snapshot[:8])
		}
	}
	g.Printf("%d invoice(s).\n", len(ms))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
