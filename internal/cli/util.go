package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/einvault/einvault/internal/repo"
)

// absPaths makes paths absolute and sorts them, as snapshots record them.
func absPaths(args []string) ([]string, error) {
	out := make([]string, 0, len(args))
	for _, a := range args {
		p, err := filepath.Abs(a)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", a, err)
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

func writeJSONLine(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// announceBackup registers a running backup with a lock file so that a
// concurrent prune keeps everything it may reference. It never blocks.
// Take it before loading the index.
func announceBackup(ctx context.Context, r *repo.Repository) (func(), error) {
	l, err := r.Lock(ctx, repo.LockBackup)
	if err != nil {
		return nil, err
	}
	return func() { _ = l.Unlock(context.WithoutCancel(ctx)) }, nil
}

// parseBytes reads a size such as "512MiB", "2G", "1048576".
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q: use a number with an optional unit such as 512MiB or 2G", s)
	}
	return int64(n * float64(mult)), nil
}
