package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"

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
