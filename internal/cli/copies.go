package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/location"
	"github.com/einvault/einvault/internal/replica"
	"github.com/einvault/einvault/internal/repo"
)

// copySet is the copy set of the repository given with -r ("self"),
// as recorded in the newest copy list found in any reachable copy.
type copySet struct {
	r    *repo.Repository
	list replica.List
	// self is the index of the -r repository in list.Copies, or -1.
	self int
	// members are the opened copies (self first); failed lists the
	// copies that could not be opened, one line each.
	members []replica.Member
	failed  []memberFailure
	pw      []byte
}

type memberFailure struct {
	Copy  string `json:"copy"`
	Error string `json:"error"`
}

// selfCopy returns the list entry of the -r repository, inventing one
// ("primary", order before all) when it is not listed.
func (cs *copySet) selfCopy() replica.Copy {
	if cs.self >= 0 {
		return cs.list.Copies[cs.self]
	}
	name := "primary"
	for i := 2; cs.list.Find(name) >= 0; i++ {
		name = fmt.Sprintf("primary%d", i)
	}
	loc := cs.r.Backend().Location()
	return replica.Copy{Name: name, Location: loc, Kind: replica.GuessKind(loc), Order: -1}
}

// hasCopies reports whether the repository has copies besides itself.
func (cs *copySet) hasCopies() bool { return len(cs.others()) > 0 }

// others returns the listed copies except self.
func (cs *copySet) others() []replica.Copy {
	var out []replica.Copy
	for i, c := range cs.list.Sorted() {
		_ = i
		if cs.self >= 0 && c.Name == cs.list.Copies[cs.self].Name {
			continue
		}
		out = append(out, c)
	}
	return out
}

// loadCopySet reads the copy list of r. With open, it also opens every
// copy (creating a local directory for a copy that does not exist yet
// when create is set), and merges the copy lists of all reachable copies.
func (g *Globals) loadCopySet(ctx context.Context, r *repo.Repository, open, create bool) (*copySet, error) {
	loc, err := g.repoLocation()
	if err != nil {
		return nil, err
	}
	l, _, err := r.LoadCopies(ctx)
	if err != nil {
		g.Warnf("warning: copy list: %v\n", err)
	}
	cs := &copySet{r: r, list: l, self: l.FindLocation(loc)}
	if cs.self < 0 {
		cs.self = l.FindLocation(r.Backend().Location())
	}
	if !open {
		return cs, nil
	}
	cs.members = []replica.Member{{Copy: cs.selfCopy(), Backend: r.Backend()}}
	for _, c := range cs.others() {
		be, err := g.openCopy(ctx, c.Location, create)
		if err != nil {
			cs.failed = append(cs.failed, memberFailure{c.Name, fmt.Sprintf("copy %q (%s): cannot open: %s", c.Name, c.Location, oneLine(err))})
			continue
		}
		cs.members = append(cs.members, replica.Member{Copy: c, Backend: be})
	}
	// The newest list in any copy wins (a backup that failed over to
	// another copy recorded there that this one is behind).
	for _, m := range cs.members[1:] {
		ol, _, err := r.LoadCopiesFrom(ctx, m.Backend)
		if err == nil && replica.Newer(ol, cs.list) && len(ol.Copies) > 0 {
			cs.list = ol
		}
	}
	cs.self = cs.list.FindLocation(loc)
	if cs.self < 0 {
		cs.self = cs.list.FindLocation(r.Backend().Location())
	}
	for i := range cs.members {
		if j := cs.list.Find(cs.members[i].Name); j >= 0 {
			cs.members[i].Copy = cs.list.Copies[j]
		}
	}
	return cs, nil
}

// openCopy opens the storage of a copy; with create, a location without
// a repository is prepared for one (a local path is created).
func (g *Globals) openCopy(ctx context.Context, loc string, create bool) (backend.Backend, error) {
	opts := g.LocationOptions()
	be, err := location.Open(ctx, loc, opts)
	if err == nil || !create || !errors.Is(err, backend.ErrNotExist) {
		return be, err
	}
	return location.Create(ctx, loc, opts)
}

// close closes the copies' backends (not self's).
func (cs *copySet) close() {
	for _, m := range cs.members[1:] {
		_ = m.Backend.Close()
	}
}

// update applies fn to the copy called name in the list (adding self
// when it is not listed yet).
func (cs *copySet) update(name string, fn func(*replica.Copy)) {
	if cs.self < 0 {
		cs.list.Copies = append(cs.list.Copies, cs.selfCopy())
		cs.list.Copies[len(cs.list.Copies)-1].Order = 0
		for i := range cs.list.Copies[:len(cs.list.Copies)-1] {
			if cs.list.Copies[i].Order <= 0 {
				cs.list.Copies[i].Order++
			}
		}
		cs.self = len(cs.list.Copies) - 1
	}
	if i := cs.list.Find(name); i >= 0 {
		fn(&cs.list.Copies[i])
	}
}

// save writes the list to self and copies it to the given members.
func (cs *copySet) save(ctx context.Context, g *Globals, to []replica.Member) error {
	_, old, err := cs.r.LoadCopies(ctx)
	if err != nil {
		old = nil
	}
	if s := cs.list.Seq; s < maxSeq(ctx, cs) {
		cs.list.Seq = maxSeq(ctx, cs)
	}
	id, err := cs.r.SaveCopies(ctx, cs.list, old)
	if err != nil {
		return err
	}
	cs.list.Seq++
	h := backend.Handle{Type: backend.CopiesFile, Name: id.String()}
	self := replica.Member{Copy: cs.selfCopy(), Backend: cs.r.Backend()}
	for _, m := range to {
		if m.Name == self.Name {
			continue
		}
		if err := replica.CopyFile(ctx, self, m, h); err != nil {
			g.Warnf("warning: copy %q: could not update its copy list: %v\n", m.Name, err)
			continue
		}
		_, ids, _ := cs.r.LoadCopiesFrom(ctx, m.Backend)
		for _, o := range ids {
			if o != id {
				_ = m.Backend.Remove(ctx, backend.Handle{Type: backend.CopiesFile, Name: o.String()})
			}
		}
	}
	return nil
}

// maxSeq is the highest list version in any opened member.
func maxSeq(ctx context.Context, cs *copySet) uint64 {
	s := cs.list.Seq
	for _, m := range cs.members {
		if l, _, err := cs.r.LoadCopiesFrom(ctx, m.Backend); err == nil && l.Seq > s {
			s = l.Seq
		}
	}
	return s
}

// checkKeys is the sync's test that a copy's key files open with the
// repository's password.
func (g *Globals) checkKeys(pw []byte) func(ctx context.Context, m replica.Member) error {
	return func(ctx context.Context, m replica.Member) error {
		r, err := repo.Open(ctx, m.Backend, pw, g.repoOptions())
		if err != nil {
			return err
		}
		return r.Close()
	}
}

func oneLine(err error) string {
	if err == nil {
		return ""
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// openRepoHealing opens the repository for reading: when it has copies,
// every read is served by the first copy (local ones first, then by
// order) that holds a valid version, and each time another copy had to
// step in it is reported on stderr.
func (g *Globals) openRepoHealing(ctx context.Context, r *repo.Repository) (*replica.Set, error) {
	cs, err := g.loadCopySet(ctx, r, true, false)
	if err != nil || !cs.hasCopies() {
		return nil, err
	}
	for _, f := range cs.failed {
		g.Warnf("warning: %s (reads will not fall back to it)\n", f.Error)
	}
	if len(cs.members) < 2 {
		return nil, nil
	}
	set := replica.NewSet(replica.ReadOrder(cs.members), func(e replica.Event) {
		g.Warnf("healed: %s\n", e)
	})
	r.UseBackend(set)
	return set, nil
}

// reportHealing prints which copies served reads that the first copy
// could not.
func reportHealing(g *Globals, set *replica.Set) {
	if set == nil {
		return
	}
	evs := set.Events()
	if len(evs) == 0 {
		return
	}
	if g.JSON {
		_ = writeJSONLine(g.Stderr, map[string]any{"message_type": "healed", "events": evs})
		return
	}
	used := map[string]int{}
	for _, e := range evs {
		if e.Served != "" {
			used[e.Served]++
		}
	}
	var parts []string
	for n, c := range used {
		parts = append(parts, fmt.Sprintf("%d from copy %q", c, n))
	}
	if len(parts) > 0 {
		g.Warnf("Self-healed %d read(s) of missing or damaged files: %s.\n", len(evs), strings.Join(parts, ", "))
	}
}

// openRepoForRestoreHealing is OpenRepoForRestore with self-healing
// reads over the repository's copies. set is nil without copies.
func (g *Globals) openRepoForRestoreHealing(ctx context.Context) (*repo.Repository, *replica.Set, error) {
	r, err := g.OpenRepo(ctx)
	if err != nil {
		return nil, nil, err
	}
	set, err := g.openRepoHealing(ctx, r)
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	if err := g.loadIndex(ctx, r); err != nil {
		r.Close()
		return nil, nil, err
	}
	n, errs := r.IndexUnindexedPacks(ctx)
	for _, e := range errs {
		g.Warnf("warning: %v\n", e)
	}
	if n > 0 {
		g.log.Info("indexed packs that no index file lists", "packs", n)
	}
	return r, set, nil
}

// checkTargetSpace is the restore pre-flight at the target: the file
// system holding it (or its nearest existing parent) must have room for
// need bytes plus a margin.
func checkTargetSpace(target string, need uint64) error {
	dir := filepath.Clean(target)
	for {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil // cannot tell; the restore reports a full disk itself
	}
	free := st.Bavail * uint64(st.Bsize)
	want := need + need/20 + 16<<20
	if free < want {
		return fmt.Errorf("pre-flight: not enough free space at %s: %s free, %s needed for the snapshot plus margin: free space or restore elsewhere (or a part with SNAPSHOT:SUBPATH)",
			target, formatBytes(free), formatBytes(want))
	}
	return nil
}
