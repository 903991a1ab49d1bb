package replica

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/fault"
	"github.com/einvault/einvault/internal/backend/mem"
	"github.com/zeebo/blake3"
)

func put(t *testing.T, be backend.Backend, ft backend.FileType, content string) backend.Handle {
	t.Helper()
	sum := blake3.Sum256([]byte(content))
	h := backend.Handle{Type: ft, Name: hex.EncodeToString(sum[:])}
	if ft == backend.ConfigFile {
		h.Name = "config"
	}
	if err := be.Save(context.Background(), h, bytes.NewReader([]byte(content)), int64(len(content))); err != nil {
		t.Fatal(err)
	}
	return h
}

// fill makes a small storage-level repository: config, a key, packs,
// an index and a snapshot.
func fill(t *testing.T, be backend.Backend, packs int) []backend.Handle {
	put(t, be, backend.ConfigFile, `{"version":1}`)
	put(t, be, backend.KeyFile, "key-1")
	var hs []backend.Handle
	for i := range packs {
		hs = append(hs, put(t, be, backend.PackFile, fmt.Sprintf("pack-%d-%s", i, bytes.Repeat([]byte{byte(i)}, 1000+i))))
	}
	put(t, be, backend.IndexFile, "index-1")
	put(t, be, backend.SnapshotFile, "snapshot-1")
	return hs
}

func files(t *testing.T, be backend.Backend) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, ft := range SyncOrder() {
		err := be.List(context.Background(), ft, func(fi backend.FileInfo) error {
			out[string(ft)+"/"+fi.Name] = fi.Size
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func equalFiles(t *testing.T, a, b backend.Backend) {
	t.Helper()
	fa, fb := files(t, a), files(t, b)
	if len(fa) != len(fb) {
		t.Fatalf("copies differ: %d vs %d files", len(fa), len(fb))
	}
	for k, v := range fa {
		if fb[k] != v {
			t.Fatalf("copies differ at %s", k)
		}
	}
}

func member(name string, be backend.Backend, order int) Member {
	return Member{Copy: Copy{Name: name, Location: be.Location(), Kind: KindDisk, Order: order}, Backend: be}
}

func TestSyncResumableAfterInterruption(t *testing.T) {
	ctx := context.Background()
	src := mem.New()
	fill(t, src, 20)
	dstMem := mem.New()
	dst := fault.New(dstMem)
	// The 7th pack upload breaks off half-way: the sync fails, and
	// nothing refers to the packs that arrived.
	dst.Add(fault.Rule{Op: fault.OpSave, Type: backend.PackFile, Nth: 7, Action: fault.Interrupt, At: 500})
	_, err := SyncTo(ctx, []Member{member("a", src, 0)}, member("b", dst, 1), SyncOptions{Workers: 1})
	if err == nil {
		t.Fatal("interrupted sync reported success")
	}
	got := files(t, dstMem)
	for k := range got {
		if k[:len("index")] == "index" || k[:len("snapshots")] == "snapshots" {
			t.Fatalf("interrupted sync left %s referring to incomplete data", k)
		}
	}
	res, err := SyncTo(ctx, []Member{member("a", src, 0)}, member("b", dst, 1), SyncOptions{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete || res.Copied == 0 || res.Copied >= 24 {
		t.Fatalf("resumed sync: %+v", res)
	}
	equalFiles(t, src, dstMem)
	// Idempotent.
	res, err = SyncTo(ctx, []Member{member("a", src, 0)}, member("b", dst, 1), SyncOptions{})
	if err != nil || res.Copied != 0 {
		t.Fatalf("second sync copied %d files (err %v)", res.Copied, err)
	}
}

// flipped returns a backend whose copy of h has one byte changed.
func corrupt(t *testing.T, be *mem.Backend, h backend.Handle) {
	data, err := backend.LoadAll(context.Background(), be, h)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := be.Save(context.Background(), h, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

func TestSyncRejectsCorruptSource(t *testing.T) {
	ctx := context.Background()
	a, b, c := mem.New(), mem.New(), mem.New()
	hs := fill(t, a, 5)
	fill(t, b, 5)
	corrupt(t, a, hs[2])
	res, err := SyncTo(ctx, []Member{member("a", a, 0), member("b", b, 1)}, member("c", c, 2), SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 1 || res.Rejected[0].Source != "a" {
		t.Fatalf("want one rejected file from a: %+v", res.Rejected)
	}
	equalFiles(t, b, c)
	// Repair a from b.
	res, err = SyncTo(ctx, []Member{member("b", b, 1)}, member("a", a, 0), SyncOptions{VerifyExisting: true, Union: true})
	if err != nil || res.Replaced != 1 {
		t.Fatalf("repair: %+v %v", res, err)
	}
	data, _ := backend.LoadAll(ctx, a, hs[2])
	if !hashOK(hs[2].Name, data) {
		t.Fatal("repair did not fix the pack")
	}
}

func TestSyncRefusesOtherRepository(t *testing.T) {
	ctx := context.Background()
	a, b := mem.New(), mem.New()
	fill(t, a, 1)
	put(t, b, backend.ConfigFile, `{"version":1,"id":"other"}`)
	_, err := SyncTo(ctx, []Member{member("a", a, 0)}, member("b", b, 1), SyncOptions{})
	if !errors.Is(err, ErrIncompatible) {
		t.Fatalf("want ErrIncompatible, got %v", err)
	}
	// Same config, different keys the password does not open.
	c := mem.New()
	put(t, c, backend.ConfigFile, `{"version":1}`)
	put(t, c, backend.KeyFile, "key-2")
	_, err = SyncTo(ctx, []Member{member("a", a, 0)}, member("c", c, 1), SyncOptions{CheckKeys: func(context.Context, Member) error { return errors.New("wrong password") }})
	if !errors.Is(err, ErrIncompatible) || !bytes.Contains([]byte(err.Error()), []byte(`copy "c"`)) {
		t.Fatalf("want a refusal naming copy c, got %v", err)
	}
}

func TestSyncMirrorDeletes(t *testing.T) {
	ctx := context.Background()
	a, b := mem.New(), mem.New()
	hs := fill(t, a, 3)
	if _, err := SyncTo(ctx, []Member{member("a", a, 0)}, member("b", b, 1), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.Remove(ctx, hs[0]); err != nil {
		t.Fatal(err)
	}
	// Additive sync keeps it; mirror removes it.
	if _, err := SyncTo(ctx, []Member{member("a", a, 0)}, member("b", b, 1), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, hs[0]); err != nil {
		t.Fatal("additive sync deleted a file")
	}
	res, err := SyncTo(ctx, []Member{member("a", a, 0)}, member("b", b, 1), SyncOptions{Mirror: true})
	if err != nil || res.Deleted != 1 {
		t.Fatalf("mirror: %+v %v", res, err)
	}
	equalFiles(t, a, b)
}

func TestSetHealsReads(t *testing.T) {
	ctx := context.Background()
	a, b, c := mem.New(), mem.New(), mem.New()
	hs := fill(t, a, 4)
	fill(t, b, 4)
	fill(t, c, 4)
	if err := a.Remove(ctx, hs[0]); err != nil { // missing in a
		t.Fatal(err)
	}
	corrupt(t, b, hs[1]) // corrupt in b
	corrupt(t, a, hs[1]) // and in a
	fa := fault.New(a)
	fa.Add(fault.Rule{Op: fault.OpLoad, Type: backend.PackFile, Name: hs[2].Name, Action: fault.Truncate, At: 100})
	var seen []Event
	s := NewSet([]Member{member("a", fa, 0), member("b", b, 1), member("c", c, 2)}, func(e Event) { seen = append(seen, e) })
	want := func(h backend.Handle) []byte { d, _ := backend.LoadAll(ctx, c, h); return d }

	// Missing in a: a ranged read comes from b.
	rd, err := s.Load(ctx, hs[0], 10, 50)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rd)
	if !bytes.Equal(got, want(hs[0])[10:60]) {
		t.Fatal("failover read differs")
	}
	// Truncated in a: the read continues from b where a broke off.
	rd, _ = s.Load(ctx, hs[2], 50, 200)
	got, err = io.ReadAll(rd)
	if err != nil || !bytes.Equal(got, want(hs[2])[50:250]) {
		t.Fatalf("truncated read not healed: %v", err)
	}
	// Corrupt in a and b: a whole load verifies and comes from c.
	rd, err = s.Load(ctx, hs[1], 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(rd)
	if !bytes.Equal(got, want(hs[1])) {
		t.Fatal("whole load not healed")
	}
	// ReloadRange (after an authentication failure).
	s2 := NewSet([]Member{member("a", a, 0), member("b", b, 1), member("c", c, 2)}, nil)
	data, from, err := s2.ReloadRange(ctx, hs[1], 5, 20)
	if err != nil || from != "c" || !bytes.Equal(data, want(hs[1])[5:25]) {
		t.Fatalf("ReloadRange: from %q err %v", from, err)
	}
	if len(s2.Events()) != 2 {
		t.Fatalf("want 2 events, got %v", s2.Events())
	}
	if len(seen) < 3 {
		t.Fatalf("events not reported: %v", seen)
	}
	for _, e := range seen {
		if e.Served == "" {
			t.Fatalf("unhealed event: %v", e)
		}
	}
}

func TestPreflight(t *testing.T) {
	ctx := context.Background()
	a := mem.New()
	fill(t, a, 1)
	fa := fault.New(a)
	p := Preflight(ctx, member("a", fa, 0), PreflightOptions{Write: true})
	if !p.OK() || !*p.Writable {
		t.Fatalf("healthy copy failed: %+v", p)
	}
	fa.FailSave(0, "", errors.New("read-only file system"))
	p = Preflight(ctx, member("a", fa, 0), PreflightOptions{Write: true})
	if p.OK() || !bytes.Contains([]byte(p.Error), []byte(`copy "a"`)) {
		t.Fatalf("want a failure naming the copy: %+v", p)
	}
	fb := fault.New(mem.New())
	fb.Add(fault.Rule{Op: fault.OpStat, Action: fault.Fail, Err: errors.New("connection refused")})
	p = Preflight(ctx, member("b", fb, 0), PreflightOptions{})
	if p.Reachable || p.OK() {
		t.Fatalf("unreachable copy passed: %+v", p)
	}
}

func TestEvaluateAndGrowth(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	v := now.Add(-time.Hour)
	cs := []CopyStatus{
		{Kind: KindDisk, LastVerify: &v},
		{Kind: KindS3, Offsite: true, Immutable: true, LastVerify: &v},
		{Kind: KindSFTP, Offsite: true, LastVerify: &v},
	}
	if !Evaluate(cs).Met {
		t.Fatalf("3-2-1-1-0 not met: %+v", Evaluate(cs))
	}
	cs[2].VerifyErrors = 1
	if Evaluate(cs).Met {
		t.Fatal("verification errors ignored")
	}
	cs[2].VerifyErrors = 0
	cs[1].Immutable = false
	if Evaluate(cs).Met {
		t.Fatal("missing immutable copy ignored")
	}
	pts := []GrowthPoint{{now.Add(-10 * 24 * time.Hour), 1000}, {now.Add(-24 * time.Hour), 1000}, {now.Add(-60 * 24 * time.Hour), 1 << 40}}
	if g := GrowthPerDay(pts, now); g != 200 {
		t.Fatalf("growth %v, want 200/day", g)
	}
}

// TestSyncCatchesUpWAL: a copy that was down while segments were pushed
// gets every missed wal/<segment> from sync (they are named by segment,
// not by hash), a truncated one is replaced, and a mirror sync never
// deletes a segment only the copy holds.
func TestSyncCatchesUpWAL(t *testing.T) {
	ctx := context.Background()
	a, b := mem.New(), mem.New()
	fill(t, a, 2)
	if _, err := SyncTo(ctx, []Member{member("a", a, 0)}, member("b", b, 1), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	putWAL := func(be backend.Backend, name, content string) {
		t.Helper()
		h := backend.Handle{Type: backend.WALFile, Name: name}
		if err := be.Save(ctx, h, bytes.NewReader([]byte(content)), int64(len(content))); err != nil {
			t.Fatal(err)
		}
	}
	// Pushed while b was down: only a has them.
	segs := []string{"000000010000000000000001", "000000010000000000000002", "000000010000000000000003", "00000002.history", "000000010000000000000002.00000028.backup"}
	for i, n := range segs {
		putWAL(a, n, fmt.Sprintf("sealed segment %d %s", i, bytes.Repeat([]byte{byte(i)}, 100*i)))
	}
	putWAL(b, segs[1], "trunc")                                     // damaged in b: size differs
	putWAL(b, "000000010000000000000009", "only in b (a was down)") // pushed while a was down
	putWAL(a, "not-a-wal-name", "ignored")

	res, err := SyncTo(ctx, []Member{member("a", a, 0)}, member("b", b, 1), SyncOptions{Mirror: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != 4 || res.Replaced != 1 || res.Deleted != 0 || !res.Complete {
		t.Errorf("result %+v: want 4 copied, 1 replaced, nothing deleted", res)
	}
	fa, fb := files(t, a), files(t, b)
	for _, n := range segs {
		k := "wal/" + n
		if fb[k] != fa[k] {
			t.Errorf("%s: %d bytes in the copy, %d in the source", k, fb[k], fa[k])
		}
	}
	if _, ok := fb["wal/000000010000000000000009"]; !ok {
		t.Error("mirror sync deleted a segment only the copy held")
	}
	if _, ok := fb["wal/not-a-wal-name"]; ok {
		t.Error("a file that is not a WAL file was copied")
	}
}
