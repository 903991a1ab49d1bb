package command

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/source"
	"github.com/einvault/einvault/internal/source/sourcetest"
)

func TestCommandBackup(t *testing.T) {
	tests := []struct {
		name     string
		line     string
		want     []byte // stream content when the backup succeeds
		errParts []string
	}{
		{name: "ok", line: `sh -c 'seq 1 200000; echo done >&2'`, want: seqBytes(200000)},
		{name: "no shell needed", line: `printf '%s\n' "a b" c`, want: []byte("a b\nc\n")},
		{name: "non-zero exit after output", line: `sh -c 'seq 1 100000; echo "dump: disk quota exceeded" >&2; exit 3'`,
			errParts: []string{"exited with status 3", "dump: disk quota exceeded"}},
		{name: "killed halfway", line: `sh -c 'seq 1 100000; kill -KILL $$'`, errParts: []string{"killed by signal KILL"}},
		{name: "missing program", line: `/nonexistent/einvault-dump`, errParts: []string{"start /nonexistent/einvault-dump", "installed"}},
		{name: "exit 0 with no output", line: `true`, want: []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv, err := Split(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			r := sourcetest.Repo(t)
			res, err := sourcetest.Backup(context.Background(), r, Engine, Streams(Options{Argv: argv, Name: "out.txt"}))
			if tt.errParts != nil {
				if err == nil {
					t.Fatal("backup succeeded")
				}
				for _, p := range tt.errParts {
					if !strings.Contains(err.Error(), p) {
						t.Errorf("error %q does not contain %q", err, p)
					}
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				if n := sourcetest.Snapshots(t, r); n != 0 {
					t.Fatalf("a failed command left %d snapshot(s)", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := sourcetest.Read(t, r, res.Snapshot, "out.txt"); !bytes.Equal(got, tt.want) {
				t.Fatalf("stream = %d bytes, want %d", len(got), len(tt.want))
			}
			md, ok, err := source.FromMeta(res.Snapshot.Meta)
			if err != nil || !ok || md.Engine != Engine || md.Streams[0].Bytes != int64(len(tt.want)) {
				t.Fatalf("metadata %+v, %v, %v", md, ok, err)
			}
		})
	}
}

func TestRunKillsCommandWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, cmdOf(t, `sh -c 'sleep 30 & sleep 30; wait'`), "x", func(_ string, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("the command group was not killed")
	}
}

func TestRunStopsCommandWhenStoreFails(t *testing.T) {
	boom := errors.New("repository full")
	_, err := Run(context.Background(), cmdOf(t, `yes`), "x", func(_ string, r io.Reader) error {
		_, _ = io.CopyN(io.Discard, r, 1<<20)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the store's error", err)
	}
}

func TestStderrTailKeepsTheEnd(t *testing.T) {
	tb := &tailBuffer{max: 10}
	for i := 0; i < 100; i++ {
		_, _ = tb.Write([]byte("0123456789abc"))
	}
	if got := tb.String(); got != "3456789abc" {
		t.Fatalf("tail = %q", got)
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{in: `mysqldump --all-databases`, want: []string{"mysqldump", "--all-databases"}},
		{in: `  a   b  `, want: []string{"a", "b"}},
		{in: `sh -c 'sqlcmd -Q "BACKUP DATABASE x" && cat /tmp/x.bak'`, want: []string{"sh", "-c", `sqlcmd -Q "BACKUP DATABASE x" && cat /tmp/x.bak`}},
		{in: `echo "a \"b\" \$HOME \n"`, want: []string{"echo", `a "b" $HOME \n`}},
		{in: `a\ b c''d ""`, want: []string{"a b", "cd", ""}},
		{in: `x 'unclosed`, err: true},
		{in: `x "unclosed`, err: true},
		{in: `x \`, err: true},
		{in: "   ", err: true},
	}
	for _, tt := range tests {
		got, err := Split(tt.in)
		if (err != nil) != tt.err || (!tt.err && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("Split(%q) = %q, %v; want %q, err %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{`a b`, `sh -c 'x "y" z'`, `"a\"b" c\ d`, `'`, `\`, `""`, "a\\\nb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := Split(s)
		if err != nil {
			return
		}
		again, err := Split(Quote(words))
		if err != nil || !reflect.DeepEqual(again, words) {
			t.Fatalf("Split(Quote(%q)) = %q, %v", words, again, err)
		}
	})
}

func seqBytes(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		b.WriteString(itoa(i))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func itoa(i int) string {
	var buf [20]byte
	p := len(buf)
	for i > 0 {
		p--
		buf[p] = byte('0' + i%10)
		i /= 10
	}
	return string(buf[p:])
}
