package source

import (
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestBatchReaderGathersSmallWrites: a writer doing many 4 KiB writes is
// read in fewer, larger reads, and every byte arrives in order.
func TestBatchReaderGathersSmallWrites(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	growPipe(pr, pipeSize)
	const writes = 2000
	want := sha256.New()
	go func() {
		buf := make([]byte, 4096)
		for i := 0; i < writes; i++ {
			for j := range buf {
				buf[j] = byte(i + j)
			}
			want.Write(buf)
			if _, err := pw.Write(buf); err != nil {
				break
			}
		}
		pw.Close()
	}()
	br := &batchReader{f: pr, short: shortRead, nap: 2 * time.Millisecond}
	got := sha256.New()
	p := make([]byte, 8<<20)
	reads := 0
	for {
		n, err := br.Read(p)
		got.Write(p[:n])
		if n > 0 {
			reads++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("bytes read differ from bytes written")
	}
	if reads >= writes/2 {
		t.Fatalf("%d reads for %d writes of 4 KiB: reads are not batched", reads, writes)
	}
	t.Logf("%d reads for %d writes", reads, writes)
}

// TestStdoutPipeCommand: a real command's output comes through whole and
// cmd.Wait still closes the pipe.
func TestStdoutPipeCommand(t *testing.T) {
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300 ]; do printf '%04096d' $i; i=$((i+1)); done")
	out, err := StdoutPipe(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(data) != 300*4096 {
		t.Fatalf("read %d bytes, want %d", len(data), 300*4096)
	}
	if !bytes.HasSuffix(data, []byte("0299")) {
		t.Fatalf("last record missing: ...%q", data[len(data)-8:])
	}
}
