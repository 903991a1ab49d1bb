package location_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/einvault/einvault/internal/backend/location"
	"github.com/einvault/einvault/internal/testsvc"
)

// S3 credentials from the configuration (a secret file) are used for
// their location and win over the environment's; a missing or empty
// secret file is a clear error that never shows a secret.
func TestS3CredentialsFromConfig(t *testing.T) {
	m := testsvc.StartMinIO(t, testsvc.MinIOOptions{})
	ctx := context.Background()
	env := m.Env()
	// The environment holds wrong credentials: only the config's work.
	getenv := func(k string) string {
		switch k {
		case "AWS_ACCESS_KEY_ID":
			return "wrong-key"
		case "AWS_SECRET_ACCESS_KEY":
			return "wrong-secret-123"
		}
		return env[k]
	}
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "s3.secret")
	if err := os.WriteFile(secretFile, []byte(m.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	loc := m.RepoURL("creds", "repo")
	other := m.RepoURL("creds", "other")
	good := location.Credentials{S3AccessKeyID: m.AccessKey, S3SecretAccessKeyFile: secretFile}
	opts := location.Options{Getenv: getenv, Credentials: map[string]location.Credentials{loc: good}}
	be, err := location.Create(ctx, loc, opts)
	if err != nil {
		t.Fatalf("Create with the config's credentials: %v", err)
	}
	be.Close()
	// Another location does not get them: the environment's wrong ones fail.
	if _, err := location.Create(ctx, other, opts); err == nil || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
		t.Fatalf("Create of a location without config credentials: got %v, want the environment's credentials refused", err)
	}
	// Inline secret (discouraged, but accepted).
	opts.Credentials[other] = location.Credentials{S3AccessKeyID: m.AccessKey, S3SecretAccessKey: m.SecretKey}
	if be, err := location.Create(ctx, other, opts); err != nil {
		t.Fatalf("Create with an inline secret: %v", err)
	} else {
		be.Close()
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cr   location.Credentials
		want string
	}{
		{"missing file", location.Credentials{S3AccessKeyID: m.AccessKey, S3SecretAccessKeyFile: filepath.Join(dir, "nope")}, "s3_secret_access_key_file"},
		{"empty file", location.Credentials{S3AccessKeyID: m.AccessKey, S3SecretAccessKeyFile: empty}, "is empty"},
		{"wrong secret", location.Credentials{S3AccessKeyID: m.AccessKey, S3SecretAccessKey: "not-the-secret-1"}, "check AWS_ACCESS_KEY_ID"},
	} {
		opts.Credentials[loc] = tc.cr
		_, err := location.Open(ctx, loc, opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), m.SecretKey) || strings.Contains(err.Error(), "not-the-secret-1")) {
			t.Errorf("%s: the error shows a secret: %v", tc.name, err)
		}
	}
}

// The SFTP identity file and known_hosts path come from the
// configuration when the location string does not name them.
func TestSFTPCredentialsFromConfig(t *testing.T) {
	s := testsvc.StartSSHD(t)
	ctx := context.Background()
	home := t.TempDir() // no ~/.ssh keys, no agent
	getenv := func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}
	loc := "sftp:" + s.User + "@" + s.Addr() + ":" + filepath.Join(t.TempDir(), "repo")
	if _, err := location.Create(ctx, loc, location.Options{Getenv: getenv}); err == nil {
		t.Fatal("Create without a key or known_hosts succeeded")
	}
	opts := location.Options{Getenv: getenv, Credentials: map[string]location.Credentials{
		loc: {SFTPIdentityFile: s.KeyFile, SFTPKnownHostsFile: s.KnownHosts},
	}}
	be, err := location.Create(ctx, loc, opts)
	if err != nil {
		t.Fatalf("Create with the config's identity file and known_hosts: %v", err)
	}
	be.Close()
	// A wrong identity file is named in the error.
	opts.Credentials[loc] = location.Credentials{SFTPIdentityFile: filepath.Join(home, "missing_key"), SFTPKnownHostsFile: s.KnownHosts}
	if _, err := location.Open(ctx, loc, opts); err == nil || !strings.Contains(err.Error(), "missing_key") {
		t.Fatalf("Open with a missing identity file: got %v, want an error naming it", err)
	}
}
