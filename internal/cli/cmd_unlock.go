package cli

import (
	"time"

	"github.com/einvault/einvault/internal/repo"
	"github.com/spf13/cobra"
)

type lockJSON struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Host      string    `json:"host"`
	Username  string    `json:"username,omitempty"`
	PID       int       `json:"pid"`
	Start     time.Time `json:"start"`
	Heartbeat time.Time `json:"heartbeat"`
	Stale     bool      `json:"stale"`
	Reason    string    `json:"stale_reason,omitempty"`
}

func toLockJSON(l repo.LockInfo) lockJSON {
	return lockJSON{ID: l.ID.String(), Kind: l.Kind, Host: l.Host, Username: l.Username, PID: l.PID, Start: l.Start,
		Heartbeat: l.Heartbeat, Stale: l.Stale, Reason: l.StaleReason}
}

func newUnlockCmd(g *Globals) *cobra.Command {
	var removeAll bool
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "Remove stale locks",
		Long: `Unlock removes lock files left by einvault processes that are gone: a lock
of this host whose process no longer exists, or any lock whose heartbeat
stopped more than 30 minutes ago. Live locks are listed and kept.

Backups never wait for a lock, so this is only needed when a prune reports
the repository as locked (exit code 11) by a prune that was killed.
--remove-all removes live locks too: use it only when you are sure no other
einvault process is working on the repository.`,
		Example: `  einvault unlock
  einvault unlock --remove-all
  einvault unlock --json`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := g.OpenRepo(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			var removed []repo.LockInfo
			if removeAll {
				removed, err = r.RemoveAllLocks(ctx)
			} else {
				removed, err = r.RemoveStaleLocks(ctx)
			}
			remaining, lerr := r.Locks(ctx)
			if err == nil {
				err = lerr
			}
			now := r.Now()
			if g.JSON {
				out := struct {
					MessageType string     `json:"message_type"`
					Removed     []lockJSON `json:"removed"`
					Remaining   []lockJSON `json:"remaining"`
				}{"unlock_summary", []lockJSON{}, []lockJSON{}}
				for _, l := range removed {
					out.Removed = append(out.Removed, toLockJSON(l))
				}
				for _, l := range remaining {
					out.Remaining = append(out.Remaining, toLockJSON(l))
				}
				if jerr := g.PrintJSON(out); jerr != nil {
					return jerr
				}
				return err
			}
			for _, l := range removed {
				why := l.StaleReason
				if why == "" {
					why = "--remove-all"
				}
				g.Printf("removed %s (%s)\n", l.Describe(now), why)
			}
			for _, l := range remaining {
				g.Printf("kept live %s\n", l.Describe(now))
			}
			if len(removed) == 0 && len(remaining) == 0 {
				g.Printf("no locks\n")
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&removeAll, "remove-all", false, "remove all locks, live ones too")
	return cmd
}
