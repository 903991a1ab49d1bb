package cli

import (
	"context"
	"fmt"
	"os/user"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/einvault/einvault/internal/notify"
	"github.com/spf13/cobra"
)

func newAlertsCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alerts",
		Short: "List, acknowledge and test alerts",
		Long: `Alerts are raised by the daemon and by 'einvault run' when a job fails,
a copy is degraded or a backup is older than its RPO. They are sent to
the recipients of the matching rules in the config's notifications
section; an alert nobody acknowledges escalates to the next level (after
0, 15, 30 and 60 minutes by default). Undelivered messages wait in an
outbox in the state directory and are retried: a mail server that is
down delays an alert, it never loses it.`,
	}
	cmd.AddCommand(newAlertsListCmd(g), newAlertsAckCmd(g), newAlertsTestCmd(g), newAlertsFlushCmd(g))
	return cmd
}

// openDispatcher opens the alert outbox with the config's notifications.
func openDispatcher(ctx context.Context, g *Globals) (*notify.Dispatcher, error) {
	cfg, err := g.LoadConfig(false)
	if err != nil {
		return nil, err
	}
	var nc notify.Config
	if cfg != nil {
		nc = cfg.Notifications
	}
	path := filepath.Join(g.StateDirectory(cfg), "alerts.db")
	return notify.Open(ctx, path, nc, notify.Options{Env: notify.Env{Getenv: g.Getenv}, Logger: g.log})
}

func newAlertsListCmd(g *Globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show open alerts (not acknowledged or not delivered)",
		Example: `  einvault alerts list
  einvault alerts list --all --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := openDispatcher(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer d.Close()
			list, err := d.List(cmd.Context(), all)
			if err != nil {
				return err
			}
			if g.JSON {
				if list == nil {
					list = []notify.Alert{}
				}
				return g.PrintJSON(list)
			}
			if len(list) == 0 {
				g.Printf("no open alerts\n")
				return nil
			}
			tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCREATED\tKIND\tSEVERITY\tJOB\tLEVEL\tACKED\tDELIVERY\tMESSAGE")
			for _, a := range list {
				acked := "-"
				if a.AckedAt != nil {
					acked = a.AckedBy + " " + a.AckedAt.Format("01-02 15:04")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", a.ID, a.Created.Format("2006-01-02 15:04"), a.Event.Kind,
					a.Event.Severity, a.Event.Job, a.Level, acked, deliverySummary(a.Deliveries), a.Event.Message)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also show acknowledged, delivered alerts")
	return cmd
}

func deliverySummary(ds []notify.Delivery) string {
	sent, waiting := 0, 0
	var lastErr string
	for _, d := range ds {
		if d.DeliveredAt != nil {
			sent++
		} else {
			waiting++
			if d.LastError != "" {
				lastErr = d.LastError
			}
		}
	}
	s := fmt.Sprintf("%d sent", sent)
	if waiting > 0 {
		s += fmt.Sprintf(", %d waiting", waiting)
		if lastErr != "" {
			s += " (" + truncateRunes(lastErr, 60) + ")"
		}
	}
	return s
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func newAlertsAckCmd(g *Globals) *cobra.Command {
	var by string
	cmd := &cobra.Command{
		Use:   "ack ID...",
		Short: "Acknowledge alerts so that they stop escalating",
		Example: `  einvault alerts ack A1b2c3d4
  einvault alerts ack A1b2c3d4 --by "Nguyen Van An"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := openDispatcher(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer d.Close()
			if by == "" {
				by = currentUser(g)
			}
			for _, id := range args {
				if err := d.Ack(cmd.Context(), id, by); err != nil {
					return usageError("%v", err)
				}
				if !g.JSON {
					g.Printf("alert %s acknowledged by %s\n", id, by)
				}
			}
			if g.JSON {
				return g.PrintJSON(map[string]any{"acknowledged": args, "by": by})
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&by, "by", "", "who acknowledges (default: the current user@host)")
	return cmd
}

func currentUser(g *Globals) string {
	name := g.Getenv("USER")
	if u, err := user.Current(); err == nil && name == "" {
		name = u.Username
	}
	if h := g.Getenv("HOSTNAME"); h != "" {
		name += "@" + h
	}
	return name
}

func newAlertsTestCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "test RECIPIENT...",
		Short: "Send a test message to recipients now, in their language",
		Long: `Test sends a short test message to each named recipient of the
notifications section right away, outside the outbox, and reports whether
each channel accepted it. Use it after editing the config.`,
		Example: `  einvault alerts test it-oncall head-of-it`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := openDispatcher(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer d.Close()
			type res struct {
				Recipient string `json:"recipient"`
				OK        bool   `json:"ok"`
				Error     string `json:"error,omitempty"`
			}
			var out []res
			failed := 0
			for _, r := range args {
				ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
				err := d.SendTest(ctx, r)
				cancel()
				x := res{Recipient: r, OK: err == nil}
				if err != nil {
					x.Error = err.Error()
					failed++
				}
				out = append(out, x)
				if !g.JSON {
					if err != nil {
						g.Printf("%s: FAILED: %v\n", r, err)
					} else {
						g.Printf("%s: sent\n", r)
					}
				}
			}
			if g.JSON {
				if err := g.PrintJSON(out); err != nil {
					return err
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d test messages were not accepted: fix the channel settings and try again", failed, len(args))
			}
			return nil
		},
	}
	return cmd
}

func newAlertsFlushCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "flush",
		Short: "Escalate due alerts and retry undelivered messages now",
		Long: `Flush does one round of what the daemon does every minute: it escalates
alerts whose next level is due and sends every queued message whose
retry time has come. Without a running daemon, run it from cron.`,
		Example: `  einvault alerts flush`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := openDispatcher(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer d.Close()
			if err := d.Tick(cmd.Context()); err != nil {
				return fmt.Errorf("some messages are still undelivered and stay queued: %w", err)
			}
			if !g.JSON {
				g.Printf("outbox flushed\n")
			}
			return nil
		},
	}
}
