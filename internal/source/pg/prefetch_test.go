package pg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/walarchive"
)

func segName(tli uint32, n uint64) string { return SegmentOf(tli, LSN(n*SegmentSize)).String() }

func TestSpoolSegmentsAndAbsent(t *testing.T) {
	names := []string{segName(1, 3), segName(1, 4), segName(1, 5), segName(1, 6), "00000002.history", segName(2, 9)}
	base := BaseBackup{Snapshot: "b1", Timeline: 1, StartLSN: LSN(4*SegmentSize + 40), StopLSN: LSN(4*SegmentSize + 400)}
	w := ComputeWindow([]BaseBackup{base}, names)
	r, b, err := w.Choose(Target{Latest: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := SpoolSegments(r, b), []string{segName(1, 4), segName(1, 5), segName(1, 6)}; !slices.Equal(got, want) {
		t.Errorf("SpoolSegments = %v, want %v", got, want)
	}
	// The segment after the last one, and every history file up to one
	// past the newest timeline seen, except the archived one.
	if got, want := w.Absent(r), []string{segName(1, 7), "00000001.history", "00000003.history"}; !slices.Equal(got, want) {
		t.Errorf("Absent = %v, want %v", got, want)
	}
}

func TestServeSpooled(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	for _, n := range []uint64{4, 5, 6} {
		if err := os.WriteFile(filepath.Join(dir, segName(1, n)), []byte(fmt.Sprint("segment ", n)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := &Prefetcher{Dir: dir}
	if err := p.MarkAbsent([]string{segName(1, 7)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		served    bool
		missing   bool
		content   string
		remaining []string
	}{
		{name: segName(1, 5), served: true, content: "segment 5", remaining: []string{segName(1, 5), segName(1, 6)}},
		{name: segName(1, 5), served: true, content: "segment 5", remaining: []string{segName(1, 5), segName(1, 6)}}, // asked again: still there
		{name: segName(1, 9), served: false, remaining: []string{segName(1, 5), segName(1, 6)}},                      // not spooled: the repository answers
		{name: segName(1, 7), served: true, missing: true, remaining: []string{segName(1, 5), segName(1, 6)}},
		{name: "not-a-wal-name", served: false, remaining: []string{segName(1, 5), segName(1, 6)}},
		{name: segName(1, 6), served: true, content: "segment 6", remaining: []string{segName(1, 6)}},
	} {
		path := filepath.Join(out, "RECOVERYXLOG")
		os.Remove(path)
		ok, err := walarchive.ServeSpooled(dir, tc.name, path)
		if ok != tc.served || errors.Is(err, ErrWALMissing) != tc.missing || (err != nil && !tc.missing) {
			t.Fatalf("%s: served %v err %v, want served %v missing %v", tc.name, ok, err, tc.served, tc.missing)
		}
		if tc.content != "" {
			if b, err := os.ReadFile(path); err != nil || string(b) != tc.content {
				t.Fatalf("%s: wrote %q %v, want %q", tc.name, b, err, tc.content)
			}
		}
		var left []string
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if ValidWALName(e.Name()) {
				left = append(left, e.Name())
			}
		}
		if !slices.Equal(left, tc.remaining) {
			t.Fatalf("after %s the spool holds %v, want %v", tc.name, left, tc.remaining)
		}
	}
	if ok, err := walarchive.ServeSpooled("", segName(1, 5), filepath.Join(out, "x")); ok || err != nil {
		t.Fatalf("no spool: %v %v", ok, err)
	}
}

// TestPrefetcherBounded: the prefetcher spools every segment in order
// but never more than Ahead beyond what was consumed, and a failed fetch
// only leaves that segment to the repository.
func TestPrefetcherBounded(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	var segs []string
	for n := uint64(10); n < 30; n++ {
		segs = append(segs, segName(1, n))
	}
	failing := segs[7]
	var fetched atomic.Int32
	p := &Prefetcher{Dir: dir, Ahead: 3, Workers: 2, Interval: time.Millisecond,
		Fetch: func(ctx context.Context, name string) ([]byte, error) {
			fetched.Add(1)
			if name == failing {
				return nil, errors.New("unreadable")
			}
			return []byte("wal " + name), nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx, segs) }()
	defer func() { cancel(); <-done }()
	for _, name := range segs {
		path := filepath.Join(out, "RECOVERYXLOG")
		deadline := time.Now().Add(10 * time.Second)
		for {
			entries, _ := os.ReadDir(dir)
			spooled := 0
			for _, e := range entries {
				if ValidWALName(e.Name()) {
					spooled++
				}
			}
			if spooled > p.Ahead+p.Workers {
				t.Fatalf("%d segments spooled, more than ahead %d + workers %d", spooled, p.Ahead, p.Workers)
			}
			ok, err := walarchive.ServeSpooled(dir, name, path)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				if b, _ := os.ReadFile(path); string(b) != "wal "+name {
					t.Fatalf("%s: served %q", name, b)
				}
				break
			}
			if name == failing && fetched.Load() > 8 {
				break // never spooled: wal-fetch would read the repository
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never spooled", name)
			}
			time.Sleep(time.Millisecond)
		}
	}
	<-done
	if n := fetched.Load(); n != int32(len(segs)) {
		t.Errorf("fetched %d segments, want %d", n, len(segs))
	}
}
