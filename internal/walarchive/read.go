package walarchive

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
)

// ReadFile returns the content of the WAL file PostgreSQL asks to archive
// and a function that releases it (PushFileToCopies reads the file
// itself, as it seals it, and is cheaper).
//
// The file is read, in parallel pieces, into memory backed by huge pages
// rather than mapped: on a virtual machine with shadow page tables,
// compressing a segment through a 4 KiB-page mapping of the page cache
// took twice the CPU of copying it out first.
func ReadFile(path string) (data []byte, release func(), err error) {
	f, size, err := OpenFile(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	a := newArena(int(size))
	buf := a.alloc(int(size))
	n, err := readParallel(f, buf)
	if err != nil {
		a.release()
		return nil, nil, fmt.Errorf("read WAL file %s: %w", path, err)
	}
	return buf[:n], a.release, nil
}

// OpenFile opens the WAL file PostgreSQL asks to archive (for
// PushFileToCopies) and returns its size.
func OpenFile(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("read WAL file: %w", err)
	}
	st, err := f.Stat()
	switch {
	case err != nil:
		err = fmt.Errorf("read WAL file %s: %w", path, err)
	case !st.Mode().IsRegular():
		err = fmt.Errorf("read WAL file %s: not a regular file", path)
	case st.Size() > walMaxFile:
		err = fmt.Errorf("read WAL file %s: %d bytes, more than the largest WAL segment (1 GiB)", path, st.Size())
	}
	if err != nil {
		_ = f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// walMaxFile bounds the WAL files read (PostgreSQL's largest
// wal_segment_size is 1 GiB; history and backup files are small).
const walMaxFile = 1<<30 + 1<<16

// readPiece is the smallest piece readParallel reads on its own.
const readPiece = 4 << 20

// readParallel fills buf from f (from offset 0), in pieces read at the
// same time on all cores: copying 16 MiB from the page cache is a few
// milliseconds of one core. It returns the bytes read, fewer than
// len(buf) only when the file ended early.
func readParallel(f *os.File, buf []byte) (int, error) {
	parts := min(runtime.GOMAXPROCS(0), max(1, len(buf)/readPiece))
	if parts <= 1 {
		n, err := io.ReadFull(f, buf)
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			err = nil
		}
		return n, err
	}
	step := (len(buf)/parts + 4095) &^ 4095
	ns := make([]int, parts)
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for i := range parts {
		lo := min(i*step, len(buf))
		hi := min(lo+step, len(buf))
		if i == parts-1 {
			hi = len(buf)
		}
		read := func() {
			ns[i], errs[i] = f.ReadAt(buf[lo:hi], int64(lo))
			if errs[i] == io.EOF {
				errs[i] = nil
			}
		}
		if i == parts-1 {
			read()
		} else {
			wg.Go(read)
		}
	}
	wg.Wait()
	n := 0
	for i := range parts {
		if errs[i] != nil {
			return 0, errs[i]
		}
		n += ns[i]
		if ns[i] < min(step, len(buf)-i*step) {
			break // the file ended within this piece
		}
	}
	return n, nil
}
