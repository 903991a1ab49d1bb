package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/replica"
	"github.com/einvault/einvault/internal/repo"
)

// backupCopies is the copy handling of one backup: pre-flight of every
// destination, fail-over when the repository given with -r fails it, and
// the sync afterwards.
type backupCopies struct {
	cs       *copySet
	writer   *repo.Repository // nil: the -r repository
	failures []copyOutcome
	probed   map[string]string // pre-flight errors by copy name
	streamer *replica.Streamer // nil: nothing streamed while the backup ran
}

// streamToCopies sends the packs the backup writes on to the copies that
// passed the pre-flight while the backup runs (see replica.Streamer), so
// the sync in finish has little left to do. Only a primary on a local
// file system streams: reading a pack back from a remote primary would
// download it again. EINVAULT_STREAM_COPIES=0 turns it off (the sync
// after the backup then copies everything).
func (t *backupTarget) streamToCopies(ctx context.Context, g *Globals) {
	bc := t.bc
	if bc == nil || bc.streamer != nil || (g.Getenv != nil && g.Getenv("EINVAULT_STREAM_COPIES") == "0") {
		return
	}
	self := bc.cs.members[0]
	if _, ok := t.r.Backend().(backend.TempFiler); !ok {
		return
	}
	var dsts []replica.Member
	for _, m := range bc.cs.members[1:] {
		if msg, ok := bc.probed[m.Name]; ok && msg == "" {
			dsts = append(dsts, m)
		}
	}
	if len(dsts) == 0 {
		return
	}
	self.Backend = t.r.Backend()
	bc.streamer = replica.NewStreamer(ctx, self, dsts, 2, g.Logger())
	t.r.UseBackend(bc.streamer.Backend())
}

// estimateUpload guesses what a backup will add: the most any of the last
// ten snapshots stored.
func estimateUpload(ctx context.Context, r *repo.Repository) int64 {
	snaps, _ := r.Snapshots(ctx)
	var most int64
	for i := len(snaps) - 1; i >= 0 && i >= len(snaps)-10; i-- {
		n := int64(snaps[i].Summary.BytesStored)
		if n == 0 {
			n = int64(snaps[i].Summary.BytesAdded)
		}
		most = max(most, n)
	}
	return most
}

// prepareBackupCopies runs the pre-flight. It returns nil when the
// repository has no copies.
func prepareBackupCopies(ctx context.Context, g *Globals, r *repo.Repository) (*backupCopies, error) {
	cs0, err := g.loadCopySet(ctx, r, false, false)
	if err != nil || !cs0.hasCopies() {
		return nil, err
	}
	cs, err := g.loadCopySet(ctx, r, true, true)
	if err != nil {
		return nil, err
	}
	if cs.pw, err = g.Password("Repository password: "); err != nil {
		return nil, err
	}
	bc := &backupCopies{cs: cs}
	t0 := time.Now()
	for _, f := range cs.failed {
		bc.failures = append(bc.failures, copyOutcome{Copy: f.Copy, Error: f.Error})
	}
	need := estimateUpload(ctx, r)
	g.Logger().Debug("copies: opened", "copies", len(cs.members), "took", time.Since(t0))
	probes := replica.PreflightAll(ctx, cs.members, replica.PreflightOptions{Write: true, Need: need})
	g.Logger().Debug("copies: pre-flight done", "took", time.Since(t0))
	bc.probed = map[string]string{}
	for i, p := range probes {
		bc.probed[p.Copy] = p.Error
		if !p.OK() {
			bc.failures = append(bc.failures, copyOutcome{Copy: p.Copy, Error: p.Error})
			g.Warnf("pre-flight: %s\n", p.Error)
			cs.update(cs.members[i].Name, func(c *replica.Copy) { c.Behind = true })
		}
	}
	if probes[0].OK() {
		return bc, nil
	}
	// The -r repository failed: write to the next healthy copy in order.
	order := cs.members[1:]
	for _, m := range replica.ReadOrder(order) {
		ok := false
		for i, p := range probes {
			if cs.members[i].Name == m.Name && p.OK() {
				ok = true
			}
		}
		if !ok {
			continue
		}
		w, err := repo.Open(ctx, m.Backend, cs.pw, g.repoOptions())
		if err != nil {
			bc.failures = append(bc.failures, copyOutcome{Copy: m.Name, Error: fmt.Sprintf("copy %q: %s", m.Name, oneLine(err))})
			continue
		}
		g.Warnf("backup goes to copy %q instead; copy %q will be caught up by the next sync or backup\n", m.Name, cs.members[0].Name)
		bc.writer = w
		// From here on the writer is "self" for the sync.
		var rest []replica.Member
		for _, x := range cs.members {
			if x.Name != m.Name {
				rest = append(rest, x)
			}
		}
		cs.members = append([]replica.Member{m}, rest...)
		cs.r = w
		cs.self = cs.list.Find(m.Name)
		return bc, nil
	}
	return nil, WithExit(ExitDegraded, fmt.Errorf("no copy passed the pre-flight check (first: %s)", probes[0].Error))
}

// finish syncs the new snapshot to the copies (unless noSync) and
// reports every failing copy in one line; the error is the degraded exit.
func (bc *backupCopies) finish(ctx context.Context, g *Globals, noSync bool) error {
	outs := bc.failures
	var streamed []replica.StreamStats
	t0 := time.Now()
	if bc.streamer != nil {
		streamed = bc.streamer.Finish()
		g.Logger().Debug("copies: streams finished", "took", time.Since(t0))
		for _, st := range streamed {
			g.Logger().Debug("streamed to copy while the backup ran", "copy", st.Copy, "files", st.Files, "bytes", st.Bytes, "stopped", st.Failed)
		}
	}
	if !noSync {
		for _, o := range syncCopies(ctx, g, bc.cs, syncRun{additive: true, workers: 4, preflighted: bc.probed}) {
			dup := false
			for _, f := range outs {
				if f.Copy == o.Copy && !o.OK {
					dup = true
				}
			}
			for _, st := range streamed {
				if st.Copy == o.Copy && o.Result != nil {
					// What went while the backup ran counts as copied.
					o.Result.Copied += st.Files
					o.Result.CopiedBytes += st.Bytes
				}
			}
			if !dup {
				outs = append(outs, o)
			}
		}
	} else if err := bc.cs.save(ctx, g, nil); err != nil {
		g.Warnf("warning: %v\n", err)
	}
	g.Logger().Debug("copies: synced", "took", time.Since(t0))
	failed := 0
	for _, o := range outs {
		if !o.OK {
			failed++
			g.Warnf("degraded: %s\n", o.Error)
		}
	}
	if g.JSON {
		_ = writeJSONLine(g.Stdout, map[string]any{"message_type": "copies", "copies": outs})
	}
	if failed > 0 {
		return WithExit(ExitDegraded, fmt.Errorf("backup %w: saved, but %d copy(ies) failed (each named above); run 'einvault sync' when they are back", errDegraded, failed))
	}
	return nil
}
