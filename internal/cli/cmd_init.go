package cli

import (
	"fmt"

	"github.com/einvault/einvault/internal/repo"
	"github.com/spf13/cobra"
)

func newInitCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create a new repository",
		Long: `Create a new encrypted repository at the location given by -r/--repo or
EINVAULT_REPO. The password protects the repository key; losing every
password (and the recovery kit, see 'einvault key recovery-kit') means
losing the data.`,
		Example: `  einvault -r /mnt/nas/einvault init
  EINVAULT_PASSWORD_FILE=/etc/einvault/pw einvault -r /backup/repo init --json`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			pw, err := g.Password("New repository password: ")
			if err != nil {
				return err
			}
			be, err := g.OpenBackend(ctx, true)
			if err != nil {
				return err
			}
			r, err := repo.Init(ctx, be, pw, g.repoOptions())
			if err != nil {
				return err
			}
			cfg := r.Config()
			if g.JSON {
				return g.PrintJSON(map[string]any{"message_type": "initialized", "id": cfg.ID.String(), "repository": be.Location()})
			}
			g.Printf("created einvault repository %s at %s\n", cfg.ID.Short(), be.Location())
			g.Printf("Keep the password safe: without it the data cannot be read. Print a recovery kit with 'einvault key recovery-kit'.\n")
			return nil
		},
	}
}

func newVersionCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.JSON {
				return g.PrintJSON(map[string]any{"version": Version, "format": repo.FormatVersion})
			}
			fmt.Fprintf(g.Stdout, "einvault %s (repository format v%d)\n", Version, repo.FormatVersion)
			return nil
		},
	}
}
