package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/journal"
	"github.com/einvault/einvault/internal/notify"
	"github.com/einvault/einvault/internal/repo"
	"github.com/einvault/einvault/internal/report"
	"github.com/spf13/cobra"
)

func newReportCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Write reports for the head of IT and the auditors",
	}
	cmd.AddCommand(newReportMonthlyCmd(g))
	return cmd
}

type reportOptions struct {
	month   string
	out     string
	formats []string
	lang    string
	org     string
	mail    []string
	tz      string
}

func newReportMonthlyCmd(g *Globals) *cobra.Command {
	var o reportOptions
	cmd := &cobra.Command{
		Use:   "monthly",
		Short: "Write the monthly backup report (HTML and PDF with charts)",
		Long: `Monthly writes the report of one month: backup success rate per job,
data added and backup durations per day, the state of every copy with the
3-2-1-1-0 verdict, restores and drills with their RTO and RPO, invoices
protected per month, and every failure with how it was resolved (the next
successful run of the same job) and the mean time to repair.

The facts come from the journal in the state directory, the repository's
snapshots, its copies and its invoice catalogs. The files are written to
--out as einvault-report-YYYY-MM.html and .pdf; --mail sends them to
recipients of the config's notifications section that are on e-mail
channels. Languages: en, vi, zh (the PDF needs a font with the
language's glyphs: Debian fonts-dejavu-core, and fonts-arphic-gbsn00lp
for Chinese).`,
		Example: `  einvault report monthly --month 2026-10
  einvault report monthly --month 2026-10 --lang vi --out /srv/reports --mail head-of-it
  einvault report monthly --format html --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runReportMonthly(cmd.Context(), g, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.month, "month", "", "month to report, YYYY-MM (default: the previous month)")
	f.StringVar(&o.out, "out", ".", "directory to write the report files to")
	f.StringSliceVar(&o.formats, "format", []string{"html", "pdf"}, "formats to write: html, pdf")
	f.StringVar(&o.lang, "lang", "en", "language: en, vi or zh")
	f.StringVar(&o.org, "org", "", "organisation name printed under the title")
	f.StringSliceVar(&o.mail, "mail", nil, "e-mail the files to these recipients of the notifications section")
	f.StringVar(&o.tz, "tz", "", "time zone of the report, e.g. Asia/Ho_Chi_Minh (default: local)")
	return cmd
}

type reportResult struct {
	Month   string          `json:"month"`
	Files   []string        `json:"files"`
	Mailed  []string        `json:"mailed,omitempty"`
	Summary *report.Summary `json:"summary"`
}

func runReportMonthly(ctx context.Context, g *Globals, o reportOptions) error {
	loc := time.Local
	if o.tz != "" {
		l, err := time.LoadLocation(o.tz)
		if err != nil {
			return usageError("--tz %q: %v (use an IANA name such as Asia/Ho_Chi_Minh)", o.tz, err)
		}
		loc = l
	}
	now := time.Now().In(loc)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, loc).AddDate(0, -1, 0)
	if o.month != "" {
		m, err := time.ParseInLocation("2006-01", o.month, loc)
		if err != nil {
			return usageError("--month %q: write the month as YYYY-MM, e.g. 2026-10", o.month)
		}
		month = m
	}
	okLang := false
	for _, l := range report.Languages {
		okLang = okLang || l == o.lang
	}
	if !okLang {
		return usageError("--lang %q: use en, vi or zh", o.lang)
	}
	for _, f := range o.formats {
		if f != "html" && f != "pdf" {
			return usageError("--format %q: use html, pdf or both", f)
		}
	}
	cfg, err := g.LoadConfig(false)
	if err != nil {
		return err
	}
	m, err := gatherMonth(ctx, g, month, now)
	if err != nil {
		return err
	}
	m.Org = o.org
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("report directory: %w", err)
	}
	base := filepath.Join(o.out, "einvault-report-"+month.Format("2006-01"))
	res := reportResult{Month: month.Format("2006-01")}
	for _, f := range o.formats {
		var data []byte
		switch f {
		case "html":
			data = report.HTML(m, o.lang)
		case "pdf":
			if data, err = report.PDF(m, o.lang, g.Getenv); err != nil {
				return err
			}
		}
		path := base + "." + f
		if err := writeFileAtomic(path, data); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		res.Files = append(res.Files, path)
	}
	sum := report.Summarize(m)
	res.Summary = &sum
	if len(o.mail) > 0 {
		if cfg == nil {
			return usageError("--mail needs the notifications section of a config file (--config)")
		}
		subject := fmt.Sprintf("[einvault] %s %s", reportTitle(o.lang), month.Format("2006-01"))
		body := fmt.Sprintf("%s %s\n\n%d operations, %.1f%% successful, %d unresolved failures.\n",
			reportTitle(o.lang), month.Format("2006-01"), sum.TotalRuns, 100*sum.SuccessRate, sum.Unresolved)
		if err := notify.MailFiles(ctx, cfg.Notifications, notify.Env{Getenv: g.Getenv}, o.mail, subject, body, res.Files); err != nil {
			return fmt.Errorf("the report was written to %s but not mailed: %w", strings.Join(res.Files, ", "), err)
		}
		res.Mailed = o.mail
	}
	if g.JSON {
		return g.PrintJSON(res)
	}
	for _, f := range res.Files {
		g.Printf("wrote %s\n", f)
	}
	g.Printf("%s: %d operations, %.1f%% successful, %d failures (%d unresolved)\n", res.Month, sum.TotalRuns, 100*sum.SuccessRate, len(sum.Failures), sum.Unresolved)
	if len(res.Mailed) > 0 {
		g.Printf("mailed to %s\n", strings.Join(res.Mailed, ", "))
	}
	return nil
}

func reportTitle(lang string) string {
	switch lang {
	case "vi":
		return "Báo cáo sao lưu hằng tháng"
	case "zh":
		return "月度备份报告"
	}
	return "Monthly backup report"
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// gatherMonth collects the report's facts: the journal's operations of
// the month, and, when a repository is configured, its snapshots, copies
// and invoice catalogs.
func gatherMonth(ctx context.Context, g *Globals, month, now time.Time) (*report.Month, error) {
	from, to := report.Bounds(month)
	m := &report.Month{Month: month, Generated: now}
	cfg, _ := g.LoadConfig(false)
	dir := g.StateDirectory(cfg)
	j, err := journal.Open(ctx, dir, g.journalOptions())
	if err != nil {
		return nil, fmt.Errorf("open the journal in %s: %w", dir, err)
	}
	entries, err := j.List(ctx, journal.Filter{Since: from})
	j.Close()
	if err != nil {
		return nil, fmt.Errorf("read the journal: %w", err)
	}
	for _, e := range entries {
		if !e.Start.Before(to) {
			continue
		}
		job := e.Job
		if job == "" {
			job = "manual"
		}
		dur := e.End.Sub(e.Start)
		switch e.Op {
		case "backup", "sync", "check", "prune", "forget", "repair", "binlog":
			if e.Op != "backup" {
				job = job + " (" + e.Op + ")"
			}
			m.Runs = append(m.Runs, report.Run{Start: e.Start, Duration: dur, Job: job, Op: e.Op, Kind: e.Kind,
				Result: reportResultOf(e.Result), BytesRead: e.BytesRead, BytesAdded: e.BytesAdded, Error: e.Error})
		case "restore", "drill":
			what := e.Snapshot
			if e.Source != "" {
				what = e.Source + " " + what
			}
			rec := report.Recovery{Time: e.Start, Op: e.Op, What: strings.TrimSpace(what), Result: reportResultOf(e.Result), RTO: dur}
			if e.Op == "drill" {
				// A drill measured its own RTO (restore and verification,
				// not clean-up) and RPO, against the class's targets.
				if e.Job != "" {
					rec.What = strings.TrimSpace(e.Job + " " + shortIDs(e.Snapshot))
				}
				if e.RTO > 0 {
					rec.RTO = seconds(e.RTO)
				}
				rec.RPO, rec.TargetRTO, rec.TargetRPO = seconds(e.RPO), seconds(e.TargetRTO), seconds(e.TargetRPO)
			}
			m.Recovery = append(m.Recovery, rec)
		}
	}
	if _, err := g.repoLocation(); err != nil {
		m.Repo = "(no repository configured)"
		return m, nil
	}
	r, err := g.OpenRepo(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	m.Repo = r.Backend().Location()
	snaps, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	m.Snapshots = len(snaps)
	if st, err := g.copiesStatus(ctx, r, 20*time.Second); err == nil {
		for _, c := range st.Copies {
			rc := report.Copy{Name: c.Name, Kind: string(c.Kind), Reachable: c.Reachable, Errors: c.VerifyErrors, Behind: c.SnapshotsMissing}
			if c.LastSync != nil {
				rc.LastSync = *c.LastSync
			}
			if c.LastVerify != nil {
				rc.LastVerify = *c.LastVerify
			}
			m.Copies = append(m.Copies, rc)
		}
		v := &report.Verdict{Met: st.Verdict.Met}
		for _, c := range st.Verdict.Criteria {
			v.Criteria = append(v.Criteria, report.Criterion{Key: c.Key, Want: c.Want, Have: c.Have, Met: c.Met})
		}
		m.Verdict = v
	} else {
		g.Warnf("warning: copies status: %v\n", err)
	}
	m.Invoices = g.invoicesPerMonth(ctx, r, snaps, to, 12)
	return m, nil
}

func reportResultOf(r string) string {
	switch r {
	case journal.ResultOK:
		return report.ResultOK
	case journal.ResultDegraded:
		return report.ResultDegraded
	}
	return report.ResultFailed
}

// invoicesPerMonth counts, for each of the n months ending at end, the
// invoices in the newest snapshot with an invoice catalog taken before
// the month ended: the invoices the backups protected that month.
func (g *Globals) invoicesPerMonth(ctx context.Context, r *repo.Repository, snaps []*repo.Snapshot, end time.Time, n int) []report.MonthCount {
	var cataloged []*repo.Snapshot
	for _, s := range snaps {
		if s.Catalog != nil {
			cataloged = append(cataloged, s)
		}
	}
	if len(cataloged) == 0 {
		return nil
	}
	sort.Slice(cataloged, func(i, j int) bool { return cataloged[i].Time.Before(cataloged[j].Time) })
	c, err := openCatalogCache(ctx, g, r)
	if err != nil {
		g.Warnf("warning: invoices per month: %v\n", err)
		return nil
	}
	defer c.Close()
	var out []report.MonthCount
	for i := n; i >= 1; i-- {
		monthEnd := end.AddDate(0, -(i - 1), 0)
		label := monthEnd.AddDate(0, -1, 0).Format("2006-01")
		var last *repo.Snapshot
		for _, s := range cataloged {
			if s.Time.Before(monthEnd) {
				last = s
			}
		}
		mc := report.MonthCount{Month: label}
		if last != nil {
			st, err := c.Stats(ctx, last.ID.String())
			if err != nil {
				g.Warnf("warning: invoices of snapshot %s: %v\n", last.ID.Short(), err)
			} else {
				mc.Count = int64(st.Total)
			}
		}
		out = append(out, mc)
	}
	return out
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// shortIDs shortens a comma-separated list of snapshot IDs.
func shortIDs(ids string) string {
	var out []string
	for _, id := range strings.Split(ids, ",") {
		if len(id) > 8 {
			id = id[:8]
		}
		if id != "" {
			out = append(out, id)
		}
	}
	return strings.Join(out, ",")
}
