package replica

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/fault"
	"github.com/einvault/einvault/internal/backend/mem"
)

var update = flag.Bool("update", false, "rewrite golden files")

// spaceBackend reports a fixed amount of free space.
type spaceBackend struct {
	backend.Backend
	free int64
}

func (s spaceBackend) FreeSpace(context.Context) (int64, error) { return s.free, nil }

func TestStatusGolden(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a, b, c := mem.New(), mem.New(), mem.New()
	fill(t, a, 3)
	fill(t, b, 2)
	put(t, a, backend.SnapshotFile, "snapshot-2")
	down := fault.New(c)
	down.Add(fault.Rule{Op: fault.OpStat, Action: fault.Fail, Err: errors.New("dial tcp 127.0.0.1:9: connection refused")})
	verified := now.Add(-48 * time.Hour)
	ms := []Member{
		{Copy: Copy{Name: "primary", Location: "/srv/einvault", Kind: KindDisk, Order: 0, LastSync: now.Add(-time.Hour)}, Backend: spaceBackend{a, 100 << 30}},
		{Copy: Copy{Name: "nas", Location: "/mnt/nas/einvault", Kind: KindNAS, Order: 1, LastVerify: verified, LastSync: now.Add(-25 * time.Hour)}, Backend: spaceBackend{b, 10 << 30}},
		{Copy: Copy{Name: "minio", Location: "s3:http://127.0.0.1:9/einvault", Kind: KindS3, Offsite: true, Immutable: true, Order: 2, LastVerify: verified, VerifyErrors: 1}, Backend: down},
	}
	growth := []GrowthPoint{{now.Add(-20 * 24 * time.Hour), 2 << 30}, {now.Add(-24 * time.Hour), 2 << 30}}
	st := ComputeStatus(ctx, ms, StatusOptions{Now: func() time.Time { return now }, Growth: growth})
	got, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "status.golden.json")
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run 'go test ./internal/replica -run StatusGolden -update')", err)
	}
	if strings.TrimSpace(string(want)) != strings.TrimSpace(string(got)) {
		t.Errorf("status differs from %s (rerun with -update if deliberate):\n%s", path, got)
	}
	if st.Verdict.Met || st.Copies[1].SnapshotsMissing != 1 || st.Copies[2].Reachable {
		t.Errorf("unexpected status: %+v", st)
	}
}

func TestSyncDiskFull(t *testing.T) {
	ctx := context.Background()
	src := mem.New()
	fill(t, src, 6)
	dstMem := mem.New()
	dst := fault.New(dstMem)
	enospc := &os.PathError{Op: "write", Path: "/mnt/usb/data/x", Err: syscall.ENOSPC}
	dst.FailSave(4, backend.PackFile, enospc)
	_, err := SyncTo(ctx, []Member{member("a", src, 0)}, member("usb", dst, 1), SyncOptions{Workers: 2})
	if err == nil || !strings.Contains(err.Error(), `copy "usb"`) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("want an ENOSPC error naming the copy, got %v", err)
	}
	for k := range files(t, dstMem) {
		if strings.HasPrefix(k, "index") || strings.HasPrefix(k, "snapshots") {
			t.Fatalf("%s copied past a failed pack", k)
		}
	}
	// Not enough free space at all: refused before copying.
	_, err = SyncTo(ctx, []Member{member("a", src, 0)}, member("tiny", spaceBackend{mem.New(), 1000}, 1), SyncOptions{})
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("want ErrNoSpace, got %v", err)
	}
	// Room again: the next sync completes.
	res, err := SyncTo(ctx, []Member{member("a", src, 0)}, member("usb", dstMem, 1), SyncOptions{})
	if err != nil || !res.Complete {
		t.Fatal(err)
	}
	equalFiles(t, src, dstMem)
}
