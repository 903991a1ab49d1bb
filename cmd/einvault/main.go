// Command einvault is the entry point; everything else lives in internal/.
package main

import (
	"os"

	"github.com/einvault/einvault/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
