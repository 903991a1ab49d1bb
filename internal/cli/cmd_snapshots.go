package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/einvault/einvault/internal/repo"
	"github.com/spf13/cobra"
)

type snapshotJSON struct {
	ID      string       `json:"id"`
	ShortID string       `json:"short_id"`
	Time    string       `json:"time"`
	Host    string       `json:"host"`
	Paths   []string     `json:"paths"`
	Tags    []string     `json:"tags"`
	Kind    string       `json:"kind"`
	Source  string       `json:"source"`
	Parent  string       `json:"parent,omitempty"`
	Tree    string       `json:"tree"`
	Summary repo.Summary `json:"summary"`
	// Meta is what a database or command source recorded (source.Metadata under "source").
	Meta map[string]json.RawMessage `json:"meta,omitempty"`
}

func toSnapshotJSON(s *repo.Snapshot) snapshotJSON {
	j := snapshotJSON{ID: s.ID.String(), ShortID: s.ID.Short(), Time: s.Time.Format("2006-01-02T15:04:05.000000000Z07:00"), Host: s.Host,
		Paths: s.Paths, Tags: s.Tags, Kind: s.Kind, Source: s.Source, Tree: s.Tree.String(), Summary: s.Summary, Meta: s.Meta}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	if s.Parent != nil {
		j.Parent = s.Parent.String()
	}
	return j
}

func addFilterFlags(cmd *cobra.Command, f *SnapshotFilterFlags) {
	cmd.Flags().StringArrayVar(&f.Hosts, "host", nil, "only snapshots of this host (repeat)")
	cmd.Flags().StringArrayVar(&f.Tags, "tag", nil, "only snapshots with this tag (repeat; comma = and)")
	cmd.Flags().StringArrayVar(&f.Paths, "path", nil, "only snapshots of exactly these paths (repeat)")
}

func newSnapshotsCmd(g *Globals) *cobra.Command {
	var ff SnapshotFilterFlags
	var latest int
	cmd := &cobra.Command{
		Use:   "snapshots [ID...]",
		Short: "List snapshots",
		Example: `  einvault snapshots
  einvault snapshots --tag invoices --host erp01
  einvault snapshots --json | jq '.[].id'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := g.OpenRepo(ctx)
			if err != nil {
				return err
			}
			all, loadErr := r.Snapshots(ctx)
			f := ff.Filter()
			var list []*repo.Snapshot
			for _, s := range all {
				if !f.Match(s) {
					continue
				}
				if len(args) > 0 {
					ok := false
					for _, a := range args {
						if strings.HasPrefix(s.ID.String(), a) {
							ok = true
						}
					}
					if !ok {
						continue
					}
				}
				list = append(list, s)
			}
			if latest > 0 && len(list) > latest {
				list = list[len(list)-latest:]
			}
			if g.JSON {
				out := make([]snapshotJSON, 0, len(list))
				for _, s := range list {
					out = append(out, toSnapshotJSON(s))
				}
				if err := g.PrintJSON(out); err != nil {
					return err
				}
				return loadErr
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTime\tHost\tKind\tTags\tFiles\tSize\tPaths")
			for _, s := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.ID.Short(), s.Time.Local().Format("2006-01-02 15:04:05"), s.Host, s.Kind,
					strings.Join(s.Tags, ","), s.Summary.TotalFiles, formatBytes(s.Summary.TotalBytes), strings.Join(s.Paths, " "))
			}
			tw.Flush()
			if !g.Quiet {
				fmt.Fprintf(g.Stdout, "%d snapshot(s)\n", len(list))
			}
			return loadErr
		},
	}
	addFilterFlags(cmd, &ff)
	cmd.Flags().IntVar(&latest, "latest", 0, "show only the last N snapshots")
	return cmd
}
