package command

import (
	"os/exec"
	"testing"
)

func cmdOf(t *testing.T, line string) *exec.Cmd {
	t.Helper()
	argv, err := Split(line)
	if err != nil {
		t.Fatal(err)
	}
	return exec.Command(argv[0], argv[1:]...)
}
