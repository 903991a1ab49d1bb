// Command einvault-wal is PostgreSQL's archive_command and
// restore_command for an einvault repository: 'wal-push' and 'wal-fetch'
// exactly as in einvault, in a small binary that starts in a few
// milliseconds (PostgreSQL runs one process per WAL segment).
package main

import (
	"os"

	"github.com/einvault/einvault/internal/walarchive/walcli"
)

func main() {
	os.Exit(walcli.Run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}
