package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/einvault/einvault/internal/journal"
	"github.com/einvault/einvault/internal/repo"
	"github.com/spf13/cobra"
)

// journaled are the commands every run of which is recorded in the
// journal, by hand or not.
var journaled = map[string]bool{"backup": true, "restore": true, "check": true, "prune": true, "forget": true, "sync": true, "repair": true, "drill": true}

// opRecord is what a command tells the journal about its run beyond the
// exit code.
type opRecord struct {
	start      time.Time
	kind       string
	files      int64
	bytesRead  int64
	bytesAdded int64
	snapshot   string
	source     string
	copies     []string
	// packs a backup wrote (for the job's verification).
	packs []repo.WrittenPack
	// drills: measured RTO and RPO, the targets (seconds) and the verdict
	rto, rpo, targetRTO, targetRPO float64
	detail                         string
}

// startedBy is who ran this process: user@host, or what the daemon says.
func (g *Globals) startedBy() string {
	if g.trigger != "" {
		return g.trigger
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return name + "@" + Hostname()
}

// stateDir is the state directory (see StateDirectory); a config that
// cannot be read counts as none here, so journaling never fails on it.
func (g *Globals) stateDir() string {
	c, err := g.LoadConfig(false)
	if err != nil {
		c = nil
	}
	return g.StateDirectory(c)
}

func (g *Globals) journalOptions() journal.Options {
	return journal.Options{Logger: g.log, SpoolDir: g.Getenv("EINVAULT_JOURNAL_SPOOL")}
}

// recordOp journals one run of cmd with its outcome. A failure to journal
// is reported on stderr; it turns a success into exit code 4 (degraded):
// the operation is done but the record the procedures require is not
// (it waits in the spool and is written by the next run).
func (g *Globals) recordOp(ctx context.Context, cmd *cobra.Command, runErr error, code int) int {
	if cmd == nil || !journaled[cmd.Name()] || g.op == nil || g.noJournal || code == ExitUsage {
		return code
	}
	rec := g.op
	e := journal.Entry{Op: cmd.Name(), Job: g.job, Kind: rec.kind, Start: rec.start, End: time.Now(), Files: rec.files,
		BytesRead: rec.bytesRead, BytesAdded: rec.bytesAdded, Snapshot: rec.snapshot, Source: rec.source, Copies: rec.copies,
		ExitCode: code, StartedBy: g.startedBy(), Host: Hostname(), Result: resultOf(code),
		RTO: rec.rto, RPO: rec.rpo, TargetRTO: rec.targetRTO, TargetRPO: rec.targetRPO, Detail: rec.detail}
	if runErr != nil {
		e.Error = oneLine(runErr)
	}
	ctx = context.WithoutCancel(ctx)
	dir := g.stateDir()
	j, err := journal.Open(ctx, dir, g.journalOptions())
	if err == nil {
		_, err = j.Record(ctx, e)
		j.Close()
	} else {
		where, serr := journal.SpoolOnly(dir, g.journalOptions(), e)
		if serr != nil {
			where = "not kept: " + serr.Error()
		}
		err = fmt.Errorf("%w: %v; the entry is %s", journal.ErrNotRecorded, err, where)
	}
	if err == nil {
		return code
	}
	fmt.Fprintf(g.Stderr, "einvault: WARNING: the journal entry of this %s was not written: %v\n", e.Op, err)
	if code == ExitOK {
		return ExitDegraded
	}
	return code
}

// resultOf maps an exit code to a journal result.
func resultOf(code int) string {
	switch code {
	case ExitOK:
		return journal.ResultOK
	case ExitPartial, ExitDegraded:
		return journal.ResultDegraded
	}
	return journal.ResultFailed
}

func newJournalCmd(g *Globals) *cobra.Command {
	var since, job, op string
	var failed bool
	var last int
	cmd := &cobra.Command{
		Use:   "journal [--since D] [--failed] [--job J]",
		Short: "Show the operation journal (every backup, restore, sync, check, drill and prune)",
		Long: `The journal records every backup, restore, sync, check, drill, forget and
prune, whether the daemon, 'einvault run' or a person started it: start,
end, duration, job, source, copies, kind, files and bytes read and added,
result (ok, degraded, failed, missed), error and who started it.

It lives in the state directory (--state-dir, EINVAULT_STATE_DIR, the
config's daemon.state_dir; default /var/lib/einvault as root, else
$XDG_STATE_HOME/einvault): the state database einvault.db, a readable
journal.log and journal.jsonl (one JSON object per line).

If an entry cannot be written (state directory full or read-only), the
command says so on stderr and exits 4 even though its operation succeeded;
the entry waits in a spool ($TMPDIR/einvault-journal-spool or
EINVAULT_JOURNAL_SPOOL) and is written by the next command that can.

--since takes a date (2026-10-01), a date and time (2026-10-01T08:00) or a
duration back from now (24h, 7d).`,
		Example: `  einvault journal --since 7d
  einvault journal --failed --job invoices-hourly
  einvault journal --since 2026-10-01 --json | jq 'select(.result != "ok")'`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := journal.Filter{Job: job, Op: op, Failed: failed, Limit: last}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return usageError("%v", err)
				}
				f.Since = t
			}
			dir := g.stateDir()
			if _, err := os.Stat(filepath.Join(dir, journal.DBFile)); errors.Is(err, os.ErrNotExist) {
				g.Warnf("no journal in %s yet: nothing has been recorded there (give --state-dir if it lives elsewhere)\n", dir)
				return nil
			}
			j, err := journal.Open(cmd.Context(), dir, g.journalOptions())
			if err != nil {
				return err
			}
			defer j.Close()
			entries, err := j.List(cmd.Context(), f)
			if err != nil {
				return err
			}
			if g.JSON {
				for _, e := range entries {
					if err := writeJSONLine(g.Stdout, e); err != nil {
						return err
					}
				}
				return nil
			}
			if len(entries) == 0 {
				g.Printf("no entries\n")
				return nil
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTART\tDURATION\tOP\tJOB\tKIND\tRESULT\tFILES\tREAD\tADDED\tBY\tERROR")
			for _, e := range entries {
				id := fmt.Sprint(e.ID)
				if e.ID == 0 {
					id = "queued"
				}
				jobName := e.Job
				if jobName == "" {
					jobName = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", id, e.Start.Local().Format("2006-01-02 15:04:05"),
					formatDuration(e.End.Sub(e.Start).Seconds()), e.Op, jobName, dash(e.Kind), e.Result, e.Files, formatBytes(uint64(max(e.BytesRead, 0))),
					formatBytes(uint64(max(e.BytesAdded, 0))), e.StartedBy, e.Error)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "only entries that started after this `date` or duration ago")
	f.BoolVar(&failed, "failed", false, "only failed, degraded and missed runs")
	f.StringVar(&job, "job", "", "only this `job`")
	f.StringVar(&op, "op", "", "only this operation (backup, restore, sync, check, drill, forget, prune)")
	f.IntVar(&last, "last", 0, "only the newest `N` entries")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseSince reads a date, a date and time, or a duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if strings.HasSuffix(s, "d") {
		var n int
		if _, err := fmt.Sscanf(s, "%dd", &n); err == nil && n >= 0 && fmt.Sprintf("%dd", n) == s {
			return now.AddDate(0, 0, -n), nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: give a date (2026-10-01), a date and time (2026-10-01T08:00) or a duration (24h, 7d)", s)
}
