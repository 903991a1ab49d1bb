package cli

import (
	"bufio"

	"github.com/einvault/einvault/internal/restorer"
	"github.com/spf13/cobra"
)

func newDumpCmd(g *Globals) *cobra.Command {
	var filter SnapshotFilterFlags
	cmd := &cobra.Command{
		Use:   "dump SNAPSHOT PATH",
		Short: "Write one file (or a directory as tar) from a snapshot to standard output",
		Long: `Write the content of the file at PATH inside SNAPSHOT to standard output,
streaming it without a temporary copy. A directory is written as a tar
archive of its content. PATH is the path inside the snapshot, as 'einvault
ls' shows it. Damaged data ends the output with exit code 5.`,
		Example: `  einvault dump latest /srv/invoices/2024/01/HD0000123.xml > HD0000123.xml
  einvault dump latest --tag db /einvoice.dump | pg_restore -d einvoice
  einvault dump 4f2a9c1e /srv/invoices/2024 | tar -tvf -`,
		Args: argsRange(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, set, err := g.openRepoForRestoreHealing(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			defer reportHealing(g, set)
			snap, _, err := g.FindSnapshot(ctx, r, args[0], filter.Filter())
			if err != nil {
				return err
			}
			w := bufio.NewWriterSize(g.Stdout, 1<<20)
			if err := restorer.New(r, restorer.Options{}).Dump(ctx, snap, args[1], w); err != nil {
				_ = w.Flush()
				return err
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&filter.Hosts, "host", nil, "for \"latest\": only snapshots of this host (repeat)")
	f.StringArrayVar(&filter.Tags, "tag", nil, "for \"latest\": only snapshots with these tags (repeat, or comma-separated)")
	f.StringArrayVar(&filter.Paths, "path", nil, "for \"latest\": only snapshots of exactly these paths (repeat)")
	return cmd
}
