package cli

import (
	"context"
	"fmt"
	"path"
	"slices"

	"github.com/einvault/einvault/internal/repo"
	"github.com/spf13/cobra"
)

type diffEntry struct {
	Change string `json:"change"` // added, removed, modified, type
	Path   string `json:"path"`
	Type   string `json:"type"`
}

type diffStats struct {
	Added, Removed, Modified int
	BytesAdded, BytesRemoved uint64
}

func newDiffCmd(g *Globals) *cobra.Command {
	var metadata bool
	cmd := &cobra.Command{
		Use:   "diff SNAPSHOT1 SNAPSHOT2",
		Short: "Show what changed between two snapshots",
		Long: `Show files added (+), removed (-) and modified (M, content changed; U, only
metadata with --metadata; T, type changed) from SNAPSHOT1 to SNAPSHOT2.`,
		Example: `  einvault diff 1a2b3c4d latest
  einvault diff --json 1a2b3c4d 5e6f7a8b`,
		Args: argsRange(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := g.OpenRepoIndexed(ctx)
			if err != nil {
				return err
			}
			a, _, err := g.FindSnapshot(ctx, r, args[0], repo.SnapshotFilter{})
			if err != nil {
				return err
			}
			b, _, err := g.FindSnapshot(ctx, r, args[1], repo.SnapshotFilter{})
			if err != nil {
				return err
			}
			var st diffStats
			emit := func(e diffEntry) error {
				if g.JSON {
					return writeJSONLine(g.Stdout, e)
				}
				sign := map[string]string{"added": "+", "removed": "-", "modified": "M", "metadata": "U", "type": "T"}[e.Change]
				_, err := fmt.Fprintf(g.Stdout, "%s    %s\n", sign, e.Path)
				return err
			}
			if err := diffTrees(ctx, r, &a.Tree, &b.Tree, "/", metadata, &st, emit); err != nil {
				return err
			}
			if g.JSON {
				return writeJSONLine(g.Stdout, map[string]any{"message_type": "statistics", "added": st.Added, "removed": st.Removed,
					"modified": st.Modified, "bytes_added": st.BytesAdded, "bytes_removed": st.BytesRemoved})
			}
			g.Printf("\nFiles: %d new, %d removed, %d changed; %s added, %s removed\n", st.Added, st.Removed, st.Modified, formatBytes(st.BytesAdded), formatBytes(st.BytesRemoved))
			return nil
		},
	}
	cmd.Flags().BoolVar(&metadata, "metadata", false, "also report files whose only change is metadata")
	return cmd
}

func countTree(ctx context.Context, r *repo.Repository, n *repo.Node, p string, change string, st *diffStats, emit func(diffEntry) error) error {
	add := func(n *repo.Node, p string) error {
		if n.Type != repo.NodeDir {
			if change == "added" {
				st.Added++
				st.BytesAdded += n.Size
			} else {
				st.Removed++
				st.BytesRemoved += n.Size
			}
		}
		return emit(diffEntry{Change: change, Path: p, Type: string(n.Type)})
	}
	if err := add(n, p); err != nil {
		return err
	}
	if n.Type == repo.NodeDir && n.Subtree != nil {
		return repo.Walk(ctx, r, *n.Subtree, p, func(p string, n *repo.Node) error { return add(n, p) })
	}
	return nil
}

func diffTrees(ctx context.Context, r *repo.Repository, ida, idb *repo.ID, dir string, metadata bool, st *diffStats, emit func(diffEntry) error) error {
	if ida != nil && idb != nil && *ida == *idb {
		return nil
	}
	load := func(id *repo.ID) (*repo.Tree, error) {
		if id == nil {
			return &repo.Tree{}, nil
		}
		return r.LoadTree(ctx, *id)
	}
	ta, err := load(ida)
	if err != nil {
		return err
	}
	tb, err := load(idb)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(ta.Nodes) || j < len(tb.Nodes) {
		var na, nb *repo.Node
		switch {
		case j >= len(tb.Nodes) || (i < len(ta.Nodes) && ta.Nodes[i].Name < tb.Nodes[j].Name):
			na = ta.Nodes[i]
			i++
		case i >= len(ta.Nodes) || tb.Nodes[j].Name < ta.Nodes[i].Name:
			nb = tb.Nodes[j]
			j++
		default:
			na, nb = ta.Nodes[i], tb.Nodes[j]
			i++
			j++
		}
		switch {
		case nb == nil:
			if err := countTree(ctx, r, na, path.Join(dir, na.Name), "removed", st, emit); err != nil {
				return err
			}
		case na == nil:
			if err := countTree(ctx, r, nb, path.Join(dir, nb.Name), "added", st, emit); err != nil {
				return err
			}
		case na.Type != nb.Type:
			if err := emit(diffEntry{Change: "type", Path: path.Join(dir, nb.Name), Type: string(nb.Type)}); err != nil {
				return err
			}
			st.Modified++
		case na.Type == repo.NodeDir:
			if err := diffTrees(ctx, r, na.Subtree, nb.Subtree, path.Join(dir, na.Name), metadata, st, emit); err != nil {
				return err
			}
		case !slices.Equal(na.Content, nb.Content) || na.LinkTarget != nb.LinkTarget:
			st.Modified++
			if nb.Size > na.Size {
				st.BytesAdded += nb.Size - na.Size
			} else {
				st.BytesRemoved += na.Size - nb.Size
			}
			if err := emit(diffEntry{Change: "modified", Path: path.Join(dir, nb.Name), Type: string(nb.Type)}); err != nil {
				return err
			}
		case metadata && (na.Mode != nb.Mode || !na.ModTime.Equal(nb.ModTime) || na.UID != nb.UID || na.GID != nb.GID):
			if err := emit(diffEntry{Change: "metadata", Path: path.Join(dir, nb.Name), Type: string(nb.Type)}); err != nil {
				return err
			}
		}
	}
	return nil
}
