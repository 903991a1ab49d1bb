package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/location"
	"github.com/einvault/einvault/internal/replica"
	"github.com/einvault/einvault/internal/repo"
	"github.com/spf13/cobra"
)

func newCopiesCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "copies",
		Short: "Manage the copies of the repository (3-2-1-1-0)",
		Long: `A repository can have named copies: the same repository (same keys, same IDs)
in other places, such as a NAS, an S3 bucket and an SFTP server. The copy list
is stored in the repository itself, so any machine that opens it knows them.
'einvault backup' writes to the repository and then brings every reachable
copy up to date; 'einvault sync' does so on demand; restore, dump and check
read a damaged or missing file from the next copy; 'einvault repair' rewrites
damaged files from a good copy.`,
		Example: `  einvault copies add nas /mnt/nas/einvault --kind nas
  einvault copies add minio s3:https://s3.example.net/einvault --offsite --immutable
  einvault copies add cloud rclone:onedrive:einvault --offsite
  einvault copies status
  einvault sync`,
	}
	cmd.AddCommand(newCopiesAddCmd(g), newCopiesListCmd(g), newCopiesRemoveCmd(g), newCopiesStatusCmd(g))
	return cmd
}

func newCopiesAddCmd(g *Globals) *cobra.Command {
	var kind string
	var offsite, immutable bool
	var order int
	cmd := &cobra.Command{
		Use:   "add NAME LOCATION [--kind disk|nas|s3|sftp|cloud] [--offsite] [--immutable]",
		Short: "Add a copy (a local path that does not exist yet is created)",
		Long: `Add a copy of the repository at LOCATION (a path, s3:..., sftp:... or rclone:...).
The kind of media is guessed from the location (disk for a path) unless
--kind says otherwise; --offsite and --immutable describe the copy for the
3-2-1-1-0 verdict. The data arrives with the next 'einvault sync' or backup.`,
		Example: `  einvault copies add nas /mnt/nas/einvault --kind nas
  einvault copies add minio s3:http://10.0.0.5:9000/einvault --offsite --immutable`,
		Args: argsRange(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name, loc := args[0], args[1]
			if err := replica.ValidName(name); err != nil {
				return usageError("%v", err)
			}
			k := replica.GuessKind(loc)
			if kind != "" {
				var err error
				if k, err = replica.ParseKind(kind); err != nil {
					return usageError("%v", err)
				}
			}
			if replica.IsLocal(loc) {
				loc = replica.NormalizeLocation(loc)
			}
			r, err := g.OpenRepo(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			cs, err := g.loadCopySet(ctx, r, true, false)
			if err != nil {
				return err
			}
			defer cs.close()
			if cs.list.Find(name) >= 0 || cs.selfCopy().Name == name {
				return usageError("a copy called %q exists already (see 'einvault copies list')", name)
			}
			if cs.list.FindLocation(loc) >= 0 || replica.NormalizeLocation(loc) == replica.NormalizeLocation(r.Backend().Location()) {
				return usageError("%s is already a copy of this repository", loc)
			}
			be, err := location.Create(ctx, loc, g.LocationOptions())
			if errors.Is(err, location.ErrAlreadyExists) {
				be, err = location.Open(ctx, loc, g.LocationOptions())
				if err == nil {
					mine, _ := backend.LoadAll(ctx, r.Backend(), backend.Handle{Type: backend.ConfigFile, Name: "config"})
					theirs, _ := backend.LoadAll(ctx, be, backend.Handle{Type: backend.ConfigFile, Name: "config"})
					if string(mine) != string(theirs) {
						be.Close()
						return fmt.Errorf("%s holds another repository: choose an empty location", loc)
					}
				}
			}
			if err != nil {
				if errors.Is(err, location.ErrUsage) {
					return usageError("%v", err)
				}
				return fmt.Errorf("copy %q: %w", name, err)
			}
			defer be.Close()
			// A new copy becomes the same repository at once: key files
			// first, then config (the data follows with the next sync).
			self := replica.Member{Copy: cs.selfCopy(), Backend: r.Backend()}
			dst := replica.Member{Copy: replica.Copy{Name: name, Location: loc}, Backend: be}
			for _, ft := range []backend.FileType{backend.KeyFile, backend.ConfigFile} {
				err := r.Backend().List(ctx, ft, func(fi backend.FileInfo) error {
					h := backend.Handle{Type: ft, Name: fi.Name}
					if _, err := be.Stat(ctx, h); err == nil {
						return nil
					}
					return replica.CopyFile(ctx, self, dst, h)
				})
				if err != nil {
					return fmt.Errorf("copy %q: prepare %s: %w", name, loc, err)
				}
			}
			cs.update(cs.selfCopy().Name, func(*replica.Copy) {})
			if !cmd.Flags().Changed("order") {
				order = cs.list.NextOrder()
			}
			c := replica.Copy{Name: name, Location: loc, Kind: k, Offsite: offsite, Immutable: immutable, Order: order, Behind: true}
			cs.list.Copies = append(cs.list.Copies, c)
			if err := cs.list.Validate(); err != nil {
				return usageError("%v", err)
			}
			if err := cs.save(ctx, g, append(cs.members, dst)); err != nil {
				return err
			}
			if g.JSON {
				return g.PrintJSON(map[string]any{"message_type": "copy_added", "copy": c})
			}
			g.Printf("Added copy %q (%s, %s). Run 'einvault sync' to copy the data there.\n", name, k, loc)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kind, "kind", "", "media kind: disk, nas, s3, sftp or cloud (default: from the location)")
	f.BoolVar(&offsite, "offsite", false, "the copy is in another place (counts as off-site)")
	f.BoolVar(&immutable, "immutable", false, "the copy cannot be deleted or changed (object lock, WORM)")
	f.IntVar(&order, "order", 0, "read and fail-over order (lower first; default: after the others)")
	return cmd
}

func newCopiesListCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the copies of the repository",
		Example: "  einvault copies list\n  einvault copies list --json",
		Args:    argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := g.OpenRepo(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			cs, err := g.loadCopySet(ctx, r, false, false)
			if err != nil {
				return err
			}
			copies := cs.list.Sorted()
			if g.JSON {
				if copies == nil {
					copies = []replica.Copy{}
				}
				return g.PrintJSON(copies)
			}
			if len(copies) == 0 {
				g.Printf("No copies. Add one with 'einvault copies add NAME LOCATION'.\n")
				return nil
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tOFF-SITE\tIMMUTABLE\tLAST SYNC\tLOCATION")
			for _, c := range copies {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Kind, yesNo(c.Offsite), yesNo(c.Immutable), fmtTime(c.LastSync), c.Location)
			}
			return tw.Flush()
		},
	}
}

func newCopiesRemoveCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:     "remove NAME",
		Short:   "Remove a copy from the list (its data is left in place)",
		Example: `  einvault copies remove old-nas`,
		Args:    argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := g.OpenRepo(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			cs, err := g.loadCopySet(ctx, r, true, false)
			if err != nil {
				return err
			}
			defer cs.close()
			i := cs.list.Find(args[0])
			if i < 0 {
				return usageError("no copy called %q (see 'einvault copies list')", args[0])
			}
			if i == cs.self {
				return usageError("copy %q is the repository given with -r: open another copy with -r to remove this one", args[0])
			}
			cs.list.Copies = append(cs.list.Copies[:i:i], cs.list.Copies[i+1:]...)
			if i < cs.self {
				cs.self--
			}
			if err := cs.save(ctx, g, cs.members); err != nil {
				return err
			}
			if g.JSON {
				return g.PrintJSON(map[string]any{"message_type": "copy_removed", "copy": args[0]})
			}
			g.Printf("Removed copy %q from the list; its data was left in place.\n", args[0])
			return nil
		},
	}
}

func newCopiesStatusCmd(g *Globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every copy's state and the 3-2-1-1-0 verdict",
		Long: `Show, per copy: reachable, latency, free space, snapshots missing and bytes
behind (compared with all reachable copies together), the last successful
sync and the last full verification, and a forecast of the days until the
copy is full at the growth rate of the last four weeks. The verdict checks
3 copies, 2 kinds of media, 1 off-site, 1 immutable and 0 errors at the last
full verification ('einvault check --all-copies --read-data').

The exit code is 0 even when the verdict is not met: the verdict is data.`,
		Example: "  einvault copies status\n  einvault copies status --json",
		Args:    argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := g.OpenRepo(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			st, err := g.copiesStatus(ctx, r, timeout)
			if err != nil {
				return err
			}
			if g.JSON {
				return g.PrintJSON(st)
			}
			return writeStatus(g, st)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 20*time.Second, "time allowed to probe each copy")
	return cmd
}

func writeStatus(g *Globals, st replica.Status) error {
	if g.Quiet {
		return nil
	}
	tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COPY\tKIND\tREACHABLE\tLATENCY\tFREE\tFULL IN\tMISSING\tBEHIND\tLAST SYNC\tLAST VERIFIED")
	for _, c := range st.Copies {
		free, full := "?", "?"
		if c.FreeBytes != nil {
			free = formatBytes(uint64(*c.FreeBytes))
		}
		if c.DaysUntilFull != nil {
			full = fmt.Sprintf("%.0f days", *c.DaysUntilFull)
		}
		lv := "never"
		if c.LastVerify != nil {
			lv = fmt.Sprintf("%s (%d errors)", c.LastVerify.Format("2006-01-02 15:04"), c.VerifyErrors)
		}
		ls := "never"
		if c.LastSync != nil {
			ls = c.LastSync.Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.0f ms\t%s\t%s\t%d snapshots\t%s\t%s\t%s\n", c.Name, c.Kind, yesNo(c.Reachable), c.LatencyMS, free, full,
			c.SnapshotsMissing, formatBytes(uint64(c.BytesBehind)), ls, lv)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range st.Copies {
		if c.Error != "" {
			fmt.Fprintf(g.Stdout, "problem: %s\n", c.Error)
		}
	}
	fmt.Fprintf(g.Stdout, "3-2-1-1-0: %s", verdictLine(st.Verdict))
	fmt.Fprintf(g.Stdout, "\ngrowth: %s/day over the last 4 weeks\n", formatBytes(uint64(st.GrowthBytesPerDay)))
	return nil
}

// copiesStatus probes every copy of r and evaluates the 3-2-1-1-0 rule.
func (g *Globals) copiesStatus(ctx context.Context, r *repo.Repository, timeout time.Duration) (replica.Status, error) {
	cs, err := g.loadCopySet(ctx, r, true, false)
	if err != nil {
		return replica.Status{}, err
	}
	defer cs.close()
	snaps, _ := r.Snapshots(ctx)
	var pts []replica.GrowthPoint
	for _, s := range snaps {
		pts = append(pts, replica.GrowthPoint{Time: s.Time, BytesAdded: int64(s.Summary.BytesStored)})
		if s.Summary.BytesStored == 0 {
			pts[len(pts)-1].BytesAdded = int64(s.Summary.BytesAdded)
		}
	}
	st := replica.ComputeStatus(ctx, cs.members, replica.StatusOptions{Now: r.Now, Growth: pts, Probe: replica.PreflightOptions{Timeout: timeout}})
	for _, f := range cs.failed {
		i := cs.list.Find(f.Copy)
		if i < 0 {
			continue
		}
		c := cs.list.Copies[i]
		st.Copies = append(st.Copies, replica.CopyStatus{Name: c.Name, Location: c.Location, Kind: c.Kind, Offsite: c.Offsite, Immutable: c.Immutable, Order: c.Order, Error: f.Error, VerifyErrors: c.VerifyErrors})
	}
	st.Verdict = replica.Evaluate(st.Copies)
	return st, nil
}

// verdictLine is the 3-2-1-1-0 verdict in one line: "MET; 3 copies 3/3 ok; ...".
func verdictLine(v replica.Verdict) string {
	var b strings.Builder
	if v.Met {
		b.WriteString("MET")
	} else {
		b.WriteString("NOT MET")
	}
	for _, c := range v.Criteria {
		mark := "ok"
		if !c.Met {
			mark = "missing"
		}
		fmt.Fprintf(&b, "; %s %d/%d %s", c.Rule, c.Have, c.Want, mark)
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04")
}
