package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/einvault/einvault/internal/replica"
	"github.com/spf13/cobra"
)

var errDegraded = errors.New("degraded")

// copyOutcome is what happened to one copy in a sync, backup or repair.
type copyOutcome struct {
	Copy   string          `json:"copy"`
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Result *replica.Result `json:"result,omitempty"`
}

type syncRun struct {
	workers  int
	only     string
	additive bool // never propagate deletions (backup's own sync)
	repair   bool
	// preflighted, when set, holds the pre-flight errors (by copy name)
	// of a probe the caller ran; no new probe is made.
	preflighted map[string]string
}

// syncCopies brings the copies of cs up to date from self (see
// docs/COPIES.md for the rules): a self marked behind is first caught up
// from the others; deletions propagate only from a self that is not
// behind, never to immutable copies. It updates and saves the copy list.
func syncCopies(ctx context.Context, g *Globals, cs *copySet, o syncRun) []copyOutcome {
	var out []copyOutcome
	self := cs.members[0]
	now := cs.r.Now
	bar := g.newByteBar("syncing")
	defer bar.finish()
	progress := func(p replica.Progress) {
		if g.JSON && !g.Quiet {
			_ = writeJSONLine(g.Stderr, map[string]any{"message_type": "status", "copy": p.Copy, "phase": p.Phase, "files_done": p.FilesDone,
				"files_total": p.FilesTotal, "bytes_done": p.BytesDone, "bytes_total": p.BytesTotal})
			return
		}
		bar.set(p.BytesDone, p.BytesTotal, fmt.Sprintf("copy %s: %d/%d files", p.Copy, p.FilesDone, p.FilesTotal))
	}
	opts := replica.SyncOptions{Workers: o.workers, CheckKeys: g.checkKeys(cs.pw), Progress: progress, Logger: g.Logger()}
	for _, f := range cs.failed {
		if o.only == "" || o.only == f.Copy {
			out = append(out, copyOutcome{Copy: f.Copy, Error: f.Error})
		}
	}
	// Pre-flight every copy we will write to.
	var targets []replica.Member
	for _, m := range cs.members[1:] {
		if o.only == "" || o.only == m.Name {
			targets = append(targets, m)
		}
	}
	var probes []replica.Probe
	if o.preflighted != nil {
		// The caller (backup) has probed every copy already.
		probes = append(probes, replica.Probe{Copy: self.Name})
		for _, m := range targets {
			probes = append(probes, replica.Probe{Copy: m.Name, Error: o.preflighted[m.Name]})
		}
	} else {
		probes = replica.PreflightAll(ctx, append([]replica.Member{self}, targets...), replica.PreflightOptions{Write: true})
	}
	if !probes[0].OK() {
		out = append(out, copyOutcome{Copy: self.Name, Error: probes[0].Error})
		return out
	}
	var healthy []replica.Member
	for i, m := range targets {
		if !probes[i+1].OK() {
			out = append(out, copyOutcome{Copy: m.Name, Error: probes[i+1].Error})
			cs.update(m.Name, func(c *replica.Copy) { c.Behind = true })
			continue
		}
		healthy = append(healthy, m)
	}
	selfBehind := cs.self >= 0 && cs.list.Copies[cs.self].Behind
	if selfBehind || o.repair {
		// Catch self up from every other copy, additively (and, for
		// repair, verify and rewrite what is damaged).
		srcs := replica.ReadOrder(healthy)
		ro := opts
		ro.VerifyExisting = o.repair
		ro.Union = true
		res, err := replica.SyncTo(ctx, srcs, self, ro)
		oc := copyOutcome{Copy: self.Name, Result: res, OK: err == nil && res.Complete}
		if err != nil {
			oc.Error = oneLine(err)
		} else if !res.Complete {
			oc.Error = fmt.Sprintf("copy %q: %d file(s) have no valid version in any copy", self.Name, len(res.Unavailable))
		}
		if oc.OK {
			cs.update(self.Name, func(c *replica.Copy) { c.Behind = false; c.LastSync = now().UTC() })
			selfBehind = false
		}
		if len(healthy) > 0 || o.repair {
			out = append(out, oc)
		}
	}
	// Copies are synced in parallel: each is limited by its own storage.
	var synced []replica.Member
	outs := make([]copyOutcome, len(healthy))
	var wg sync.WaitGroup
	for i, m := range healthy {
		so := opts
		so.Mirror = !o.additive && !o.repair && !selfBehind && !m.Immutable
		so.VerifyExisting = o.repair
		so.Union = o.repair
		srcs := append([]replica.Member{self}, replica.ReadOrder(others(healthy, m.Name))...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			res, err := replica.SyncTo(ctx, srcs, m, so)
			g.Logger().Debug("sync: copy done", "copy", m.Name, "took", time.Since(t0), "err", err)
			oc := copyOutcome{Copy: m.Name, Result: res}
			switch {
			case err != nil:
				oc.Error = oneLine(err)
				if !strings.Contains(oc.Error, fmt.Sprintf("%q", m.Name)) {
					oc.Error = fmt.Sprintf("copy %q: %s", m.Name, oc.Error)
				}
			case !res.Complete:
				oc.Error = fmt.Sprintf("copy %q: %d file(s) have no valid version in any copy (first: %s)", m.Name, len(res.Unavailable), res.Unavailable[0].File)
			default:
				oc.OK = true
			}
			outs[i] = oc
		}()
	}
	wg.Wait()
	for i, oc := range outs {
		m := healthy[i]
		if oc.OK {
			synced = append(synced, m)
			cs.update(m.Name, func(c *replica.Copy) { c.Behind = false; c.LastSync = now().UTC() })
		} else {
			cs.update(m.Name, func(c *replica.Copy) { c.Behind = true })
		}
		out = append(out, oc)
	}
	if len(synced) == len(healthy) && len(out) == len(synced) {
		cs.update(self.Name, func(c *replica.Copy) { c.LastSync = now().UTC() })
	}
	t0 := time.Now()
	defer func() { g.Logger().Debug("sync: copy list saved", "took", time.Since(t0)) }()
	if len(cs.list.Copies) > 0 {
		if err := cs.save(ctx, g, synced); err != nil {
			g.Warnf("warning: could not record the sync in the copy list: %v\n", err)
		}
	}
	return out
}

func others(ms []replica.Member, not string) []replica.Member {
	var out []replica.Member
	for _, m := range ms {
		if m.Name != not {
			out = append(out, m)
		}
	}
	return out
}

// reportOutcomes prints one line per copy and returns the degraded error.
func reportOutcomes(g *Globals, what string, outs []copyOutcome, took time.Duration) error {
	failed := 0
	for _, o := range outs {
		if !o.OK {
			failed++
		}
	}
	if g.JSON {
		_ = g.PrintJSON(map[string]any{"message_type": what, "copies": outs, "failed": failed, "seconds": took.Seconds()})
	} else {
		for _, o := range outs {
			if o.OK && o.Result != nil {
				r := o.Result
				g.Printf("copy %q: up to date (%d file(s), %s copied; %d replaced; %d deleted; %d rejected from a damaged source)\n",
					o.Copy, r.Copied, formatBytes(uint64(r.CopiedBytes)), r.Replaced, r.Deleted, len(r.Rejected))
			}
		}
	}
	for _, o := range outs {
		if !o.OK {
			g.Warnf("FAILED: %s\n", o.Error)
		}
	}
	if failed > 0 {
		return WithExit(ExitDegraded, fmt.Errorf("%s %w: %d of %d copies failed (each named above); run 'einvault sync' when they are back", what, errDegraded, failed, len(outs)))
	}
	return nil
}

func newSyncCmd(g *Globals) *cobra.Command {
	var o syncRun
	cmd := &cobra.Command{
		Use:   "sync [--copy NAME]",
		Short: "Bring every copy of the repository up to date",
		Long: `Copy to every reachable copy what it is missing, verifying every file on
arrival (its BLAKE3 must equal its name; a damaged source version is rejected
and the next copy used). Types are copied in dependency order (keys, config,
dictionaries, packs, index, snapshots, ...), so an interrupted sync leaves
every copy consistent, and running it again continues where it stopped.

Deletions made by prune and forget propagate to a copy only when this
repository holds every write (it is not marked behind because a backup
went to another copy while it was down) and the copy is not immutable.
When this repository is behind, it is first caught up from the others.

A copy whose config or key files differ (another repository, or a password
changed only there) is refused with a message naming it. Exit code 4 when
any copy failed.`,
		Example: "  einvault sync\n  einvault sync --copy nas --json",
		Args:    argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cs, err := g.openCopySetRW(ctx, true)
			if err != nil {
				return err
			}
			defer cs.r.Close()
			defer cs.close()
			if o.only != "" && cs.list.Find(o.only) < 0 {
				return usageError("no copy called %q (see 'einvault copies list')", o.only)
			}
			if !cs.hasCopies() {
				return usageError("the repository has no copies: add one with 'einvault copies add NAME LOCATION'")
			}
			start := time.Now()
			return reportOutcomes(g, "sync", syncCopies(ctx, g, cs, o), time.Since(start))
		},
	}
	cmd.Flags().StringVar(&o.only, "copy", "", "sync only this copy")
	cmd.Flags().IntVar(&o.workers, "workers", 4, "parallel transfers per copy")
	return cmd
}

func newRepairCmd(g *Globals) *cobra.Command {
	var o syncRun
	o.repair = true
	cmd := &cobra.Command{
		Use:   "repair",
		Short: "Rewrite damaged or missing files in every copy from a good copy",
		Long: `Read every file of every copy, and rewrite each one that is missing, truncated
or does not hash to its name from another copy whose version verifies. Then
report, per copy, what was verified and replaced. Afterwards every copy
should pass 'einvault check --all-copies --read-data'.

Exit codes: 0 all copies whole, 4 a copy could not be reached or written,
5 some file has no valid version in any copy.`,
		Example: "  einvault repair\n  einvault repair --json",
		Args:    argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cs, err := g.openCopySetRW(ctx, false)
			if err != nil {
				return err
			}
			defer cs.r.Close()
			defer cs.close()
			if !cs.hasCopies() {
				return usageError("the repository has no copies: use 'einvault check --read-data' to find damage")
			}
			start := time.Now()
			outs := syncCopies(ctx, g, cs, o)
			err = reportOutcomes(g, "repair", outs, time.Since(start))
			for _, oc := range outs {
				if oc.Result != nil && len(oc.Result.Unavailable) > 0 {
					return WithExit(ExitDamaged, fmt.Errorf("repair: %d file(s) have no valid version in any copy (first: %s); restore what is affected from another backup", len(oc.Result.Unavailable), oc.Result.Unavailable[0].File))
				}
			}
			return err
		},
	}
	cmd.Flags().IntVar(&o.workers, "workers", 4, "parallel transfers per copy")
	return cmd
}

// openCopySetRW opens the repository, its copies (creating new local
// ones with create) and keeps the password for key checks.
func (g *Globals) openCopySetRW(ctx context.Context, create bool) (*copySet, error) {
	r, err := g.OpenRepo(ctx)
	if err != nil {
		return nil, err
	}
	pw, err := g.Password("Repository password: ")
	if err != nil {
		r.Close()
		return nil, err
	}
	cs, err := g.loadCopySet(ctx, r, true, create)
	if err != nil {
		r.Close()
		return nil, err
	}
	cs.pw = pw
	return cs, nil
}
