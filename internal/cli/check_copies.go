package cli

import (
	"context"
	"fmt"

	"github.com/einvault/einvault/internal/checker"
	"github.com/einvault/einvault/internal/replica"
	"github.com/einvault/einvault/internal/repo"
)

type copyCheck struct {
	Copy     string          `json:"copy"`
	Location string          `json:"location"`
	Error    string          `json:"error,omitempty"`
	Damaged  bool            `json:"damaged"`
	Summary  string          `json:"summary,omitempty"`
	Report   *checker.Report `json:"report,omitempty"`
}

// runCheckAllCopies checks every copy on its own.
func runCheckAllCopies(ctx context.Context, g *Globals, o checkOptions, opts checker.Options) error {
	cs, err := g.openCopySetRW(ctx, false)
	if err != nil {
		return err
	}
	defer cs.r.Close()
	defer cs.close()
	var out []copyCheck
	for _, f := range cs.failed {
		out = append(out, copyCheck{Copy: f.Copy, Error: f.Error})
	}
	full := o.readData && !o.storageOnly
	for _, m := range cs.members {
		cc := copyCheck{Copy: m.Name, Location: m.Location}
		var rep *checker.Report
		if o.storageOnly {
			rep, err = checker.CheckStorage(ctx, m.Backend, opts)
		} else {
			var r *repo.Repository
			r, err = repo.Open(ctx, m.Backend, cs.pw, g.repoOptions())
			if err == nil {
				rep, err = checker.Check(ctx, r, opts)
				r.Close()
			}
		}
		if err != nil {
			cc.Error = fmt.Sprintf("copy %q (%s): %s", m.Name, m.Location, oneLine(err))
			if full {
				cs.update(m.Name, func(c *replica.Copy) { c.LastVerify = cs.r.Now().UTC(); c.VerifyErrors = max(1, c.VerifyErrors) })
			}
			out = append(out, cc)
			continue
		}
		cc.Report, cc.Damaged, cc.Summary = rep, rep.Damaged(), rep.Summary()
		if full {
			n := len(rep.Errors)
			cs.update(m.Name, func(c *replica.Copy) { c.LastVerify = cs.r.Now().UTC(); c.VerifyErrors = n })
		}
		out = append(out, cc)
	}
	if full && len(cs.list.Copies) > 0 {
		if err := cs.save(ctx, g, cs.members); err != nil {
			g.Warnf("warning: could not record the verification: %v\n", err)
		}
	}
	damaged, failed := 0, 0
	for _, c := range out {
		if c.Error != "" {
			failed++
		}
		if c.Damaged {
			damaged++
		}
	}
	if g.JSON {
		if err := g.PrintJSON(map[string]any{"message_type": "summary", "copies": out, "damaged": damaged > 0}); err != nil {
			return err
		}
	} else if !g.Quiet {
		for _, c := range out {
			fmt.Fprintf(g.Stdout, "== copy %q (%s)\n", c.Copy, c.Location)
			if c.Report != nil {
				if err := c.Report.WriteText(g.Stdout); err != nil {
					return err
				}
			}
		}
	}
	for _, c := range out {
		if c.Error != "" {
			g.Warnf("FAILED: %s\n", c.Error)
		} else if c.Damaged {
			g.Warnf("DAMAGED: copy %q: %s (run 'einvault repair')\n", c.Copy, c.Summary)
		}
	}
	switch {
	case damaged > 0:
		return WithExit(ExitDamaged, fmt.Errorf("%w in %d of %d copies (named above): run 'einvault repair'", errCheckDamaged, damaged, len(out)))
	case failed > 0:
		return WithExit(ExitDegraded, fmt.Errorf("check %w: %d of %d copies could not be checked (named above)", errDegraded, failed, len(out)))
	}
	return nil
}
