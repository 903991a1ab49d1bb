package walarchive

import (
	"fmt"
	"os"
)

// ReadKeyCache reads a key cache file (made by 'einvault key cache') for
// repo.OpenWithKeyCache. A file that other users can read or write is
// refused: it holds the repository's keys in the clear.
func ReadKeyCache(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key cache: %w (create it with 'einvault key cache --file %s')", err, path)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key cache: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key cache %s is readable by other users (mode %04o): run 'chmod 600 %s'", path, st.Mode().Perm(), path)
	}
	buf := make([]byte, st.Size())
	if _, err := f.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("key cache %s: %w", path, err)
	}
	return buf, nil
}
