// Package command is the generic command source: it runs a program,
// stores its standard output as one stream of a snapshot, and fails the
// backup when the program fails. Database engines that dump through a
// client program (mariadb-dump) use Run for the same guarantees.
package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/einvault/einvault/internal/source"
)

// Engine is the Metadata.Engine and snapshot Source of a command backup.
const Engine = "command"

// Options describe a command backup.
type Options struct {
	Argv   []string // program and arguments; no shell unless Argv is {"sh", "-c", "..."}
	Name   string   // stream (file) name in the snapshot
	Env    []string // extra environment ("KEY=value"), added to the process's
	Dir    string   // working directory ("" = current)
	Logger *slog.Logger
}

// Streams returns the archiver.StreamFunc of a command backup: the
// command's standard output becomes the stream o.Name. A command that
// exits non-zero, is killed, or cannot be started fails the backup, so
// no snapshot is written.
func Streams(o Options) func(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error) {
	return func(ctx context.Context, emit func(string, io.Reader) error) (map[string]json.RawMessage, error) {
		if len(o.Argv) == 0 {
			return nil, errors.New("no command given")
		}
		cmd := exec.Command(o.Argv[0], o.Argv[1:]...)
		cmd.Dir = o.Dir
		if len(o.Env) > 0 {
			cmd.Env = append(os.Environ(), o.Env...)
		}
		start := time.Now()
		res, err := Run(ctx, cmd, o.Name, emit)
		if err != nil {
			return nil, err
		}
		if o.Logger != nil {
			o.Logger.Info("command finished", "command", o.Argv[0], "bytes", res.Bytes, "took", time.Since(start))
		}
		md := &source.Metadata{Engine: Engine, Location: Quote(o.Argv),
			Streams: []source.Stream{{Name: o.Name, Format: "raw", Bytes: res.Bytes}},
			Extra:   map[string]string{"exit_code": "0"}}
		if res.StderrTail != "" {
			md.Extra["stderr_tail"] = res.StderrTail
		}
		return md.Encode()
	}
}

// Result is what Run observed.
type Result struct {
	Bytes      int64  // bytes of standard output stored
	StderrTail string // the last lines the command wrote to standard error
}

// StderrTailBytes is how much of a command's standard error is kept.
const StderrTailBytes = 4096

// ExitError is a command that failed: it exited non-zero or was killed.
type ExitError struct {
	Program    string
	Code       int    // exit status, -1 when killed by a signal
	Signal     string // the signal's name when killed
	StderrTail string
}

func (e *ExitError) Error() string {
	what := fmt.Sprintf("exited with status %d", e.Code)
	if e.Signal != "" {
		what = "was killed by signal " + e.Signal
	}
	msg := fmt.Sprintf("%s %s", e.Program, what)
	if last := LastLine(e.StderrTail); last != "" {
		msg += ": " + last
	}
	return msg
}

// LastLine returns the last non-empty line of s.
func LastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// Run starts cmd (its Stdout and Stderr must be unset), hands its
// standard output to emit as stream name, and waits for it. The command
// runs in its own process group, which is killed when ctx ends or emit
// fails. Any failure — the program missing, a non-zero exit, a signal,
// emit's error — is returned; an *ExitError carries the tail of the
// program's standard error.
func Run(ctx context.Context, cmd *exec.Cmd, name string, emit func(string, io.Reader) error) (Result, error) {
	prog := cmd.Path
	if len(cmd.Args) > 0 {
		prog = cmd.Args[0]
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	tail := &tailBuffer{max: StderrTailBytes}
	cmd.Stderr = tail
	out, err := source.StdoutPipe(cmd)
	if err != nil {
		return Result{}, err
	}
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("start %s: %w (check that it is installed and on PATH)", prog, err)
	}
	killGroup := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stop := context.AfterFunc(ctx, killGroup)
	defer stop()
	cr := &countReader{r: out}
	emitErr := emit(name, cr)
	if emitErr != nil {
		killGroup()
		// Drain nothing: the pipe is closed by Wait.
	}
	waitErr := cmd.Wait()
	res := Result{Bytes: cr.n, StderrTail: tail.String()}
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s interrupted: %w", prog, ctx.Err())
	case waitErr != nil && emitErr == nil:
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			xe := &ExitError{Program: prog, Code: ee.ExitCode(), StderrTail: res.StderrTail}
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				xe.Signal = signalName(ws.Signal())
			}
			return res, xe
		}
		return res, fmt.Errorf("%s: %w", prog, waitErr)
	case emitErr != nil:
		return res, emitErr
	}
	return res, nil
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "KILL"
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGINT:
		return "INT"
	case syscall.SIGPIPE:
		return "PIPE"
	case syscall.SIGSEGV:
		return "SEGV"
	case syscall.SIGABRT:
		return "ABRT"
	case syscall.SIGHUP:
		return "HUP"
	}
	return s.String()
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
