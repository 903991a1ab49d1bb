package restorer

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/repo"
)

// loadBlob reads, decrypts and verifies one data blob.
func loadBlob(ctx context.Context, r Repository, id repo.ID, sealed, buf []byte) ([]byte, []byte, error) {
	idx := r.Index()
	e, ok := idx.Lookup(id)
	if !ok {
		return nil, sealed, fmt.Errorf("data blob %s: %w (the repository is missing data: run 'einvault check')", id.Short(), repo.ErrBlobMissing)
	}
	if e.Type != repo.DataBlob {
		return nil, sealed, fmt.Errorf("%w: blob %s is a %v blob, expected data", repo.ErrDamaged, id.Short(), e.Type)
	}
	p := idx.PackOf(e)
	sealed, err := backend.LoadRange(ctx, r.Backend(), backend.Handle{Type: backend.PackFile, Name: p.ID.String()}, int64(e.Offset), int64(e.Length), sealed)
	if err != nil {
		return nil, sealed, fmt.Errorf("load data blob %s from pack %s: %w", id.Short(), p.ID.Short(), err)
	}
	plain, err := r.OpenBlob(p, repo.DataBlob, e.Flags, id, sealed, buf)
	return plain, sealed, err
}

// Dump writes the content of the file at path inside snap to w, blob by
// blob. A directory is written as a tar archive of its content (names
// relative to it); a symbolic link is an error. Nothing is written for a
// file whose first blob cannot be read; a later damaged blob ends the
// output early with an error wrapping repo.ErrDamaged.
func (r *Restorer) Dump(ctx context.Context, snap *repo.Snapshot, p string, w io.Writer) error {
	p = repo.CleanSnapshotPath(p)
	rs := &run{r: r, ctx: ctx}
	n, err := findNode(rs, snap.Tree, p)
	if err != nil {
		return err
	}
	switch n.Type {
	case repo.NodeFile:
		return dumpFile(ctx, r.repo, n, w)
	case repo.NodeDir:
		tw := tar.NewWriter(w)
		if err := r.dumpTar(ctx, tw, *n.Subtree, ""); err != nil {
			return err
		}
		return tw.Close()
	}
	return fmt.Errorf("%s is a %s, not a file or directory", p, n.Type)
}

func dumpFile(ctx context.Context, r Repository, n *repo.Node, w io.Writer) error {
	var sealed, buf []byte
	for _, id := range n.Content {
		if err := ctx.Err(); err != nil {
			return err
		}
		plain, s, err := loadBlob(ctx, r, id, sealed, buf)
		sealed = s
		if err != nil {
			return err
		}
		if _, err := w.Write(plain); err != nil {
			return err
		}
		if cap(plain) > cap(buf) && cap(plain) <= 64<<20 {
			buf = plain[:0]
		}
	}
	return nil
}

func (r *Restorer) dumpTar(ctx context.Context, tw *tar.Writer, tree repo.ID, prefix string) error {
	t, err := r.repo.LoadTree(ctx, tree)
	if err != nil {
		return err
	}
	for _, n := range t.Nodes {
		name := prefix + n.Name
		if prefix != "" && strings.HasPrefix(name, "/") {
			return fmt.Errorf("%w: bad name %q", repo.ErrDamaged, name)
		}
		hdr := &tar.Header{
			Name: name, Mode: int64(n.Mode & fs.ModePerm), ModTime: n.ModTime,
			Uid: int(n.UID), Gid: int(n.GID), Uname: n.User, Gname: n.Group,
			Format: tar.FormatPAX,
		}
		if n.Mode&fs.ModeSetuid != 0 {
			hdr.Mode |= 0o4000
		}
		if n.Mode&fs.ModeSetgid != 0 {
			hdr.Mode |= 0o2000
		}
		if n.Mode&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		switch n.Type {
		case repo.NodeDir:
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		case repo.NodeFile:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(n.Size)
		case repo.NodeSymlink:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, n.LinkTarget
		case repo.NodeFifo:
			hdr.Typeflag = tar.TypeFifo
		default:
			continue // devices and sockets are not dumped
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		switch n.Type {
		case repo.NodeFile:
			if err := dumpFile(ctx, r.repo, n, tw); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		case repo.NodeDir:
			if err := r.dumpTar(ctx, tw, *n.Subtree, name+"/"); err != nil {
				return err
			}
		}
	}
	return nil
}
