package cli

import (
	"fmt"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/repo"
	"github.com/spf13/cobra"
)

type repoStats struct {
	Snapshots     int     `json:"snapshots"`
	Packs         int     `json:"packs"`
	Blobs         int     `json:"blobs"`
	RawBytes      uint64  `json:"uncompressed_bytes"`
	StoredBytes   uint64  `json:"stored_blob_bytes"`
	StorageBytes  uint64  `json:"storage_bytes"`
	Compression   float64 `json:"compression_ratio"`
	RestoreFiles  uint64  `json:"restore_files,omitempty"`
	RestoreBytes  uint64  `json:"restore_bytes,omitempty"`
	DedupSnapshot string  `json:"snapshot,omitempty"`
}

func newStatsCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stats [SNAPSHOT]",
		Short: "Show repository size, compression and deduplication",
		Long: `Show the size of the repository: snapshots, packs, blobs, bytes before and
after compression, and space used in storage. With a SNAPSHOT, also the
number and size of the files it would restore.`,
		Example: "  einvault stats\n  einvault stats latest --json",
		Args:    argsRange(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := g.OpenRepoIndexed(ctx)
			if err != nil {
				return err
			}
			snaps, err := r.Snapshots(ctx)
			if err != nil && len(snaps) == 0 {
				return err
			}
			var st repoStats
			st.Snapshots = len(snaps)
			st.Packs = len(r.Index().Packs())
			r.Index().Each(func(id repo.ID, p repo.PackInfo, e repo.IndexEntry) {
				st.Blobs++
				st.RawBytes += uint64(e.RawLength)
				st.StoredBytes += uint64(e.Length)
			})
			for _, t := range backend.AllFileTypes {
				err := r.Backend().List(ctx, t, func(fi backend.FileInfo) error {
					st.StorageBytes += uint64(fi.Size)
					return nil
				})
				if err != nil {
					return err
				}
			}
			if st.StoredBytes > 0 {
				st.Compression = float64(st.RawBytes) / float64(st.StoredBytes)
			}
			if len(args) == 1 {
				s, _, err := g.FindSnapshot(ctx, r, args[0], repo.SnapshotFilter{})
				if err != nil {
					return err
				}
				st.DedupSnapshot = s.ID.String()
				err = repo.Walk(ctx, r, s.Tree, "/", func(p string, n *repo.Node) error {
					if n.Type == repo.NodeFile {
						st.RestoreFiles++
						st.RestoreBytes += n.Size
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			if g.JSON {
				return g.PrintJSON(st)
			}
			fmt.Fprintf(g.Stdout, "Snapshots:          %d\n", st.Snapshots)
			fmt.Fprintf(g.Stdout, "Packs:              %d\n", st.Packs)
			fmt.Fprintf(g.Stdout, "Unique blobs:       %d\n", st.Blobs)
			fmt.Fprintf(g.Stdout, "Unique data:        %s\n", formatBytes(st.RawBytes))
			fmt.Fprintf(g.Stdout, "After compression:  %s (ratio %.2fx)\n", formatBytes(st.StoredBytes), st.Compression)
			fmt.Fprintf(g.Stdout, "Storage used:       %s\n", formatBytes(st.StorageBytes))
			if st.DedupSnapshot != "" {
				fmt.Fprintf(g.Stdout, "Snapshot %s restores %d files, %s\n", st.DedupSnapshot[:8], st.RestoreFiles, formatBytes(st.RestoreBytes))
			}
			return nil
		},
	}
	return cmd
}
