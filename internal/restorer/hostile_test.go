package restorer

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/repo"
)

// Trees built by hand, bypassing the archiver, as a hostile or corrupted
// repository could hold them.

func fileNode(t *testing.T, r *repo.Repository, name, data string) *repo.Node {
	t.Helper()
	id := r.BlobID([]byte(data))
	if _, _, err := r.SaveBlob(context.Background(), repo.DataBlob, id, []byte(data)); err != nil {
		t.Fatal(err)
	}
	return &repo.Node{Name: name, Type: repo.NodeFile, Mode: 0o644, ModTime: oldTime, Size: uint64(len(data)), Content: []repo.ID{id}}
}

func dirNode(t *testing.T, r *repo.Repository, name string, nodes ...*repo.Node) *repo.Node {
	t.Helper()
	id := saveTree(t, r, nodes...)
	return &repo.Node{Name: name, Type: repo.NodeDir, Mode: fs.ModeDir | 0o755, ModTime: oldTime, Subtree: &id}
}

func symlinkNode(name, target string) *repo.Node {
	return &repo.Node{Name: name, Type: repo.NodeSymlink, Mode: fs.ModeSymlink | 0o777, ModTime: oldTime, LinkTarget: target}
}

// saveTree stores nodes as one tree without any validation (the
// encoding sorts them but checks nothing).
func saveTree(t *testing.T, r *repo.Repository, nodes ...*repo.Node) repo.ID {
	t.Helper()
	id, err := r.SaveTree(context.Background(), &repo.Tree{Nodes: nodes})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func snapshotOf(t *testing.T, r *repo.Repository, nodes ...*repo.Node) *repo.Snapshot {
	t.Helper()
	root := saveTree(t, r, nodes...)
	if err := r.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &repo.Snapshot{Tree: root, Time: time.Now(), Kind: repo.KindFull}
}

// sandbox returns a parent directory holding "target" and "outside" (with
// one file), and a check that nothing changed outside the target.
func sandbox(t *testing.T) (target, outside string, check func()) {
	t.Helper()
	parent := t.TempDir()
	target = filepath.Join(parent, "target")
	outside = filepath.Join(parent, "outside")
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(outside, "passwd"), []byte("root:x:0:0"), 0o644)
	snapshot := func() string {
		var names []string
		filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
			if strings.HasPrefix(p, target+"/") {
				return nil
			}
			names = append(names, p)
			return nil
		})
		sort.Strings(names)
		return strings.Join(names, "\n")
	}
	before := snapshot()
	return target, outside, func() {
		t.Helper()
		if after := snapshot(); after != before {
			t.Errorf("restore wrote outside the target:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if b, _ := os.ReadFile(filepath.Join(outside, "passwd")); string(b) != "root:x:0:0" {
			t.Errorf("outside file changed: %q", b)
		}
	}
}

func TestHostileNames(t *testing.T) {
	for _, name := range []string{"../evil", "..", ".", "a/b", "/etc/evil", "x\x00y", ""} {
		t.Run(strings.ReplaceAll(name, "/", "|"), func(t *testing.T) {
			r := testRepo(t)
			// A sound directory beside a hostile one: the sound one is
			// restored, the hostile one refused as damaged.
			snap := snapshotOf(t, r,
				dirNode(t, r, "ok", fileNode(t, r, "good.xml", "good")),
				dirNode(t, r, "bad", fileNode(t, r, name, "evil"), fileNode(t, r, "z", "z")),
			)
			target, _, check := sandbox(t)
			rep, err := restore(t, r, snap, "", target, Options{})
			check()
			if !errors.Is(err, repo.ErrDamaged) || !strings.Contains(err.Error(), "/bad/") {
				t.Fatalf("err = %v, want ErrDamaged naming /bad/", err)
			}
			if len(rep.Damaged) != 1 || !strings.Contains(rep.Damaged[0].Reason, "tree") {
				t.Fatalf("damaged: %+v", rep.Damaged)
			}
			if b, err := os.ReadFile(filepath.Join(target, "ok", "good.xml")); err != nil || string(b) != "good" {
				t.Fatalf("sound file not restored: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(target, "bad")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("hostile directory created: %v", err)
			}

			// The same name in the top directory: nothing can be restored.
			r2 := testRepo(t)
			snap2 := snapshotOf(t, r2, fileNode(t, r2, name, "evil"))
			_, err = restore(t, r2, snap2, "", target, Options{})
			check()
			if !errors.Is(err, repo.ErrDamaged) || !strings.Contains(err.Error(), "not a plain file name") && name != "" && name != "." && name != ".." {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestHostileDuplicateNames(t *testing.T) {
	// A symlink and a directory with the same name: only corruption can
	// produce it, and the tree is refused.
	r := testRepo(t)
	snap := snapshotOf(t, r, symlinkNode("a", "/etc"), dirNode(t, r, "a", fileNode(t, r, "passwd", "evil")))
	target, _, check := sandbox(t)
	_, err := restore(t, r, snap, "", target, Options{Overwrite: true})
	check()
	if !errors.Is(err, repo.ErrDamaged) {
		t.Fatalf("err = %v", err)
	}
}

func TestSymlinkedParentInTarget(t *testing.T) {
	r := testRepo(t)
	snap := snapshotOf(t, r,
		dirNode(t, r, "srv", dirNode(t, r, "data", fileNode(t, r, "passwd", "evil"))),
		fileNode(t, r, "other", "fine"),
	)
	for _, overwrite := range []bool{false, true} {
		target, outside, _ := sandbox(t)
		// The user (or an earlier restore) left srv -> outside.
		if err := os.Symlink(outside, filepath.Join(target, "srv")); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(outside, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		rep, err := restore(t, r, snap, "", target, Options{Overwrite: overwrite})
		if err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Fatalf("err = %v, want a refusal naming the symbolic link", err)
		}
		if len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0].Reason, ErrUnsafePath.Error()) || rep.Errors[0].Path != "/srv" {
			t.Fatalf("errors: %+v", rep.Errors)
		}
		if _, err := os.Stat(filepath.Join(outside, "data", "passwd")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatal("wrote through the symlinked parent")
		}
		if b, _ := os.ReadFile(filepath.Join(outside, "passwd")); string(b) != "root:x:0:0" {
			t.Fatal("outside changed")
		}
		if b, _ := os.ReadFile(filepath.Join(target, "other")); string(b) != "fine" {
			t.Fatal("the rest was not restored")
		}
		if fi, err := os.Lstat(filepath.Join(target, "srv")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Fatal("the user's symlink was touched")
		}
	}
}

func TestSymlinkThenDirectory(t *testing.T) {
	// Snapshot 1 holds a -> outside; snapshot 2 holds a/passwd. Restoring
	// both into one target must not write into outside.
	r := testRepo(t)
	target, outside, check := sandbox(t)
	snap1 := snapshotOf(t, r, symlinkNode("a", outside))
	if _, err := restore(t, r, snap1, "", target, Options{}); err != nil {
		t.Fatal(err)
	}
	if l, _ := os.Readlink(filepath.Join(target, "a")); l != outside {
		t.Fatalf("symlink = %q", l)
	}
	snap2 := snapshotOf(t, r, dirNode(t, r, "a", fileNode(t, r, "passwd", "evil")))
	for _, overwrite := range []bool{false, true} {
		_, err := restore(t, r, snap2, "", target, Options{Overwrite: overwrite})
		check()
		if !errors.Is(err, ErrUnsafePath) && !strings.Contains(err.Error(), "symbolic link") {
			t.Fatalf("err = %v", err)
		}
	}
	// A symlink is restored as a link and never followed, even with
	// --overwrite onto an existing link.
	if _, err := restore(t, r, snap1, "", target, Options{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	check()
}

func TestTargetIsAFile(t *testing.T) {
	r := testRepo(t)
	snap := snapshotOf(t, r, fileNode(t, r, "x", "x"))
	f := filepath.Join(t.TempDir(), "file")
	writeFile(t, f, []byte("keep"), 0o644)
	if _, err := New(r, Options{}).Restore(context.Background(), snap, "", f); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("err = %v", err)
	}
}

func TestInterruptedRestoreLeavesNoTemp(t *testing.T) {
	r := testRepo(t)
	var nodes []*repo.Node
	for i := 0; i < 2000; i++ {
		nodes = append(nodes, fileNode(t, r, "f"+itoa(i), strings.Repeat("x", i)))
	}
	snap := snapshotOf(t, r, dirNode(t, r, "d", nodes...))
	target := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	rs := New(r, Options{ProgressInterval: time.Millisecond, Progress: func(p Progress) {
		calls++
		if p.Files > 0 {
			cancel()
		}
	}})
	// Cancel from the progress callback, or right away if the restore is
	// too quick for a tick.
	go func() { time.Sleep(2 * time.Millisecond); cancel() }()
	_, err := rs.Restore(ctx, snap, "", target)
	if err == nil {
		t.Skip("restore finished before the cancellation")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	assertNoTemp(t, target)
}
