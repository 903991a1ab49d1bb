package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/backendtest"
	"github.com/einvault/einvault/internal/backend/s3"
	"github.com/einvault/einvault/internal/testsvc"
)

var (
	minioHTTP  = &testsvc.SharedMinIO{}
	minioHTTPS = &testsvc.SharedMinIO{Options: testsvc.MinIOOptions{TLS: true}}
)

func TestMain(m *testing.M) {
	code := m.Run()
	minioHTTP.Stop()
	minioHTTPS.Stop()
	os.Exit(code)
}

var seq atomic.Int64

// uniq returns a name no other test of this process uses.
func uniq(base string) string {
	return fmt.Sprintf("%s-%d-%d", base, os.Getpid()%100000, seq.Add(1))
}

func config(t *testing.T, m *testsvc.MinIO, loc string) s3.Config {
	t.Helper()
	cfg, err := s3.ParseLocation(loc)
	if err != nil {
		t.Fatalf("ParseLocation(%q): %v", loc, err)
	}
	cfg.ApplyEnv(m.Getenv(nil))
	return cfg
}

func create(t *testing.T, m *testsvc.MinIO, loc string) *s3.Backend {
	t.Helper()
	be, err := s3.Create(context.Background(), config(t, m, loc))
	if err != nil {
		t.Fatalf("Create %s: %v", loc, err)
	}
	return be
}

func runConformance(t *testing.T, m *testsvc.MinIO, bucket string, lock bool) {
	m.MakeBucket(t, bucket, lock)
	backendtest.RunConformance(t, func(t *testing.T) backend.Backend {
		return create(t, m, m.RepoURL(bucket, uniq("repo")))
	})
}

func TestConformanceHTTP(t *testing.T) {
	t.Parallel()
	runConformance(t, minioHTTP.Get(t), "conformance-http", false)
}

func TestConformanceHTTPS(t *testing.T) {
	t.Parallel()
	runConformance(t, minioHTTPS.Get(t), "conformance-https", false)
}

// A versioned bucket (object lock without a retention option) exercises
// Remove deleting every version.
func TestConformanceVersioned(t *testing.T) {
	t.Parallel()
	runConformance(t, minioHTTP.Get(t), "conformance-versioned", true)
}

func TestHTTPSUntrustedCA(t *testing.T) {
	m := minioHTTPS.Get(t)
	cfg := config(t, m, m.RepoURL("untrusted", ""))
	cfg.CAFile = ""
	_, err := s3.Create(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "EINVAULT_S3_CA_FILE") {
		t.Fatalf("Create without the CA: got %v, want a certificate error naming EINVAULT_S3_CA_FILE", err)
	}
}

func TestOpenCreate(t *testing.T) {
	m := minioHTTP.Get(t)
	ctx := context.Background()
	bucket := uniq("newbucket")
	loc := m.RepoURL(bucket, "a/b")
	if _, err := s3.Open(ctx, config(t, m, loc)); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("Open of a missing bucket: got %v, want ErrNotExist", err)
	}
	be := create(t, m, loc) // creates the bucket
	defer be.Close()
	if _, err := s3.Open(ctx, config(t, m, loc)); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("Open without config: got %v, want ErrNotExist", err)
	}
	cfgData := []byte("config")
	if err := be.Save(ctx, backend.Handle{Type: backend.ConfigFile}, bytes.NewReader(cfgData), int64(len(cfgData))); err != nil {
		t.Fatal(err)
	}
	if _, err := s3.Create(ctx, config(t, m, loc)); !errors.Is(err, s3.ErrAlreadyExists) {
		t.Fatalf("Create over a repository: got %v, want ErrAlreadyExists", err)
	}
	be2, err := s3.Open(ctx, config(t, m, loc))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	be2.Close()
	if got, want := be.Location(), "s3:http://"+m.Endpoint()+"/"+bucket+"/a/b"; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	// Wrong credentials: a clear, permanent error.
	cfg := config(t, m, loc)
	cfg.SecretKey = "wrong-secret-key"
	_, err = s3.Open(ctx, cfg)
	if err == nil || backend.IsTransient(err) || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
		t.Fatalf("Open with a wrong secret: got %v (transient %v)", err, backend.IsTransient(err))
	}
	cfg = config(t, m, loc)
	cfg.AccessKey = ""
	if _, err := s3.Open(ctx, cfg); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("Open without credentials: got %v", err)
	}
}

func TestObjectLock(t *testing.T) {
	m := minioHTTP.Get(t)
	ctx := context.Background()
	bucket := uniq("locked")
	now := time.Now()
	// The repository gets the lock-enabled bucket created by Create.
	cfg := config(t, m, m.RepoURL(bucket, "repo?object-lock=2d&lock-mode=governance"))
	cfg.Now = func() time.Time { return now }
	be, err := s3.Create(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	put := func(h backend.Handle) {
		t.Helper()
		data := []byte("payload of " + h.String())
		if err := be.Save(ctx, h, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("Save %v: %v", h, err)
		}
	}
	pack := backend.Handle{Type: backend.PackFile, Name: strings.Repeat("ab", 32)}
	snap := backend.Handle{Type: backend.SnapshotFile, Name: strings.Repeat("cd", 32)}
	lock := backend.Handle{Type: backend.LockFile, Name: strings.Repeat("ef", 32)}
	pend := backend.Handle{Type: backend.PendingFile, Name: strings.Repeat("01", 32)}
	for _, h := range []backend.Handle{pack, snap, lock, pend} {
		put(h)
	}
	put(pack) // a second version, also protected
	for _, h := range []backend.Handle{pack, snap} {
		err := be.Remove(ctx, h)
		if !errors.Is(err, backend.ErrProtected) {
			t.Fatalf("Remove %v: got %v, want ErrProtected", h, err)
		}
		if want := now.Add(48 * time.Hour).UTC().Format("2006-01-02"); !strings.Contains(err.Error(), want) {
			t.Errorf("Remove %v: error %q does not say until when (%s)", h, err, want)
		}
		if _, err := be.Stat(ctx, h); err != nil {
			t.Errorf("Stat %v after refused Remove: %v (the data must still be there)", h, err)
		}
	}
	// Locks and pending marks are never retained: removing them works.
	for _, h := range []backend.Handle{lock, pend} {
		if err := be.Remove(ctx, h); err != nil {
			t.Fatalf("Remove %v: %v", h, err)
		}
		if err := be.Remove(ctx, h); !errors.Is(err, backend.ErrNotExist) {
			t.Fatalf("second Remove %v: got %v, want ErrNotExist", h, err)
		}
	}
	// The retention is on the object, as S3 reports it.
	c, err := m.Client()
	if err != nil {
		t.Fatal(err)
	}
	mode, until, err := c.GetObjectRetention(ctx, bucket, "repo/snapshots/"+snap.Name, "")
	if err != nil {
		t.Fatal(err)
	}
	if mode == nil || string(*mode) != s3.ModeGovernance || until == nil || until.Sub(now.Add(48*time.Hour)).Abs() > 2*time.Second {
		t.Errorf("retention of %v: mode %v until %v, want GOVERNANCE until %v", snap, mode, until, now.Add(48*time.Hour))
	}
	// object-lock on a bucket without object lock is refused at once.
	plain := uniq("plain")
	m.MakeBucket(t, plain, false)
	_, err = s3.Create(ctx, config(t, m, m.RepoURL(plain, "?object-lock=1d")))
	if err == nil || !strings.Contains(err.Error(), "no object lock") {
		t.Fatalf("object-lock on a plain bucket: got %v", err)
	}
}

func TestFreeSpaceAndClock(t *testing.T) {
	m := minioHTTP.Get(t)
	ctx := context.Background()
	bucket := uniq("quota")
	be := create(t, m, m.RepoURL(bucket, "?quota=1MiB"))
	defer be.Close()
	data := bytes.Repeat([]byte{1}, 1000)
	h := backend.Handle{Type: backend.IndexFile, Name: strings.Repeat("aa", 32)}
	if err := be.Save(ctx, h, bytes.NewReader(data), 1000); err != nil {
		t.Fatal(err)
	}
	free, err := be.FreeSpace(ctx)
	if err != nil || free != 1<<20-1000 {
		t.Fatalf("FreeSpace = %d, %v; want %d", free, err, 1<<20-1000)
	}
	noQuota := create(t, m, m.RepoURL(bucket, "other"))
	defer noQuota.Close()
	if _, err := noQuota.FreeSpace(ctx); !errors.Is(err, backend.ErrSpaceUnknown) {
		t.Fatalf("FreeSpace without quota: got %v, want ErrSpaceUnknown", err)
	}
	skew, err := be.ClockSkew(ctx)
	if err != nil || skew.Abs() > 2*time.Second {
		t.Fatalf("ClockSkew against a local server = %v, %v; want about 0", skew, err)
	}
	cfg := config(t, m, m.RepoURL(bucket, "skewed"))
	cfg.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	skewed, err := s3.Create(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer skewed.Close()
	if skew, err := skewed.ClockSkew(ctx); err != nil || (skew-time.Hour).Abs() > 2*time.Second {
		t.Fatalf("ClockSkew with a local clock one hour behind = %v, %v; want about +1h", skew, err)
	}
}

// A stopped server gives transient errors (worth a retry), not
// permanent ones.
func TestTransientWhenDown(t *testing.T) {
	m := testsvc.StartMinIO(t, testsvc.MinIOOptions{})
	ctx := context.Background()
	be := create(t, m, m.RepoURL("down", ""))
	defer be.Close()
	m.Kill()
	h := backend.Handle{Type: backend.IndexFile, Name: strings.Repeat("aa", 32)}
	err := be.Save(ctx, h, strings.NewReader("x"), 1)
	if err == nil || !backend.IsTransient(err) {
		t.Fatalf("Save with the server down: got %v, want a transient error", err)
	}
	if _, err := be.Stat(ctx, h); err == nil || !backend.IsTransient(err) {
		t.Fatalf("Stat with the server down: got %v, want a transient error", err)
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := be.Save(ctx, h, strings.NewReader("x"), 1); err != nil {
		t.Fatalf("Save after restart: %v", err)
	}
}

// Files up to the multipart threshold go in one PUT (a plain ETag);
// larger ones in parts (an ETag ending in "-<parts>"), and both read
// back intact, from a seekable source and from a plain stream.
func TestMultipartThreshold(t *testing.T) {
	t.Parallel()
	m := minioHTTP.Get(t)
	ctx := context.Background()
	bucket := uniq("multipart")
	be := create(t, m, m.RepoURL(bucket, "")+"?multipart-threshold=6MiB&part-size=5MiB")
	defer be.Close()
	client, err := m.Client()
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		size   int
		stream bool
		parts  string // "" = single PUT
	}{
		{size: 6 << 20, parts: ""},
		{size: 6<<20 + 1, parts: "-2"},
		{size: 11 << 20, stream: true, parts: "-3"},
		{size: 100 << 10, stream: true, parts: ""},
	} {
		data := make([]byte, tc.size)
		for i := range data {
			data[i] = byte(rnd.Uint32())
		}
		sum := sha256.Sum256(data)
		h := backend.Handle{Type: backend.PackFile, Name: hex.EncodeToString(sum[:])}
		var src io.Reader = bytes.NewReader(data)
		if tc.stream {
			src = struct{ io.Reader }{src} // no ReaderAt, no Seeker
		}
		if err := be.Save(ctx, h, src, int64(len(data))); err != nil {
			t.Fatalf("size %d: Save: %v", tc.size, err)
		}
		oi, err := client.StatObject(ctx, bucket, "data/"+h.Name[:2]+"/"+h.Name, minio.StatObjectOptions{})
		if err != nil {
			t.Fatalf("size %d: StatObject: %v", tc.size, err)
		}
		multi := strings.LastIndex(oi.ETag, "-")
		got := ""
		if multi >= 0 {
			got = oi.ETag[multi:]
		}
		if got != tc.parts {
			t.Errorf("size %d: ETag %q: parts suffix %q, want %q", tc.size, oi.ETag, got, tc.parts)
		}
		rd, err := be.Load(ctx, h, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		back, err := io.ReadAll(rd)
		rd.Close()
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("size %d: read back %d bytes (err %v), want the %d saved", tc.size, len(back), err, len(data))
		}
	}
}
