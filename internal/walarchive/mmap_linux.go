package walarchive

import (
	"os"
	"syscall"
)

// mapFile maps size bytes of f read-only with the pages populated in one
// call; ok is false when the file cannot be mapped (empty, too large,
// a file system without mmap), and the caller reads it instead.
func mapFile(f *os.File, size int64) (data []byte, release func(), ok bool) {
	if size <= 0 || size > 1<<30 {
		return nil, nil, false
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	if err != nil {
		return nil, nil, false
	}
	return data, func() { _ = syscall.Munmap(data) }, true
}
