package pg

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing f's dirty pages to disk
// now, without waiting for it. A restored data directory is synced by
// PostgreSQL when it starts (every file fsynced before recovery); pages
// already on their way to disk while the rest of the base backup is
// still being decrypted make that sync short instead of a pause of
// seconds before recovery begins.
func startWriteback(f *os.File) {
	_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}
