package pg

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"sync"
)

// tailBuffer keeps the last bytes a program wrote to stderr, for one-line
// error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 8 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > tailMax {
		b.buf = b.buf[len(b.buf)-tailMax:]
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// lastLine returns the most telling line of a program's stderr: the last
// line mentioning an error, else the last non-empty line.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.Contains(l, "error") || strings.Contains(l, "FATAL") {
			return l
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

// progError describes a failed PostgreSQL program in one line.
func progError(what string, err error, stderr string) error {
	var ee *exec.ExitError
	detail := lastLine(stderr)
	if detail == "" {
		detail = err.Error()
	}
	if bytes.Contains([]byte(err.Error()), []byte("signal")) || (errorsAs(err, &ee) && !ee.Exited()) {
		return fmt.Errorf("%s was killed (%v): %s", what, err, detail)
	}
	return fmt.Errorf("%s failed: %s", what, detail)
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}
