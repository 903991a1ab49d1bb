package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/einvault/einvault/internal/testsvc"
)

// TestS3CredentialsFromConfig: the S3 credentials of the repository come
// from the configuration file (key ID inline, secret in a file), ahead of
// wrong ones in the environment; the secret never appears in the output.
func TestS3CredentialsFromConfig(t *testing.T) {
	t.Parallel()
	m := testsvc.StartMinIO(t, testsvc.MinIOOptions{})
	e := newEnv(t)
	e.repo = m.RepoURL("fromconfig", "repo")
	e.vars["AWS_ACCESS_KEY_ID"] = "wrong-key-id"
	e.vars["AWS_SECRET_ACCESS_KEY"] = "wrong-secret-key"
	secret := filepath.Join(e.dir, "s3.secret")
	if err := os.WriteFile(secret, []byte(m.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(e.dir, "einvault.yaml")
	y := "repository:\n  location: " + e.repo + "\n  s3_access_key_id: " + m.AccessKey + "\n  s3_secret_access_key_file: " + secret + "\n"
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	e.vars["EINVAULT_CONFIG"] = cfg
	e.mustRun("init")
	// Without the config the environment's wrong credentials are refused.
	delete(e.vars, "EINVAULT_CONFIG")
	if res := e.run("snapshots"); res.code == 0 || !strings.Contains(res.stderr, "AWS_SECRET_ACCESS_KEY") {
		t.Fatalf("snapshots with the environment's wrong credentials:\n%s", res)
	}
	e.vars["EINVAULT_CONFIG"] = cfg
	src := filepath.Join(e.dir, "src")
	e.generate(src, 20)
	want := takeManifest(t, src)
	snap := e.backup(src)
	e.restoreAndCompare(snap.SnapshotID, src, want)
	res := e.mustRun("config", "validate")
	for _, r := range []result{res, e.mustRun("snapshots")} {
		if strings.Contains(r.stdout+r.stderr, m.SecretKey) {
			t.Errorf("output shows the secret:\n%s", r)
		}
	}
}
