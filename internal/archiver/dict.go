package archiver

import (
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/einvault/einvault/internal/repo"
)

// Sampling limits for a repository's compression dictionary.
const (
	sampleKeep    = 96    // files kept by reservoir sampling
	sampleVisits  = 20000 // directory entries looked at, at most
	sampleMinSize = 512
)

// makeDictionary gives a repository without a compression dictionary one
// made of sample small files of this backup, before any blob is written,
// so the many small files that follow (invoices) compress several times
// better. It costs one bounded walk and reading sampleKeep files.
func (a *Archiver) makeDictionary(ctx context.Context, paths []string) {
	if a.repo.HasDictionary() {
		return
	}
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	var picked []string
	seen, visits := 0, 0
	enough := errors.New("enough samples")
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if visits++; visits > sampleVisits {
				return enough
			}
			if p != root && a.opts.Excluder.Excluded(p) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			fi, err := d.Info()
			if err != nil || fi.Size() < sampleMinSize || fi.Size() > repo.DictMaxBlob/4 {
				return nil
			}
			// Reservoir sampling over the small files seen.
			seen++
			if len(picked) < sampleKeep {
				picked = append(picked, p)
			} else if j := rng.IntN(seen); j < sampleKeep {
				picked[j] = p
			}
			return nil
		})
		if err != nil {
			break
		}
	}
	var content []byte
	for _, p := range picked {
		b, err := os.ReadFile(p)
		if err != nil || looksCompressed(b) {
			continue
		}
		content = append(content, b...)
	}
	if err := a.repo.AddDictionary(ctx, content); err != nil && !errors.Is(err, repo.ErrTooFewSamples) {
		// A dictionary only saves space; the backup goes on without one.
		a.opts.Logger.Warn("no compression dictionary", "err", err)
	}
}

// looksCompressed guesses from the first KiB whether data is already
// compressed or encrypted (nearly every byte value occurs).
func looksCompressed(b []byte) bool {
	var seen [256]bool
	n := 0
	for _, c := range b[:min(len(b), 1024)] {
		if !seen[c] {
			seen[c] = true
			n++
		}
	}
	return n > 200
}
