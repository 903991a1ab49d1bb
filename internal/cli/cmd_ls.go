package cli

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/repo"
	"github.com/spf13/cobra"
)

type nodeJSON struct {
	Path       string    `json:"path"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	Mode       string    `json:"mode"`
	Size       uint64    `json:"size"`
	ModTime    time.Time `json:"mtime"`
	UID        uint32    `json:"uid"`
	GID        uint32    `json:"gid"`
	LinkTarget string    `json:"link_target,omitempty"`
	Snapshot   string    `json:"snapshot,omitempty"`
}

func toNodeJSON(p string, n *repo.Node) nodeJSON {
	return nodeJSON{Path: p, Name: n.Name, Type: string(n.Type), Mode: n.Mode.String(), Size: n.Size, ModTime: n.ModTime, UID: n.UID, GID: n.GID, LinkTarget: n.LinkTarget}
}

func lsLine(p string, n *repo.Node, long bool) string {
	if !long {
		return p
	}
	s := fmt.Sprintf("%s %5d %5d %12d %s %s", n.Mode, n.UID, n.GID, n.Size, n.ModTime.Local().Format("2006-01-02 15:04:05"), p)
	if n.Type == repo.NodeSymlink {
		s += " -> " + n.LinkTarget
	}
	return s
}

func newLsCmd(g *Globals) *cobra.Command {
	var ff SnapshotFilterFlags
	var long, recursive bool
	cmd := &cobra.Command{
		Use:   "ls SNAPSHOT [PATH]",
		Short: "List files in a snapshot",
		Long:  "List the files of a snapshot, below PATH if given. SNAPSHOT is an ID, a unique ID prefix or 'latest'.",
		Example: `  einvault ls latest
  einvault ls -l 1a2b3c4d /srv/invoices/2024/03`,
		Args: argsRange(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := g.OpenRepoIndexed(ctx)
			if err != nil {
				return err
			}
			s, sub, err := g.FindSnapshot(ctx, r, args[0], ff.Filter())
			if err != nil {
				return err
			}
			dir := "/"
			if sub != "" {
				dir = sub
			}
			if len(args) == 2 {
				dir = args[1]
			}
			return listTree(ctx, g, r, s, repo.CleanSnapshotPath(dir), long, recursive || len(args) == 1 && sub == "")
		},
	}
	addFilterFlags(cmd, &ff)
	cmd.Flags().BoolVarP(&long, "long", "l", false, "show mode, owner, size and time")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "descend into directories below PATH")
	return cmd
}

func listTree(ctx context.Context, g *Globals, r *repo.Repository, s *repo.Snapshot, dir string, long, recursive bool) error {
	n, err := repo.FindNode(ctx, r, s.Tree, dir)
	if err != nil {
		return WithExit(ExitError, fmt.Errorf("snapshot %s: %w", s.ID.Short(), err))
	}
	emit := func(p string, n *repo.Node) error {
		if g.JSON {
			return writeJSONLine(g.Stdout, toNodeJSON(p, n))
		}
		_, err := fmt.Fprintln(g.Stdout, lsLine(p, n, long))
		return err
	}
	if n.Type != repo.NodeDir {
		return emit(dir, n)
	}
	return repo.Walk(ctx, r, *n.Subtree, dir, func(p string, n *repo.Node) error {
		if err := emit(p, n); err != nil {
			return err
		}
		if !recursive && n.Type == repo.NodeDir {
			return repo.ErrSkipDir
		}
		return nil
	})
}

func newFindCmd(g *Globals) *cobra.Command {
	var ff SnapshotFilterFlags
	var snaps []string
	var long bool
	cmd := &cobra.Command{
		Use:   "find PATTERN...",
		Short: "Find files by name or path in all snapshots",
		Long: `Find files whose name (or, for a pattern containing '/', whole path)
matches a glob pattern, in every snapshot or in those given with --snapshot.`,
		Example: `  einvault find '*1C24TAA*'
  einvault find --snapshot latest '/srv/invoices/2024/*/0100109106_*.xml'`,
		Args: argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := g.OpenRepoIndexed(ctx)
			if err != nil {
				return err
			}
			all, err := r.Snapshots(ctx)
			if err != nil && len(all) == 0 {
				return err
			}
			var list []*repo.Snapshot
			if len(snaps) > 0 {
				for _, ref := range snaps {
					s, err := repo.FindSnapshot(all, ref, ff.Filter())
					if err != nil {
						return err
					}
					list = append(list, s)
				}
			} else {
				for _, s := range all {
					if ff.Filter().Match(s) {
						list = append(list, s)
					}
				}
			}
			found := 0
			for _, s := range list {
				err := repo.Walk(ctx, r, s.Tree, "/", func(p string, n *repo.Node) error {
					for _, pat := range args {
						target := n.Name
						if strings.Contains(pat, "/") {
							target = p
						}
						if ok, _ := path.Match(pat, target); ok {
							found++
							if g.JSON {
								j := toNodeJSON(p, n)
								j.Snapshot = s.ID.String()
								return writeJSONLine(g.Stdout, j)
							}
							_, err := fmt.Fprintf(g.Stdout, "%s  %s\n", s.ID.Short(), lsLine(p, n, long))
							return err
						}
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			if !g.JSON && !g.Quiet {
				fmt.Fprintf(g.Stderr, "%d match(es) in %d snapshot(s)\n", found, len(list))
			}
			return nil
		},
	}
	addFilterFlags(cmd, &ff)
	cmd.Flags().StringArrayVarP(&snaps, "snapshot", "s", nil, "search only this snapshot (repeat)")
	cmd.Flags().BoolVarP(&long, "long", "l", false, "show mode, owner, size and time")
	return cmd
}
