// Package archiver turns files and streams into a snapshot: it walks the
// sources, reuses what the parent snapshot already holds, chunks and
// hashes new content, and hands blobs to the repository, overlapping
// reading, chunking, hashing, compressing, sealing and uploading.
package archiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	chunkers "github.com/PlakarKorp/go-cdc-chunkers"
	_ "github.com/PlakarKorp/go-cdc-chunkers/chunkers/fastcdc" // registers FastCDC
	"github.com/einvault/einvault/internal/repo"
)

// Repository is what the archiver needs from a repository.
type Repository interface {
	Config() repo.Config
	ChunkerKey() []byte
	BlobID(data []byte) repo.ID
	HasBlob(id repo.ID) bool
	SaveBlob(ctx context.Context, t repo.BlobType, id repo.ID, data []byte) (bool, int, error)
	SaveTree(ctx context.Context, t *repo.Tree) (repo.ID, error)
	LoadTree(ctx context.Context, id repo.ID) (*repo.Tree, error)
	Flush(ctx context.Context) error
	HasDictionary() bool
	AddDictionary(ctx context.Context, content []byte) error
	SaveSnapshot(ctx context.Context, s *repo.Snapshot) (repo.ID, error)
	Now() time.Time
}

// Progress receives counters while a backup runs. Implementations must
// be cheap and safe for concurrent use.
type Progress interface {
	Update(Counters)
}

// Counters are the running totals of a backup.
type Counters struct {
	TotalFiles, TotalBytes uint64 // from the scanner; grow as it walks
	ScanDone               bool
	Files, Bytes           uint64 // processed so far
	BytesRead              uint64
	BytesAdded             uint64
	Errors                 uint64
	Current                string
}

// Options configure a backup.
type Options struct {
	Excluder      *Excluder
	OneFileSystem bool
	// Parent's tree is compared against; nil reads everything.
	Parent   *repo.Snapshot
	Kind     string
	Host     string
	Username string
	Tags     []string
	Program  string
	Progress Progress
	// Workers reading files; default GOMAXPROCS+2.
	Workers int
	Logger  *slog.Logger
	// Observer, if set, is shown every regular file the backup stores
	// (the invoice catalog is built this way).
	Observer Observer
	// ObserveLimit is the size of the largest file whose bytes the
	// Observer receives; default DefaultObserveLimit.
	ObserveLimit int64
}

// DefaultObserveLimit is the default Options.ObserveLimit.
const DefaultObserveLimit = 16 << 20

// Observer watches the files a backup stores. File is called from the
// file workers, several at once, and data is valid only during the call:
// an observer copies what it keeps. CPU work on data may run in the call
// (the workers run in parallel and the bytes need no copy); anything
// that waits (I/O, locks held long) belongs in its own goroutines, so
// that it does not hold up the backup.
type Observer interface {
	// File reports one regular file once its content is known. data
	// holds the file's bytes when the backup read it and it is at most
	// ObserveLimit bytes long, nil otherwise; reused is true for a file
	// unchanged since the parent snapshot (not read).
	File(path string, node *repo.Node, data []byte, reused bool)
	// Finish runs after every blob is stored and indexed and before the
	// snapshot is written; a non-nil ID is recorded as Snapshot.Catalog.
	Finish(ctx context.Context) (*repo.ID, error)
}

// Unreadable is a source file that could not be read.
type Unreadable struct {
	Path string `json:"path"`
	Err  string `json:"error"`
}

// Result is a finished backup.
type Result struct {
	Snapshot   *repo.Snapshot
	Unreadable []Unreadable
	// NewPacks are the packs this backup wrote (empty when the
	// repository does not tell, or when every blob was already stored):
	// what the post-backup verification reads back.
	NewPacks []repo.WrittenPack
}

// packWriter is a repository that tells which packs it wrote.
type packWriter interface{ WrittenPacks() []repo.WrittenPack }

func newPacks(r Repository) []repo.WrittenPack {
	if pw, ok := r.(packWriter); ok {
		return pw.WrittenPacks()
	}
	return nil
}

// Archiver runs one backup at a time.
type Archiver struct {
	repo  Repository
	opts  Options
	names idNames

	fileJobs chan fileJob
	blobJobs chan blobJob
	blobWG   sync.WaitGroup
	errOnce  sync.Once
	fatal    error
	cancel   context.CancelFunc

	mu         sync.Mutex
	unreadable []Unreadable
	sum        repo.Summary

	files, bytes, bytesRead, bytesAdded, errs atomic.Uint64
	totalFiles, totalBytes                    atomic.Uint64
	scanDone                                  atomic.Bool
	current                                   atomic.Pointer[string]

	// bufs is a free list of blob buffers. Unlike a sync.Pool it
	// survives garbage collections, which run often under the
	// CLI's low GOGC: a pool emptied by every collection meant a fresh
	// multi-MiB allocation (zeroed and page-faulted in) for most chunks.
	bufs chan *[]byte
}

// New returns an archiver writing into r.
func New(r Repository, opts Options) *Archiver {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0) + 2
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ObserveLimit <= 0 {
		opts.ObserveLimit = DefaultObserveLimit
	}
	if opts.Kind == "" {
		opts.Kind = repo.KindIncremental
		if opts.Parent == nil {
			opts.Kind = repo.KindFull
		}
	}
	a := &Archiver{repo: r, opts: opts, names: idNames{users: map[uint32]string{}, groups: map[uint32]string{}}}
	a.bufs = make(chan *[]byte, 2*runtime.GOMAXPROCS(0)+2)
	return a
}

type future struct {
	done chan struct{}
	node *repo.Node
	err  error
}

func resolved(n *repo.Node, err error) *future {
	f := &future{done: make(chan struct{}), node: n, err: err}
	close(f.done)
	return f
}

func (f *future) wait(ctx context.Context) (*repo.Node, error) {
	select {
	case <-f.done:
		return f.node, f.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type fileJob struct {
	path   string
	node   *repo.Node
	result *future
}

type blobJob struct {
	t    repo.BlobType
	id   repo.ID
	data *[]byte
}

func (a *Archiver) fail(err error) {
	a.errOnce.Do(func() {
		a.fatal = err
		a.cancel()
	})
}

func (a *Archiver) counters() Counters {
	c := Counters{
		TotalFiles: a.totalFiles.Load(), TotalBytes: a.totalBytes.Load(), ScanDone: a.scanDone.Load(),
		Files: a.files.Load(), Bytes: a.bytes.Load(), BytesRead: a.bytesRead.Load(),
		BytesAdded: a.bytesAdded.Load(), Errors: a.errs.Load(),
	}
	if p := a.current.Load(); p != nil {
		c.Current = *p
	}
	return c
}

func (a *Archiver) startWorkers(ctx context.Context) (stop func()) {
	a.fileJobs = make(chan fileJob, 64)
	a.blobJobs = make(chan blobJob, runtime.GOMAXPROCS(0))
	var fileWG sync.WaitGroup
	for i := 0; i < a.opts.Workers; i++ {
		fileWG.Add(1)
		go func() {
			defer fileWG.Done()
			w := &fileWorker{a: a}
			for j := range a.fileJobs {
				n, err := w.save(ctx, j.path, j.node)
				j.result.node, j.result.err = n, err
				close(j.result.done)
			}
		}()
	}
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		a.blobWG.Add(1)
		go func() {
			defer a.blobWG.Done()
			for j := range a.blobJobs {
				if ctx.Err() == nil {
					added, _, err := a.repo.SaveBlob(ctx, j.t, j.id, *j.data)
					if err != nil {
						a.fail(err)
					} else if added {
						a.bytesAdded.Add(uint64(len(*j.data)))
					}
				}
				a.putBuf(j.data)
			}
		}()
	}
	return func() {
		close(a.fileJobs)
		fileWG.Wait()
		close(a.blobJobs)
		a.blobWG.Wait()
	}
}

func (a *Archiver) getBuf(n int) *[]byte {
	var b *[]byte
	select {
	case b = <-a.bufs:
	default:
	}
	if b == nil || cap(*b) < n {
		nb := make([]byte, n, max(n, 64<<10))
		b = &nb
	}
	*b = (*b)[:n]
	return b
}

// putBuf keeps b for reuse unless it is very large or the free list is
// full (the list is sized to the buffers in flight).
func (a *Archiver) putBuf(b *[]byte) {
	if cap(*b) > 8<<20 {
		return
	}
	select {
	case a.bufs <- b:
	default:
	}
}

// saveData queues a blob unless the repository has it.
func (a *Archiver) saveData(ctx context.Context, data []byte) (repo.ID, error) {
	id := a.repo.BlobID(data)
	if a.repo.HasBlob(id) {
		return id, nil
	}
	b := a.getBuf(len(data))
	copy(*b, data)
	select {
	case a.blobJobs <- blobJob{t: repo.DataBlob, id: id, data: b}:
	case <-ctx.Done():
		return id, ctx.Err()
	}
	return id, nil
}

type fileWorker struct {
	a   *Archiver
	ch  *chunkers.Chunker
	buf []byte
}

func (w *fileWorker) save(ctx context.Context, path string, node *repo.Node) (*repo.Node, error) {
	a := w.a
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	a.current.Store(&path)
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NOATIME, 0)
	if errors.Is(err, syscall.EPERM) {
		f, err = os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	}
	if err != nil {
		return nil, a.unreadableErr(path, err)
	}
	defer f.Close()
	var content []repo.ID
	var read uint64
	cfg := a.repo.Config()
	if node.Size < uint64(cfg.SmallFile) {
		b := a.getBuf(int(node.Size) + 1)
		n, err := io.ReadFull(f, *b)
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			a.putBuf(b)
			return nil, a.unreadableErr(path, err)
		}
		if n > int(node.Size) {
			// grew while we read it: read the rest with the chunker
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				a.putBuf(b)
				return nil, a.unreadableErr(path, err)
			}
			a.putBuf(b)
			return w.chunk(ctx, f, path, node)
		}
		data := (*b)[:n]
		id := a.repo.BlobID(data)
		read = uint64(n)
		content = []repo.ID{id}
		if a.opts.Observer != nil {
			node.Content, node.Size = content, read
			a.opts.Observer.File(path, node, data, false)
		}
		if !a.repo.HasBlob(id) {
			*b = data
			select {
			case a.blobJobs <- blobJob{t: repo.DataBlob, id: id, data: b}:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		} else {
			a.putBuf(b)
		}
		node.Content = content
		node.Size = read
		a.bytesRead.Add(read)
		return node, nil
	}
	return w.chunk(ctx, f, path, node)
}

func (w *fileWorker) chunk(ctx context.Context, f *os.File, path string, node *repo.Node) (*repo.Node, error) {
	return w.chunkReader(ctx, f, path, node)
}

func (w *fileWorker) chunkReader(ctx context.Context, f io.Reader, path string, node *repo.Node) (*repo.Node, error) {
	a := w.a
	cfg := a.repo.Config().Chunker
	if w.ch == nil {
		if w.buf == nil {
			w.buf = make([]byte, cfg.Max)
		}
		ch, err := chunkers.NewChunkerBuffer(cfg.Algorithm, f, &chunkers.ChunkerOpts{MinSize: cfg.Min, NormalSize: cfg.Avg, MaxSize: cfg.Max, Key: a.repo.ChunkerKey()}, w.buf)
		if err != nil {
			return nil, fmt.Errorf("chunker: %w", err)
		}
		w.ch = ch
	} else {
		w.ch.Reset(f)
	}
	var content []repo.ID
	var size uint64
	var seen []byte // the file's bytes for the observer
	observe := a.opts.Observer != nil && int64(node.Size) <= a.opts.ObserveLimit
	if observe {
		seen = make([]byte, 0, node.Size) // the size from lstat: usually exact
	}
	for {
		c, err := w.ch.Next()
		if err != nil && err != io.EOF {
			return nil, a.unreadableErr(path, err)
		}
		if len(c) > 0 {
			id, serr := a.saveData(ctx, c)
			if serr != nil {
				return nil, serr
			}
			content = append(content, id)
			size += uint64(len(c))
			a.bytesRead.Add(uint64(len(c)))
			if observe {
				if int64(size) > a.opts.ObserveLimit {
					observe, seen = false, nil
				} else {
					seen = append(seen, c...)
				}
			}
		}
		if err == io.EOF {
			break
		}
	}
	if len(content) == 0 {
		id, err := a.saveData(ctx, nil)
		if err != nil {
			return nil, err
		}
		content = []repo.ID{id}
	}
	node.Content = content
	node.Size = size
	if a.opts.Observer != nil {
		if !observe {
			seen = nil
		} else if seen == nil {
			seen = []byte{}
		}
		a.opts.Observer.File(path, node, seen, false)
	}
	return node, nil
}

// errUnreadable marks a per-file error that does not stop the backup.
var errUnreadable = errors.New("unreadable")

func (a *Archiver) unreadableErr(path string, err error) error {
	a.mu.Lock()
	a.unreadable = append(a.unreadable, Unreadable{Path: path, Err: err.Error()})
	a.mu.Unlock()
	a.errs.Add(1)
	return fmt.Errorf("%w: %s: %v", errUnreadable, path, err)
}

// Backup stores paths (files or directories) as a new snapshot.
func (a *Archiver) Backup(ctx context.Context, paths []string) (*Result, error) {
	start := time.Now()
	if len(paths) == 0 {
		return nil, errors.New("nothing to back up: give at least one path")
	}
	var abs []string
	for _, p := range paths {
		ap, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", p, err)
		}
		if _, err := os.Lstat(ap); err != nil {
			return nil, fmt.Errorf("source %s: %w", p, err)
		}
		abs = append(abs, ap)
	}
	sort.Strings(abs)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a.cancel = cancel
	a.makeDictionary(ctx, abs)
	if a.opts.Progress != nil {
		go a.scan(ctx, abs) // totals for the ETA only
	}
	stopProgress := a.runProgress(ctx)
	stop := a.startWorkers(ctx)

	var parentRoot *repo.Tree
	if a.opts.Parent != nil {
		t, err := a.repo.LoadTree(ctx, a.opts.Parent.Tree)
		if err == nil {
			parentRoot = t
		}
	}
	rootFut := a.saveVirtual(ctx, "/", abs, parentRoot)
	root, err := rootFut.wait(ctx)
	stop()
	stopProgress()
	if a.fatal != nil {
		return nil, a.fatal
	}
	if err != nil {
		return nil, err
	}
	if err := a.repo.Flush(ctx); err != nil {
		return nil, fmt.Errorf("finish upload: %w", err)
	}
	snap := &repo.Snapshot{
		Time: a.repo.Now(), Host: a.opts.Host, Username: a.opts.Username, Paths: abs, Tags: a.opts.Tags,
		Source: "files", Kind: a.opts.Kind, Tree: *root.Subtree, Program: a.opts.Program,
	}
	if a.opts.Excluder != nil {
		snap.Excludes = a.opts.Excluder.Patterns()
	}
	if a.opts.Parent != nil {
		pid := a.opts.Parent.ID
		snap.Parent = &pid
	}
	a.mu.Lock()
	snap.Summary = a.sum
	unreadable := a.unreadable
	a.mu.Unlock()
	snap.Summary.FilesUnreadable = uint64(len(unreadable))
	snap.Summary.BytesRead = a.bytesRead.Load()
	snap.Summary.BytesAdded = a.bytesAdded.Load()
	if a.opts.Observer != nil {
		cat, err := a.opts.Observer.Finish(ctx)
		if err != nil {
			return nil, err
		}
		snap.Catalog = cat
	}
	snap.Summary.Duration = time.Since(start).Seconds()
	if _, err := a.repo.SaveSnapshot(ctx, snap); err != nil {
		return nil, err
	}
	return &Result{Snapshot: snap, Unreadable: unreadable, NewPacks: newPacks(a.repo)}, nil
}

// saveVirtual builds the directories above the sources: for sources
// /srv/inv and /etc/app it produces / -> srv -> inv and / -> etc -> app,
// with the metadata of the real directories.
func (a *Archiver) saveVirtual(ctx context.Context, dir string, sources []string, parent *repo.Tree) *future {
	children := map[string][]string{}
	var names []string
	for _, s := range sources {
		rel := strings.TrimPrefix(s, dir)
		rel = strings.TrimPrefix(rel, "/")
		first, _, _ := strings.Cut(rel, "/")
		if _, ok := children[first]; !ok {
			names = append(names, first)
		}
		children[first] = append(children[first], s)
	}
	sort.Strings(names)
	var futs []*future
	for _, name := range names {
		p := filepath.Join(dir, name)
		var pn *repo.Node
		if parent != nil {
			pn = parent.Find(name)
		}
		isSource := len(children[name]) == 1 && children[name][0] == p
		// A directory above a source may be reached through a symbolic
		// link (/proc/self, /srv/current -> releases/7): it is recorded
		// as the directory it leads to, or restore could not recreate
		// the path to the source.
		stat := os.Stat
		if isSource {
			stat = os.Lstat
		}
		fi, err := stat(p)
		if err != nil {
			futs = append(futs, resolved(nil, a.unreadableErr(p, err)))
			continue
		}
		if isSource {
			futs = append(futs, a.saveEntry(ctx, p, name, fi, pn, 0))
			continue
		}
		var sub *repo.Tree
		if pn != nil && pn.Type == repo.NodeDir {
			sub, _ = a.repo.LoadTree(ctx, *pn.Subtree)
		}
		inner := a.saveVirtual(ctx, p, children[name], sub)
		node := a.nodeFromInfo(name, fi)
		futs = append(futs, a.finishDir(ctx, node, []*future{inner}, true))
	}
	node := &repo.Node{Name: "", Type: repo.NodeDir, Mode: fs.ModeDir | 0o755}
	if dir != "/" {
		fi, err := os.Stat(dir)
		if err == nil {
			node = a.nodeFromInfo(filepath.Base(dir), fi)
		}
	}
	return a.finishDir(ctx, node, futs, false)
}

// finishDir waits for children and stores the tree. With unwrap, the
// single child future is itself a directory whose subtree becomes ours.
func (a *Archiver) finishDir(ctx context.Context, node *repo.Node, futs []*future, unwrap bool) *future {
	out := &future{done: make(chan struct{})}
	go func() {
		defer close(out.done)
		if unwrap {
			inner, err := futs[0].wait(ctx)
			if err != nil {
				out.err = err
				return
			}
			node.Subtree = inner.Subtree
			out.node = node
			return
		}
		tree := &repo.Tree{Nodes: make([]*repo.Node, 0, len(futs))}
		for _, f := range futs {
			n, err := f.wait(ctx)
			if err != nil {
				if errors.Is(err, errUnreadable) {
					continue
				}
				out.err = err
				return
			}
			tree.Nodes = append(tree.Nodes, n)
		}
		id, err := a.repo.SaveTree(ctx, tree)
		if err != nil {
			a.fail(err)
			out.err = err
			return
		}
		node.Subtree = &id
		out.node = node
	}()
	return out
}

// saveEntry stores one file-system entry (recursing into directories).
func (a *Archiver) saveEntry(ctx context.Context, p, name string, fi fs.FileInfo, parent *repo.Node, rootDev uint64) *future {
	if ctx.Err() != nil {
		return resolved(nil, ctx.Err())
	}
	node := a.nodeFromInfo(name, fi)
	switch node.Type {
	case repo.NodeFile:
		a.files.Add(1)
		a.bytes.Add(node.Size)
		if unchanged(parent, node) && a.allStored(parent.Content) {
			node.Content = parent.Content
			if a.opts.Observer != nil {
				a.opts.Observer.File(p, node, nil, true)
			}
			a.mu.Lock()
			a.sum.FilesUnchanged++
			a.sum.TotalFiles++
			a.sum.TotalBytes += node.Size
			a.mu.Unlock()
			return resolved(node, nil)
		}
		a.mu.Lock()
		if parent != nil && parent.Type == repo.NodeFile {
			a.sum.FilesChanged++
		} else {
			a.sum.FilesNew++
		}
		a.sum.TotalFiles++
		a.sum.TotalBytes += node.Size
		a.mu.Unlock()
		res := &future{done: make(chan struct{})}
		select {
		case a.fileJobs <- fileJob{path: p, node: node, result: res}:
		case <-ctx.Done():
			return resolved(nil, ctx.Err())
		}
		return res
	case repo.NodeSymlink:
		target, err := os.Readlink(p)
		if err != nil {
			return resolved(nil, a.unreadableErr(p, err))
		}
		node.LinkTarget = target
		return resolved(node, nil)
	case repo.NodeDir:
		return a.saveDir(ctx, p, node, parent, rootDev)
	}
	return resolved(node, nil)
}

func (a *Archiver) allStored(ids []repo.ID) bool {
	for _, id := range ids {
		if !a.repo.HasBlob(id) {
			return false
		}
	}
	return true
}

func (a *Archiver) saveDir(ctx context.Context, p string, node *repo.Node, parent *repo.Node, rootDev uint64) *future {
	if rootDev == 0 {
		rootDev = node.DeviceID
	}
	var ptree *repo.Tree
	if parent != nil && parent.Type == repo.NodeDir && parent.Subtree != nil {
		ptree, _ = a.repo.LoadTree(ctx, *parent.Subtree)
	}
	a.mu.Lock()
	switch {
	case ptree == nil:
		a.sum.DirsNew++
	case parent.ModTime.Equal(node.ModTime):
		a.sum.DirsUnchanged++
	default:
		a.sum.DirsChanged++
	}
	a.mu.Unlock()
	var futs []*future
	if !a.opts.OneFileSystem || node.DeviceID == rootDev {
		entries, err := os.ReadDir(p)
		if err != nil {
			a.unreadableErr(p, err)
		}
		for _, e := range entries {
			cp := filepath.Join(p, e.Name())
			if a.opts.Excluder.Excluded(cp) {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					a.unreadableErr(cp, err)
				}
				continue
			}
			var pn *repo.Node
			if ptree != nil {
				pn = ptree.Find(e.Name())
			}
			futs = append(futs, a.saveEntry(ctx, cp, e.Name(), fi, pn, rootDev))
		}
	}
	return a.finishDir(ctx, node, futs, false)
}
