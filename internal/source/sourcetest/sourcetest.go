// Package sourcetest helps the source packages' tests: an in-memory
// repository with a cheap KDF, stream backups into it, and reading a
// stream back.
package sourcetest

import (
	"bytes"
	"context"
	"testing"

	"github.com/einvault/einvault/internal/archiver"
	"github.com/einvault/einvault/internal/backend/mem"
	"github.com/einvault/einvault/internal/crypto"
	"github.com/einvault/einvault/internal/repo"
	"github.com/einvault/einvault/internal/restorer"
)

// Repo returns a fresh in-memory repository.
func Repo(t testing.TB) *repo.Repository {
	t.Helper()
	r, err := repo.Init(context.Background(), mem.New(), []byte("pw"), repo.Options{
		KDF: crypto.KDFParams{Time: 1, Memory: 1024, Threads: 1}, PackSize: 1 << 20,
		Chunker: repo.ChunkerParams{Algorithm: "fastcdc-v1.0.0", Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Backup runs a stream backup of produce into r.
func Backup(ctx context.Context, r *repo.Repository, source string, produce archiver.StreamFunc) (*archiver.Result, error) {
	return archiver.New(r, archiver.Options{Host: "test"}).BackupStreams(ctx, archiver.Streams{Source: source, Produce: produce})
}

// Snapshots returns how many snapshots r holds.
func Snapshots(t testing.TB, r *repo.Repository) int {
	t.Helper()
	s, err := r.Snapshots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(s)
}

// Read returns the content of stream name of snap.
func Read(t testing.TB, r *repo.Repository, snap *repo.Snapshot, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := restorer.New(r, restorer.Options{}).Dump(context.Background(), snap, "/"+name, &buf); err != nil {
		t.Fatalf("read stream %s: %v", name, err)
	}
	return buf.Bytes()
}
