package s3

import (
	"strings"
	"testing"
	"time"
)

func TestParseLocation(t *testing.T) {
	tests := []struct {
		loc  string
		want Config
		err  string
	}{
		{loc: "s3:https://s3.example.com/bucket", want: Config{Endpoint: "s3.example.com", Secure: true, Bucket: "bucket", LockMode: ModeGovernance}},
		{loc: "s3:http://127.0.0.1:9000/my.bucket/a/b/", want: Config{Endpoint: "127.0.0.1:9000", Bucket: "my.bucket", Prefix: "a/b", LockMode: ModeGovernance}},
		{loc: "s3:https://h/bkt/p?region=eu-west-1&object-lock=90d&lock-mode=compliance&quota=500GiB&connections=8&part-size=32MiB",
			want: Config{Endpoint: "h", Secure: true, Bucket: "bkt", Prefix: "p", Region: "eu-west-1", ObjectLock: 90 * 24 * time.Hour,
				LockMode: ModeCompliance, Quota: 500 << 30, Connections: 8, PartSize: 32 << 20}},
		{loc: "s3:https://h/bkt?object-lock=36h", want: Config{Endpoint: "h", Secure: true, Bucket: "bkt", ObjectLock: 36 * time.Hour, LockMode: ModeGovernance}},
		{loc: "s3:ftp://h/bkt", err: "scheme"},
		{loc: "s3:https:///bkt", err: "no host"},
		{loc: "s3:https://h/", err: "no bucket"},
		{loc: "s3:https://h/B", err: "bucket name"},
		{loc: "s3:https://h/bkt/a//b", err: "bad prefix"},
		{loc: "s3:https://h/bkt/../x", err: "bad prefix"},
		{loc: "s3:http://h/bkt/pre%00fix", err: "control character"},
		{loc: "s3:https://key:secret@h/bkt", err: "credentials"},
		{loc: "s3:https://h/bkt?colour=red", err: "unknown option"},
		{loc: "s3:https://h/bkt?object-lock=0d", err: "object-lock"},
		{loc: "s3:https://h/bkt?object-lock=soon", err: "object-lock"},
		{loc: "s3:https://h/bkt?lock-mode=compliance", err: "needs object-lock"},
		{loc: "s3:https://h/bkt?object-lock=1d&lock-mode=strict", err: "lock-mode"},
		{loc: "s3:https://h/bkt?quota=lots", err: "quota"},
		{loc: "s3:https://h/bkt?connections=0", err: "connections"},
		{loc: "s3:https://h/bkt?part-size=1MiB", err: "part-size"},
		{loc: "s3:https://h/bkt?region=a&region=b", err: "2 times"},
		{loc: "sftp:h:/x", err: "does not start"},
	}
	for _, tc := range tests {
		t.Run(tc.loc, func(t *testing.T) {
			got, err := ParseLocation(tc.loc)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tc.want.String() || got.Region != tc.want.Region || got.ObjectLock != tc.want.ObjectLock ||
				got.LockMode != tc.want.LockMode || got.Quota != tc.want.Quota || got.Connections != tc.want.Connections ||
				got.PartSize != tc.want.PartSize || got.Secure != tc.want.Secure {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "tok",
		"AWS_DEFAULT_REGION": "ap-southeast-1", "AWS_CA_BUNDLE": "/ca.pem"}
	c, err := ParseLocation("s3:https://h/bkt")
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyEnv(func(k string) string { return env[k] })
	if c.AccessKey != "id" || c.SecretKey != "secret" || c.SessionToken != "tok" || c.Region != "ap-southeast-1" || c.CAFile != "/ca.pem" {
		t.Fatalf("got %+v", c)
	}
	env["EINVAULT_S3_CA_FILE"] = "/mine.pem"
	c, _ = ParseLocation("s3:https://h/bkt?region=eu-central-1")
	c.ApplyEnv(func(k string) string { return env[k] })
	if c.Region != "eu-central-1" || c.CAFile != "/mine.pem" {
		t.Fatalf("option and EINVAULT_S3_CA_FILE must win: got %+v", c)
	}
	if strings.Contains(c.String(), "secret") {
		t.Fatalf("String leaks the secret: %s", c)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "10": 10, "1k": 1000, "1KiB": 1024, "1.5 GiB": 3 << 29, "2TB": 2e12, "500GiB": 500 << 30} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "GiB", "1XB", "1e99", "9999999999999PiB"} {
		if got, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, got)
		}
	}
}

func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{"s3:https://h/b", "s3:http://127.0.0.1:9000/bucket/pre/fix?object-lock=90d&quota=1GiB",
		"s3:https://h/bkt?lock-mode=compliance&object-lock=7y", "s3:http://[::1]:9000/abc", "s3:https://h/bkt?part-size=5MiB&connections=3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, loc string) {
		c, err := ParseLocation(loc)
		if err != nil {
			return
		}
		if c.Bucket == "" || c.Endpoint == "" || strings.HasPrefix(c.Prefix, "/") || strings.HasSuffix(c.Prefix, "/") {
			t.Fatalf("ParseLocation(%q) accepted %+v", loc, c)
		}
		// The canonical string parses to the same place.
		c2, err := ParseLocation(c.String())
		if err != nil || c2.String() != c.String() {
			t.Fatalf("round trip of %q: %q -> %+v, %v", loc, c.String(), c2, err)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1", "1.5GiB", "20 MB", "7p"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseSize(s); err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
	})
}

func FuzzParseRetention(f *testing.F) {
	for _, s := range []string{"90d", "2w", "7y", "36h", "1s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseRetention(s); err == nil && d < time.Second {
			t.Fatalf("ParseRetention(%q) = %v", s, d)
		}
	})
}
