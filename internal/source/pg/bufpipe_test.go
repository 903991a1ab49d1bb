package pg

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

func TestBufPipe(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 100000)
	for _, tc := range []struct {
		name    string
		err     error
		wantErr error
	}{{"eof", nil, nil}, {"producer error", errors.New("blob damaged"), errors.New("blob damaged")}} {
		t.Run(tc.name, func(t *testing.T) {
			bp := producePiped(context.Background(), 2, func(_ context.Context, w io.Writer) error {
				buf := make([]byte, 7777)
				for off := 0; off < len(data); off += len(buf) {
					n := copy(buf, data[off:])
					if _, err := w.Write(buf[:n]); err != nil {
						return err
					}
					clear(buf) // the pipe must have copied it
				}
				return tc.err
			})
			got, err := io.ReadAll(iotest.HalfReader(bp))
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, want %d (equal: false)", len(got), len(data))
			}
			if (err == nil) != (tc.wantErr == nil) || (err != nil && err.Error() != tc.wantErr.Error()) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
	// A reader that gives up unblocks the producer.
	done := make(chan error, 1)
	bp := producePiped(context.Background(), 1, func(_ context.Context, w io.Writer) error {
		for {
			if _, err := w.Write([]byte("x")); err != nil {
				done <- err
				return err
			}
		}
	})
	bp.Close()
	select {
	case err := <-done:
		if !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("producer got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("producer still blocked after the reader closed")
	}
}
