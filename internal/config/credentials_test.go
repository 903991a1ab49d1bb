package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestCredentials(t *testing.T) {
	const s3loc = "s3:https://s3.example.com/bkt/repo"
	for _, tc := range []struct {
		name, yaml string
		err        string // a problem containing this, "" = valid
		warn       string // a warning containing this
		line       int
	}{
		{name: "secret file", yaml: "repository:\n  location: " + s3loc + "\n  s3_access_key_id: AKID\n  s3_secret_access_key_file: /etc/einvault/s3.secret\n"},
		{name: "inline secret warns", yaml: "repository:\n  location: " + s3loc + "\n  s3_access_key_id: AKID\n  s3_secret_access_key: hunter2hunter2\n",
			warn: "s3_secret_access_key_file", line: 4},
		{name: "inline token warns", yaml: "repository:\n  location: " + s3loc + "\n  s3_access_key_id: AKID\n  s3_secret_access_key_file: /s\n  s3_session_token: tok\n",
			warn: "AWS_SESSION_TOKEN", line: 5},
		{name: "both inline and file", yaml: "repository:\n  location: " + s3loc + "\n  s3_access_key_id: AKID\n  s3_secret_access_key: x\n  s3_secret_access_key_file: /s\n",
			err: "keep one", line: 4},
		{name: "key id alone", yaml: "repository:\n  location: " + s3loc + "\n  s3_access_key_id: AKID\n", err: "without a secret", line: 3},
		{name: "secret alone", yaml: "repository:\n  location: " + s3loc + "\n  s3_secret_access_key_file: /s\n", err: "without s3_access_key_id", line: 3},
		{name: "relative file", yaml: "repository:\n  location: " + s3loc + "\n  s3_access_key_id: AKID\n  s3_secret_access_key_file: s3.secret\n", err: "not an absolute path", line: 4},
		{name: "s3 on local", yaml: "repository:\n  location: /srv/repo\n  s3_access_key_id: AKID\n  s3_secret_access_key_file: /s\n", err: "S3 credentials given for local", line: 3},
		{name: "sftp on s3", yaml: "repository:\n  location: " + s3loc + "\n  sftp_identity_file: /k\n", err: "SFTP settings given for s3", line: 3},
		{name: "copy sftp", yaml: "repository:\n  location: /srv/repo\n  copies:\n    - name: nas\n      location: sftp:b@nas:/r\n      sftp_identity_file: /etc/einvault/id_ed25519\n      sftp_known_hosts: /etc/einvault/known_hosts\n"},
		{name: "copy inline secret", yaml: "repository:\n  location: /srv/repo\n  copies:\n    - name: off\n      location: " + s3loc + "\n      s3_access_key_id: AKID\n      s3_secret_access_key: hunter2hunter2\n",
			warn: "repository.copies[0].s3_secret_access_key", line: 7},
		{name: "unknown key", yaml: "repository:\n  location: " + s3loc + "\n  s3_secret: x\n", err: "unknown setting", line: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml), "t.yaml", noEnv)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), fmt.Sprintf("line %d:", tc.line)) {
					t.Fatalf("got %v, want a problem at line %d containing %q", err, tc.line, tc.err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("the error shows the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.warn == "" {
				if len(c.Warnings) > 0 {
					t.Fatalf("unexpected warnings %v", c.Warnings)
				}
				return
			}
			if len(c.Warnings) != 1 || c.Warnings[0].Line != tc.line || !strings.Contains(c.Warnings[0].String(), tc.warn) {
				t.Fatalf("warnings %v, want one at line %d containing %q", c.Warnings, tc.line, tc.warn)
			}
			if strings.Contains(c.Warnings[0].String(), "hunter2") {
				t.Errorf("the warning shows the secret: %v", c.Warnings[0])
			}
		})
	}
}

// Credentials belong to the location the file writes: EINVAULT_REPO
// pointing elsewhere does not receive the repository's secrets.
func TestCredentialsByLocation(t *testing.T) {
	const y = "repository:\n  location: s3:https://a.example/bkt\n  s3_access_key_id: AK1\n  s3_secret_access_key_file: /s1\n" +
		"  copies:\n    - name: off\n      location: s3:https://b.example/bkt\n      s3_access_key_id: AK2\n      s3_secret_access_key: inline-secret\n" +
		"    - name: nas\n      location: sftp:u@nas:/r\n      sftp_identity_file: /k\n"
	c, err := Parse([]byte(y), "t.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Credentials()
	if got := m["s3:https://a.example/bkt"]; got.S3AccessKeyID != "AK1" || got.S3SecretAccessKeyFile != "/s1" {
		t.Errorf("repository credentials %+v", got)
	}
	if got := m["s3:https://b.example/bkt"]; got.S3AccessKeyID != "AK2" || got.S3SecretAccessKey != "inline-secret" {
		t.Errorf("copy credentials: key %q", got.S3AccessKeyID)
	}
	if got := m["sftp:u@nas:/r"]; got.SFTPIdentityFile != "/k" {
		t.Errorf("sftp copy credentials %+v", got)
	}
	env := func(k string) string {
		if k == "EINVAULT_REPO" {
			return "s3:https://evil.example/bkt"
		}
		return ""
	}
	c, err = Parse([]byte(y), "t.yaml", env)
	if err != nil {
		t.Fatal(err)
	}
	m = c.Credentials()
	if _, ok := m["s3:https://evil.example/bkt"]; ok {
		t.Error("the EINVAULT_REPO location received the file's repository credentials")
	}
	if _, ok := m["s3:https://a.example/bkt"]; !ok {
		t.Error("the file's repository location lost its credentials")
	}
}

// A secret never shows in formatted or JSON output of the config.
func TestSecretRedacted(t *testing.T) {
	c, err := Parse([]byte("repository:\n  location: s3:https://a.example/bkt\n  s3_access_key_id: AK1\n  s3_secret_access_key: hunter2hunter2\n  s3_session_token_file: /t\n"), "t.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(c.Repository)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v", c.Repository), fmt.Sprintf("%+v", c.Repository), fmt.Sprintf("%#v", c.Repository), fmt.Sprint(c.Repository.S3SecretAccessKey), string(js)} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("secret shown: %s", s)
		}
	}
	if string(c.Repository.S3SecretAccessKey) != "hunter2hunter2" {
		t.Error("the value itself is lost")
	}
}
