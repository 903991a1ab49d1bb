//go:build !linux

package pg

import "os"

// startWriteback is a no-op where sync_file_range(2) does not exist.
func startWriteback(*os.File) {}
