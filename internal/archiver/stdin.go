package archiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/einvault/einvault/internal/repo"
)

// BackupReader stores a stream (a database dump, `--stdin`) as a snapshot
// holding one file called name.
func (a *Archiver) BackupReader(ctx context.Context, rd io.Reader, name string) (*Result, error) {
	start := time.Now()
	if !repo.ValidName(name) {
		return nil, fmt.Errorf("invalid --stdin-filename %q: give a plain file name without slashes", name)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.cancel = cancel
	stop := a.startWorkers(ctx)
	now := a.repo.Now()
	node := &repo.Node{Name: name, Type: repo.NodeFile, Mode: 0o600, ModTime: now, ChangeTime: now}
	w := &fileWorker{a: a}
	n, err := w.chunkReader(ctx, rd, name, node)
	stop()
	if a.fatal != nil {
		return nil, a.fatal
	}
	if err != nil {
		if errors.Is(err, errUnreadable) {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return nil, err
	}
	tid, err := a.repo.SaveTree(ctx, &repo.Tree{Nodes: []*repo.Node{n}})
	if err != nil {
		return nil, err
	}
	if err := a.repo.Flush(ctx); err != nil {
		return nil, fmt.Errorf("finish upload: %w", err)
	}
	snap := &repo.Snapshot{Time: now, Host: a.opts.Host, Username: a.opts.Username, Paths: []string{"/" + name},
		Tags: a.opts.Tags, Source: "stdin", Kind: repo.KindFull, Tree: tid, Program: a.opts.Program}
	snap.Summary = repo.Summary{FilesNew: 1, TotalFiles: 1, TotalBytes: n.Size, BytesRead: a.bytesRead.Load(),
		BytesAdded: a.bytesAdded.Load(), Duration: time.Since(start).Seconds()}
	if _, err := a.repo.SaveSnapshot(ctx, snap); err != nil {
		return nil, err
	}
	return &Result{Snapshot: snap}, nil
}
