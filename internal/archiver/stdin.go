package archiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/einvault/einvault/internal/repo"
)

// StreamFunc produces the streams of one source — a database dump and
// its globals, a command's output, standard input. It calls emit once
// per stream, in order, with a plain file name (no slashes) and a reader
// that emit consumes to the end before it returns. It returns metadata
// to record in the snapshot's Meta (nil for none). Any error — from emit
// or its own, such as a dump command that exited non-zero — aborts the
// backup: no snapshot is written, so nothing that looks complete but is
// not ever exists.
type StreamFunc func(ctx context.Context, emit func(name string, r io.Reader) error) (meta map[string]json.RawMessage, err error)

// Streams describes a stream backup.
type Streams struct {
	Source  string   // the snapshot's Source: "stdin", "postgresql", "mariadb", "sqlite", "command"
	Paths   []string // the snapshot's Paths (a DSN without its password, say); default "/NAME" of each stream
	Produce StreamFunc
}

// BackupReader stores a stream (`--stdin`) as a snapshot holding one file
// called name.
func (a *Archiver) BackupReader(ctx context.Context, rd io.Reader, name string) (*Result, error) {
	if !repo.ValidName(name) {
		return nil, fmt.Errorf("invalid --stdin-filename %q: give a plain file name without slashes", name)
	}
	return a.BackupStreams(ctx, Streams{Source: "stdin", Produce: func(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error) {
		if err := emit(name, rd); err != nil {
			if errors.Is(err, errUnreadable) {
				return nil, fmt.Errorf("read standard input: %w", err)
			}
			return nil, err
		}
		return nil, nil
	}})
}

// BackupStreams stores the streams a source produces as one snapshot, a
// flat tree with one file per stream. Streams are chunked and
// deduplicated like files, so a second dump of a mostly unchanged
// database adds little.
func (a *Archiver) BackupStreams(ctx context.Context, s Streams) (*Result, error) {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.cancel = cancel
	stop := a.startWorkers(ctx)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	now := a.repo.Now()
	var nodes []*repo.Node
	var total int64
	seen := map[string]bool{}
	emit := func(name string, rd io.Reader) error {
		if !repo.ValidName(name) {
			return fmt.Errorf("invalid stream name %q: a plain file name without slashes is needed", name)
		}
		if seen[name] {
			return fmt.Errorf("stream %q emitted twice", name)
		}
		seen[name] = true
		node := &repo.Node{Name: name, Type: repo.NodeFile, Mode: 0o600, ModTime: now, ChangeTime: now}
		w := &fileWorker{a: a}
		n, err := w.chunkReader(ctx, rd, name, node)
		if err != nil {
			return fmt.Errorf("store stream %s: %w", name, err)
		}
		nodes = append(nodes, n)
		total += int64(n.Size)
		return nil
	}
	meta, err := s.Produce(ctx, emit)
	stop()
	stopped = true
	if a.fatal != nil {
		return nil, a.fatal
	}
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, errors.New("the source produced no data: nothing to back up")
	}
	tid, err := a.repo.SaveTree(ctx, &repo.Tree{Nodes: nodes})
	if err != nil {
		return nil, err
	}
	if err := a.repo.Flush(ctx); err != nil {
		return nil, fmt.Errorf("finish upload: %w", err)
	}
	paths := s.Paths
	if len(paths) == 0 {
		for _, n := range nodes {
			paths = append(paths, "/"+n.Name)
		}
	}
	snap := &repo.Snapshot{Time: now, Host: a.opts.Host, Username: a.opts.Username, Paths: paths,
		Tags: a.opts.Tags, Source: s.Source, Kind: repo.KindFull, Tree: tid, Program: a.opts.Program, Meta: meta}
	snap.Summary = repo.Summary{FilesNew: uint64(len(nodes)), TotalFiles: uint64(len(nodes)), TotalBytes: uint64(total),
		BytesRead: a.bytesRead.Load(), BytesAdded: a.bytesAdded.Load(), Duration: time.Since(start).Seconds()}
	if _, err := a.repo.SaveSnapshot(ctx, snap); err != nil {
		return nil, err
	}
	return &Result{Snapshot: snap, NewPacks: newPacks(a.repo)}, nil
}
