package cli

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"

	"github.com/einvault/einvault/internal/checker"
	"github.com/einvault/einvault/internal/config"
	"github.com/einvault/einvault/internal/daemon"
	"github.com/einvault/einvault/internal/repo"
)

// newPackVerification is what a job's verification read: the packs the
// backup wrote, the share the job's verify setting chose and, when those
// exceeded the budget, the random sample within it.
type newPackVerification struct {
	New      int      // packs the backup wrote
	NewBytes int64    // their size
	Chosen   int      // chosen by the verify share
	Read     int      // read and verified
	Bytes    int64    // bytes read
	Sampled  bool     // the budget cut the chosen packs down to a sample
	Damaged  []string // packs found damaged (short IDs)
	Share    string
	Budget   int64
}

// Detail is the journal's description of the verification.
func (v newPackVerification) Detail() string {
	if v.New == 0 {
		return "verify: the backup wrote no new packs (all data was already stored)"
	}
	s := fmt.Sprintf("verify %s of new packs: read %d of %d new packs (%s of %s)", v.Share, v.Read, v.New, formatBytes(uint64(v.Bytes)), formatBytes(uint64(v.NewBytes)))
	if v.Sampled {
		s += fmt.Sprintf(", a random sample of the %d chosen within the %s budget", v.Chosen, formatBytes(uint64(v.Budget)))
	}
	if len(v.Damaged) > 0 {
		return s + "; DAMAGED: " + strings.Join(v.Damaged, ", ")
	}
	return s + "; all intact"
}

// chooseNewPacks picks the packs to verify: the verify share of packs
// ("all", "25%", "2/10"), then, when they add up to more than budget
// bytes, a random sample within the budget (always at least one pack).
// byShare is how many the share chose before the budget.
func chooseNewPacks(packs []daemon.Pack, share string, budget int64, rng *rand.Rand) (chosen []daemon.Pack, byShare int, err error) {
	if rng == nil {
		rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	byID := map[repo.ID]daemon.Pack{}
	var ids repo.IDs
	for _, p := range packs {
		id, err := repo.ParseID(p.ID)
		if err != nil {
			return nil, 0, fmt.Errorf("new pack %q: %w", p.ID, err)
		}
		if _, dup := byID[id]; !dup {
			ids = append(ids, id)
		}
		byID[id] = p
	}
	if share != "" && share != "all" {
		sub, err := checker.ParseSubset(share)
		if err != nil {
			return nil, 0, err
		}
		ids = sub.Choose(ids, rng)
	} else {
		ids.Sort()
	}
	var total int64
	for _, id := range ids {
		chosen = append(chosen, byID[id])
		total += byID[id].Size
	}
	byShare = len(chosen)
	if budget <= 0 || total <= budget {
		return chosen, byShare, nil
	}
	rng.Shuffle(len(chosen), func(i, j int) { chosen[i], chosen[j] = chosen[j], chosen[i] })
	var out []daemon.Pack
	var sum int64
	for _, p := range chosen {
		if len(out) > 0 && sum+p.Size > budget {
			continue
		}
		out = append(out, p)
		sum += p.Size
	}
	return out, byShare, nil
}

// verifyNewPacks is the verification step of a job: it reads the chosen
// share of the packs the job's backup wrote and verifies each (hash,
// header against the index, every blob). Damage is exit code 5.
func (cr cliRunner) verifyNewPacks(ctx context.Context, cfg *config.Config, op daemon.Op) (newPackVerification, error) {
	v := newPackVerification{New: len(op.Packs), Share: op.Job.Verify, Budget: op.Job.VerifyBytes}
	if v.Share == "" {
		v.Share = config.DefaultVerify
	}
	for _, p := range op.Packs {
		v.NewBytes += p.Size
	}
	if len(op.Packs) == 0 {
		return v, nil
	}
	chosen, byShare, err := chooseNewPacks(op.Packs, v.Share, v.Budget, cr.rng)
	if err != nil {
		return v, err
	}
	v.Chosen, v.Sampled = byShare, len(chosen) < byShare
	g := cr.g
	sub := &Globals{Repo: cfg.Repository.Location, PasswordFile: cfg.Repository.PasswordFile, Stdin: strings.NewReader(""), Stdout: io.Discard,
		Stderr: io.Discard, Getenv: g.Getenv, cfg: cfg, log: cr.log, noJournal: true}
	r, err := sub.OpenRepo(ctx)
	if err != nil {
		return v, err
	}
	defer r.Close()
	ids := make(repo.IDs, 0, len(chosen))
	for _, p := range chosen {
		id, _ := repo.ParseID(p.ID)
		ids = append(ids, id)
	}
	rep, err := checker.VerifyPacks(ctx, r, ids, checker.Options{})
	if err != nil {
		return v, fmt.Errorf("verify the new packs: %w", err)
	}
	v.Read, v.Bytes = rep.Stats.PacksRead, rep.Stats.BytesRead
	for _, p := range rep.Errors {
		if p.File != "" {
			v.Damaged = append(v.Damaged, strings.TrimPrefix(p.File, "data/"))
		}
	}
	if rep.Damaged() {
		if len(v.Damaged) == 0 {
			v.Damaged = append(v.Damaged, rep.Errors[0].Kind)
		}
		return v, WithExit(ExitDamaged, fmt.Errorf("%w: %d of %d new packs read back damaged (%s): run 'einvault check --read-data' and back up again",
			repo.ErrDamaged, len(v.Damaged), v.Read, strings.Join(v.Damaged, ", ")))
	}
	return v, nil
}
