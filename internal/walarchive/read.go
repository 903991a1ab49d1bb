package walarchive

import (
	"fmt"
	"io"
	"os"
)

// ReadFile returns the content of the WAL file PostgreSQL asks to archive
// and a function that releases it. On Linux the file is mapped (read
// only, pages populated at once) rather than copied: the segment is in
// the page cache, and copying 16 MiB into fresh memory cost a push more
// than compressing it. Elsewhere, and for files that cannot be mapped, it
// is read into a buffer of exactly its size.
//
// PostgreSQL never changes a segment while it waits for archive_command,
// so a mapping is safe; the content must not be used after release.
func ReadFile(path string) (data []byte, release func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read WAL file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("read WAL file %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("read WAL file %s: not a regular file", path)
	}
	if data, release, ok := mapFile(f, st.Size()); ok {
		return data, release, nil
	}
	buf := make([]byte, st.Size())
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, nil, fmt.Errorf("read WAL file %s: %w", path, err)
	}
	return buf[:n], func() {}, nil
}
