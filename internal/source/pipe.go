package source

import (
	"io"
	"os"
	"os/exec"
	"time"
)

// Dump programs (pg_dump, mariadb-dump, pg_basebackup) write their
// output a few KiB at a time. Reading a pipe as soon as anything is in
// it wakes this process for every one of those writes; for a logical
// backup of a large database that cost as much CPU as chunking,
// hashing and compressing the stream together. StdoutPipe reads in
// batches instead: the pipe is enlarged, and after a short read the
// reader waits a moment so the writer can fill it.
const (
	pipeSize     = 1 << 20                // bytes the kernel pipe holds (F_SETPIPE_SZ)
	shortRead    = 64 << 10               // a read of less than this is short
	shortReadNap = 500 * time.Microsecond // how long to let the writer fill the pipe
)

// StdoutPipe is exec.Cmd.StdoutPipe with batched reads. Like the
// original it must be called before cmd.Start, and cmd.Wait closes it.
func StdoutPipe(cmd *exec.Cmd) (io.ReadCloser, error) {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	f, ok := out.(*os.File)
	if !ok {
		return out, nil
	}
	growPipe(f, pipeSize)
	return &batchReader{f: f, short: shortRead, nap: shortReadNap}, nil
}

// batchReader reads a pipe; after a short read it sleeps briefly before
// returning, so the next read finds the writer's output gathered in the
// pipe rather than one small write. A slow writer loses nothing: it
// writes into the pipe while the reader naps.
type batchReader struct {
	f     *os.File
	short int
	nap   time.Duration
}

func (b *batchReader) Read(p []byte) (int, error) {
	n, err := b.f.Read(p)
	if err == nil && n < b.short && n < len(p) {
		time.Sleep(b.nap)
	}
	return n, err
}

func (b *batchReader) Close() error { return b.f.Close() }
