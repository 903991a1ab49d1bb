package location_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/einvault/einvault/internal/backend"
	"github.com/einvault/einvault/internal/backend/limit"
	"github.com/einvault/einvault/internal/backend/local"
	"github.com/einvault/einvault/internal/backend/location"
	"github.com/einvault/einvault/internal/backend/retry"
	"github.com/einvault/einvault/internal/testsvc"
)

func TestLocalStaysBareWithoutLimits(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir() + "/repo"
	be, err := location.Create(ctx, dir, location.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := be.(*local.Backend); !ok {
		t.Fatalf("local backend without limits is %T, want *local.Backend (TempFiler kept)", be)
	}
	if err := be.Save(ctx, backend.Handle{Type: backend.ConfigFile}, strings.NewReader(""), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := location.Create(ctx, dir, location.Options{}); !errors.Is(err, location.ErrAlreadyExists) {
		t.Fatalf("second Create: %v", err)
	}
	be, err = location.Open(ctx, "local:"+dir, location.Options{Limits: limit.Options{Connections: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := be.(*limit.Backend); !ok {
		t.Fatalf("local backend with limits is %T, want *limit.Backend", be)
	}
	if _, err := location.Open(ctx, t.TempDir()+"/missing", location.Options{}); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("Open of a missing path: %v", err)
	}
}

func TestS3Usage(t *testing.T) {
	for _, loc := range []string{"s3:ftp://h/bkt", "s3:https://h/", "s3:https://h/bkt?nope=1"} {
		_, err := location.Open(context.Background(), loc, location.Options{})
		if !errors.Is(err, location.ErrUsage) {
			t.Errorf("Open(%q): got %v, want ErrUsage", loc, err)
		}
	}
}

// S3 locations are wrapped in the retry decorator, with limits inside
// it; ?connections= adds a connection limit.
func TestS3Wrapped(t *testing.T) {
	m := testsvc.StartMinIO(t, testsvc.MinIOOptions{})
	ctx := context.Background()
	opts := location.Options{Getenv: m.Getenv(nil)}
	loc := m.RepoURL("wrapped", "repo?connections=3")
	if _, err := location.Open(ctx, loc, opts); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("Open before init: got %v, want ErrNotExist", err)
	}
	be, err := location.Create(ctx, loc, opts)
	if err != nil {
		t.Fatal(err)
	}
	rb, ok := be.(*retry.Backend)
	if !ok {
		t.Fatalf("S3 backend is %T, want *retry.Backend", be)
	}
	if _, ok := rb.Unwrap().(*limit.Backend); !ok {
		t.Fatalf("inside retry: %T, want *limit.Backend", rb.Unwrap())
	}
	if err := be.Save(ctx, backend.Handle{Type: backend.ConfigFile}, strings.NewReader(""), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := location.Create(ctx, loc, opts); !errors.Is(err, location.ErrAlreadyExists) {
		t.Fatalf("Create over a repository: got %v, want ErrAlreadyExists", err)
	}
	be, err = location.Open(ctx, m.RepoURL("wrapped", "repo"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := be.(*retry.Backend).Unwrap().(*limit.Backend); ok {
		t.Fatalf("limits without any being set")
	}
	if _, err := location.Open(ctx, m.RepoURL("wrapped", "repo"), location.Options{}); err == nil {
		t.Fatal("Open without credentials succeeded")
	}
}
