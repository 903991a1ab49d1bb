package cli

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/einvault/einvault/internal/repo"
	"github.com/spf13/cobra"
)

func newKeyCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage the passwords (keys) of a repository",
		Long: `A repository can have several passwords; each key file wraps the same
repository keys. 'recovery-kit' adds an emergency key and prints a page to
keep in a safe. 'rotate' starts a new master key after a suspected
compromise: new data is sealed under it, old snapshots stay readable, and
every other password is revoked.`,
	}
	readNew := func(prompt string, file string) ([]byte, error) {
		if file != "" {
			b, err := os.ReadFile(file)
			if err != nil {
				return nil, usageError("read new password file: %v", err)
			}
			return []byte(strings.TrimRight(string(b), "\r\n")), nil
		}
		if p := g.Getenv("EINVAULT_NEW_PASSWORD"); p != "" {
			return []byte(p), nil
		}
		sub := *g
		sub.PasswordFile = ""
		sub.Getenv = func(string) string { return "" }
		return sub.Password(prompt)
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List key files",
		Args:  argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.OpenRepo(cmd.Context())
			if err != nil {
				return err
			}
			keys, err := r.Keys(cmd.Context())
			if err != nil {
				return err
			}
			if g.JSON {
				return g.PrintJSON(keys)
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, " \tID\tKind\tLabel\tUser\tHost\tCreated")
			for _, k := range keys {
				cur := " "
				if k.Current {
					cur = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cur, k.ID[:8], k.Kind, k.Label, k.Username, k.Host, k.Created.Local().Format("2006-01-02 15:04:05"))
			}
			return tw.Flush()
		},
	}

	var newPwFile, label string
	// newKeyRun opens the repository, reads the new password and stores
	// it with save, printing the new key's ID.
	newKeyRun := func(done string, save func(ctx context.Context, r *repo.Repository, pw []byte) (string, error)) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			r, err := g.OpenRepo(cmd.Context())
			if err != nil {
				return err
			}
			pw, err := readNew("New password: ", newPwFile)
			if err != nil {
				return err
			}
			id, err := save(cmd.Context(), r, pw)
			if err != nil {
				return err
			}
			if g.JSON {
				return g.PrintJSON(map[string]string{"id": id})
			}
			g.Printf(done+"\n", id[:8])
			return nil
		}
	}

	add := &cobra.Command{
		Use:     "add",
		Short:   "Add a password",
		Example: "  EINVAULT_NEW_PASSWORD=... einvault key add --label 'head of IT'\n  einvault key add --new-password-file /root/pw2",
		Args:    argsRange(0, 0),
		RunE: newKeyRun("added key %s", func(ctx context.Context, r *repo.Repository, pw []byte) (string, error) {
			return r.AddKey(ctx, pw, "password", label)
		}),
	}
	add.Flags().StringVar(&newPwFile, "new-password-file", "", "read the new password from a file (env EINVAULT_NEW_PASSWORD)")
	add.Flags().StringVar(&label, "label", "", "a note to recognise the key by")

	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a password (not the one in use, not the last one)",
		Args:  argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.OpenRepo(cmd.Context())
			if err != nil {
				return err
			}
			if err := r.RemoveKey(cmd.Context(), args[0]); err != nil {
				return err
			}
			g.Printf("removed key %s\n", args[0])
			return nil
		},
	}

	passwd := &cobra.Command{
		Use:   "passwd",
		Short: "Change the password in use",
		Args:  argsRange(0, 0),
		RunE: newKeyRun("password changed (new key %s)", func(ctx context.Context, r *repo.Repository, pw []byte) (string, error) {
			return r.ChangePassword(ctx, pw)
		}),
	}
	passwd.Flags().StringVar(&newPwFile, "new-password-file", "", "read the new password from a file (env EINVAULT_NEW_PASSWORD)")

	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Start a new master key after a suspected compromise",
		Long: `Create a new master-key epoch. Everything written from now on is sealed and
identified under the new key; old snapshots stay readable through the old
epochs. The key file in use is rewritten (for the new password, if given)
and every other key file is removed: add the other passwords again and print
a new recovery kit afterwards.`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.OpenRepoIndexed(cmd.Context())
			if err != nil {
				return err
			}
			var pw []byte
			if newPwFile != "" || g.Getenv("EINVAULT_NEW_PASSWORD") != "" {
				if pw, err = readNew("New password: ", newPwFile); err != nil {
					return err
				}
			} else if pw, err = g.Password("Repository password: "); err != nil {
				return err
			}
			id, removed, err := r.RotateMasterKey(cmd.Context(), pw)
			if err != nil {
				return err
			}
			if g.JSON {
				return g.PrintJSON(map[string]any{"id": id, "epoch": r.KeyEpoch(), "removed": removed})
			}
			g.Printf("master key rotated to epoch %d; key %s now opens the repository; %d other key(s) removed.\n", r.KeyEpoch(), id[:8], len(removed)-1)
			g.Printf("Add the other passwords again ('einvault key add') and print a new recovery kit ('einvault key recovery-kit').\n")
			return nil
		},
	}
	rotate.Flags().StringVar(&newPwFile, "new-password-file", "", "also change to this password")

	var out string
	kit := &cobra.Command{
		Use:   "recovery-kit",
		Short: "Add an emergency key and print a recovery kit to keep in a safe",
		Example: `  einvault key recovery-kit --output /root/einvault-recovery.txt
  lp /root/einvault-recovery.txt && shred -u /root/einvault-recovery.txt`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.OpenRepo(cmd.Context())
			if err != nil {
				return err
			}
			raw := make([]byte, 20)
			if _, err := rand.Read(raw); err != nil {
				return err
			}
			enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)
			var groups []string
			for i := 0; i < len(enc); i += 4 {
				groups = append(groups, enc[i:min(i+4, len(enc))])
			}
			emergency := strings.Join(groups, "-")
			id, err := r.AddKey(cmd.Context(), []byte(emergency), "recovery", "recovery kit "+time.Now().Format("2006-01-02"))
			if err != nil {
				return err
			}
			loc := r.Backend().Location()
			page := fmt.Sprintf(`EINVAULT RECOVERY KIT
=====================
Repository ID:   %s
Location:        %s
Created:         %s
Key ID:          %s

Emergency key:   %s

To restore with this key:
  export EINVAULT_REPO=%s
  export EINVAULT_PASSWORD='%s'
  einvault snapshots
  einvault restore latest --target /restore

Keep this page in a safe. Anyone holding it and a copy of the repository can
read every backup. To revoke it: einvault key remove %s
`, r.Config().ID, loc, time.Now().Format(time.RFC3339), id[:8], emergency, loc, emergency, id[:8])
			if g.JSON {
				return g.PrintJSON(map[string]string{"repository_id": r.Config().ID.String(), "key_id": id, "emergency_key": emergency, "location": loc})
			}
			if out != "" {
				if err := os.WriteFile(out, []byte(page), 0o600); err != nil {
					return fmt.Errorf("write recovery kit: %w", err)
				}
				g.Printf("recovery kit written to %s (key %s)\n", out, id[:8])
				return nil
			}
			_, err = fmt.Fprint(g.Stdout, page)
			return err
		},
	}
	kit.Flags().StringVarP(&out, "output", "o", "", "write the kit to this file (mode 0600) instead of stdout")
	cmd.AddCommand(list, add, remove, passwd, rotate, kit, newKeyCacheCmd(g))
	return cmd
}
