package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/einvault/einvault/internal/config"
	"github.com/spf13/cobra"
)

func newConfigCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check the configuration file",
	}
	cmd.AddCommand(newConfigValidateCmd(g))
	return cmd
}

type classJSON struct {
	Name         string   `json:"name"`
	Schedule     string   `json:"schedule"`
	Retention    string   `json:"retention"`
	LegalMinimum string   `json:"legal_minimum"`
	LegalBy      []string `json:"legal_by"`
	Effective    string   `json:"effective_retention"`
	RPO          string   `json:"rpo"`
	RTO          string   `json:"rto"`
	WALMaxAge    string   `json:"wal_max_age,omitempty"`
}

type jobJSON struct {
	Name     string   `json:"name"`
	Class    string   `json:"class"`
	Schedule string   `json:"schedule"`
	Sources  []string `json:"sources"`
	Verify   string   `json:"verify"`
	Drill    string   `json:"drill,omitempty"`
	Binlog   string   `json:"binlog,omitempty"`
}

type validateJSON struct {
	MessageType   string           `json:"message_type"`
	File          string           `json:"file"`
	Valid         bool             `json:"valid"`
	Errors        []config.Problem `json:"errors"`
	Warnings      []config.Problem `json:"warnings"`
	Overrides     []string         `json:"env_overrides,omitempty"`
	Jurisdictions []string         `json:"jurisdictions,omitempty"`
	Classes       []classJSON      `json:"classes,omitempty"`
	Jobs          []jobJSON        `json:"jobs,omitempty"`
}

func newConfigValidateCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the configuration file's syntax and meaning",
		Long: `Validate reads the configuration file (--config, EINVAULT_CONFIG or the
default location) and checks its syntax and meaning without touching the
network, the repository, the password or the paths it names. Every error
is shown with its line number; a secret written inline (such as
s3_secret_access_key) is a warning: keep it in a *_file or the environment. A valid file is summarised: each data
class's schedule and its effective retention (the larger of its retention
policy and the legal minimum of the jurisdictions that apply), and each
job.

Exit codes: 0 valid, 1 errors found (listed), 2 usage.`,
		Example: `  einvault config validate --config /etc/einvault/einvault.yaml
  einvault config validate --config einvault.yaml --json | jq '.classes'`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, _ := config.Resolve(g.ConfigFile, g.Getenv)
			c, err := config.Load(path, g.Getenv)
			out := validateJSON{MessageType: "config_validate", File: path, Valid: err == nil, Errors: []config.Problem{}, Warnings: []config.Problem{}}
			var ce *config.Errors
			switch {
			case errors.As(err, &ce):
				out.Errors = ce.Problems
				if g.JSON {
					_ = g.PrintJSON(out)
				} else {
					for _, p := range ce.Problems {
						loc := path
						if p.Line > 0 {
							loc = fmt.Sprintf("%s:%d", path, p.Line)
						}
						fmt.Fprintf(g.Stderr, "%s: %s\n", loc, strings.TrimPrefix(p.String(), fmt.Sprintf("line %d: ", p.Line)))
					}
				}
				return fmt.Errorf("config %s has %d error(s) (listed above); fix them and validate again", path, len(ce.Problems))
			case err != nil:
				return err
			}
			out.Overrides, out.Jurisdictions = c.Overrides, c.Jurisdictions
			if len(c.Warnings) > 0 {
				out.Warnings = c.Warnings
			}
			if !g.JSON {
				for _, p := range c.Warnings {
					loc := path
					if p.Line > 0 {
						loc = fmt.Sprintf("%s:%d", path, p.Line)
					}
					fmt.Fprintf(g.Stderr, "%s: warning: %s\n", loc, strings.TrimPrefix(p.String(), fmt.Sprintf("line %d: ", p.Line)))
				}
			}
			for _, name := range c.ClassNames() {
				cl := c.Classes[name]
				out.Classes = append(out.Classes, classJSON{Name: name, Schedule: cl.Spec.Describe(), Retention: cl.Policy.String(),
					LegalMinimum: cl.Legal.String(), LegalBy: append([]string{}, cl.LegalBy...), Effective: cl.Effective().String(),
					RPO: durOrOff(cl.RPODur), RTO: durOrOff(cl.RTODur)})
				if cl.WALMaxAgeDur > 0 {
					out.Classes[len(out.Classes)-1].WALMaxAge = cl.WALMaxAgeDur.String()
				}
			}
			for _, name := range c.JobNames() {
				j := c.Jobs[name]
				jj := jobJSON{Name: name, Class: j.Class, Schedule: j.Spec.Describe(), Sources: j.Sources, Verify: j.Verify}
				if j.Verify != "off" {
					jj.Verify += " (max " + j.VerifyBudget + ")"
				}
				if j.DrillSpec.Kind != "" {
					jj.Drill = j.DrillSpec.Describe()
				}
				if j.BinlogSpec.Kind != "" {
					jj.Binlog = j.BinlogSpec.Describe()
				}
				out.Jobs = append(out.Jobs, jj)
			}
			if g.JSON {
				return g.PrintJSON(out)
			}
			printValid(g, c, out)
			return nil
		},
	}
}

func printValid(g *Globals, c *config.Config, out validateJSON) {
	g.Printf("%s: valid\n", out.File)
	if len(c.Overrides) > 0 {
		g.Printf("overridden by the environment: %s\n", strings.Join(c.Overrides, ", "))
	}
	var copies []string
	for _, cp := range c.Repository.Copies {
		copies = append(copies, cp.Name)
	}
	g.Printf("repository: %s", c.Repository.Location)
	if len(copies) > 0 {
		g.Printf(" (copies: %s)", strings.Join(copies, ", "))
	}
	g.Printf("\njurisdictions: %s\n\n", strings.Join(c.Jurisdictions, ", "))
	if g.Quiet {
		return
	}
	tw := tabwriter.NewWriter(g.Stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "CLASS\tSCHEDULE\tRETENTION\tLEGAL MINIMUM\tEFFECTIVE\tRPO\tRTO")
	for _, cl := range out.Classes {
		legal := "-"
		if cl.LegalMinimum != "0" {
			legal = cl.LegalMinimum + " (" + strings.Join(cl.LegalBy, ", ") + ")"
		}
		rpo := cl.RPO
		if cl.WALMaxAge != "" {
			rpo += " (WAL " + cl.WALMaxAge + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cl.Name, cl.Schedule, cl.Retention, legal, cl.Effective, rpo, cl.RTO)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "JOB\tCLASS\tSCHEDULE\tSOURCES\tVERIFY\tDRILL\tBINLOG")
	for _, j := range out.Jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.Name, j.Class, j.Schedule, strings.Join(j.Sources, ", "), j.Verify, dash(j.Drill), dash(j.Binlog))
	}
	tw.Flush()
	if len(c.Maintenance) > 0 {
		g.Printf("\nmaintenance windows:\n")
		for _, w := range c.Maintenance {
			jobs := "all jobs"
			if len(w.Jobs) > 0 {
				jobs = strings.Join(w.Jobs, ", ")
			}
			g.Printf("  %s: from %q for %s (%s)\n", w.Name, w.Start, w.Window.Duration, jobs)
		}
	}
	g.Printf("\nretention (forget) %s, prune %s, %d job(s) at once\n", c.Daemon.RetentionSpec.Describe(), c.Daemon.PruneSpec.Describe(), c.Daemon.Concurrency)
}

func durOrOff(d time.Duration) string {
	if d <= 0 {
		return "off"
	}
	return d.String()
}
