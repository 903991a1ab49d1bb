package walarchive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// AbsentSuffix marks, in a prefetch spool, a WAL file known to be
// missing from the archive ('einvault pg restore' writes NAME+AbsentSuffix).
const AbsentSuffix = ".absent"

// ServeSpooled is restore_command's fast path during 'einvault pg
// restore', which prefetches the WAL recovery replays into the spool
// directory dir: when dir holds WAL file name, it is written to path
// (atomically, like a file from the repository) and the spooled segments
// of the same timeline before it are removed (recovery has replayed
// them; the prefetcher refills the spool). A name marked absent gives an
// error matching ErrMissing without opening the repository. It reports
// false when name is not spooled: the caller reads the repository.
func ServeSpooled(dir, name, path string) (bool, error) {
	if dir == "" || !ValidName(name) {
		return false, nil
	}
	if _, err := os.Lstat(filepath.Join(dir, name+AbsentSuffix)); err == nil {
		return true, fmt.Errorf("%w: %s", ErrMissing, name)
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read prefetched WAL file: %w", err)
	}
	if err := WriteFileAtomic(path, name, data); err != nil {
		return true, err
	}
	if len(name) == 24 {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			// Segment names are fixed-width upper-case hex: within a
			// timeline (first 8 digits) they sort in WAL order.
			if n := e.Name(); len(n) == 24 && ValidName(n) && n[:8] == name[:8] && n < name {
				_ = os.Remove(filepath.Join(dir, n))
			}
		}
	}
	return true, nil
}
