package checker

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/einvault/einvault/internal/repo"
)

// Subset chooses which packs --read-data-subset reads. The zero value
// chooses none.
//
//   - "N%" (or a fraction such as "0.1") picks that share of the packs at
//     random on every run (at least one pack), so repeated runs cover the
//     repository statistically.
//   - "n/N" picks the packs whose ID falls into bucket n of N (the first
//     four bytes of the ID modulo N). It is deterministic, and running
//     1/N, 2/N, ... N/N on successive days reads every pack exactly once.
type Subset struct {
	Fraction float64 // in (0, 1]
	N, Of    int     // 1 <= N <= Of
}

// IsZero reports whether s selects nothing.
func (s Subset) IsZero() bool { return s.Fraction == 0 && s.Of == 0 }

func (s Subset) String() string {
	switch {
	case s.Of > 0:
		return fmt.Sprintf("%d/%d", s.N, s.Of)
	case s.Fraction > 0:
		return strconv.FormatFloat(s.Fraction*100, 'g', 4, 64) + "%"
	}
	return "none"
}

// ParseSubset parses "10%", "2.5%", "0.1" or "2/7".
func ParseSubset(v string) (Subset, error) {
	v = strings.TrimSpace(v)
	if n, of, ok := strings.Cut(v, "/"); ok {
		a, err1 := strconv.Atoi(n)
		b, err2 := strconv.Atoi(of)
		if err1 != nil || err2 != nil || b < 1 || a < 1 || a > b {
			return Subset{}, fmt.Errorf("invalid subset %q: want n/N with 1 <= n <= N", v)
		}
		return Subset{N: a, Of: b}, nil
	}
	pct := strings.HasSuffix(v, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if err != nil || math.IsNaN(f) {
		return Subset{}, fmt.Errorf("invalid subset %q: want a percentage such as 10%% or n/N such as 2/7", v)
	}
	if pct {
		f /= 100
	} else if f > 1 {
		return Subset{}, fmt.Errorf("invalid subset %q: a fraction must be at most 1 (write %q for a percentage)", v, v+"%")
	}
	if f <= 0 || f > 1 {
		return Subset{}, fmt.Errorf("invalid subset %q: must be more than 0%% and at most 100%%", v)
	}
	return Subset{Fraction: f}, nil
}

// bucket reports whether id is in bucket s.N of s.Of.
func (s Subset) bucket(id repo.ID) bool {
	return int(binary.BigEndian.Uint32(id[:4])%uint32(s.Of)) == s.N-1
}

// choose returns the chosen packs among ids (sorted, so the choice is
// reproducible for n/N).
func (s Subset) choose(ids repo.IDs, rng *rand.Rand) repo.IDs {
	switch {
	case s.Of > 0:
		var out repo.IDs
		for _, id := range ids {
			if s.bucket(id) {
				out = append(out, id)
			}
		}
		return out
	case s.Fraction > 0:
		if len(ids) == 0 {
			return nil
		}
		k := max(1, int(math.Ceil(s.Fraction*float64(len(ids)))))
		k = min(k, len(ids))
		perm := append(repo.IDs(nil), ids...)
		if rng == nil {
			rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
		}
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		out := perm[:k]
		out.Sort()
		return out
	}
	return nil
}

// Choose returns the packs of ids that s selects (ids need not be
// sorted; the result is sorted). rng drives a random share; nil seeds one.
func (s Subset) Choose(ids repo.IDs, rng *rand.Rand) repo.IDs {
	sorted := append(repo.IDs(nil), ids...)
	sorted.Sort()
	return s.choose(sorted, rng)
}
