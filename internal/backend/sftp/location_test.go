package sftp

import (
	"errors"
	"testing"
)

func TestParseLocation(t *testing.T) {
	tests := []struct {
		in   string
		want Config
		err  bool
	}{
		{in: "sftp:alice@nas:/srv/backup", want: Config{User: "alice", Host: "nas", Path: "/srv/backup"}},
		{in: "sftp:alice@nas:2222:/srv/backup", want: Config{User: "alice", Host: "nas", Port: 2222, Path: "/srv/backup"}},
		{in: "sftp:nas:backup", want: Config{Host: "nas", Path: "backup"}},
		{in: "sftp:a.b@c@nas.example.com:/x", want: Config{User: "a.b@c", Host: "nas.example.com", Path: "/x"}},
		{in: "sftp:bob@[::1]:2222:/x/y", want: Config{User: "bob", Host: "::1", Port: 2222, Path: "/x/y"}},
		{in: "sftp:[fe80::1]:/x", want: Config{Host: "fe80::1", Path: "/x"}},
		{in: "sftp:u@h:/path/with@at:and:colons", want: Config{User: "u", Host: "h", Path: "/path/with@at:and:colons"}},
		{in: "sftp://alice@nas:2222/srv/backup", want: Config{User: "alice", Host: "nas", Port: 2222, Path: "/srv/backup"}},
		{in: "sftp://nas/srv", want: Config{Host: "nas", Path: "/srv"}},
		{in: "sftp://u@[::1]:22/r", want: Config{User: "u", Host: "::1", Port: 22, Path: "/r"}},
		{in: "sftp:u@h:/r?key=/k/id&known-hosts=/k/kh&accept-new-host-key=1",
			want: Config{User: "u", Host: "h", Path: "/r", KeyFile: "/k/id", KnownHostsFile: "/k/kh", AcceptNewHostKey: true}},
		{in: "sftp:u@h:/r?accept-new-host-key=0", want: Config{User: "u", Host: "h", Path: "/r"}},
		{in: "sftp:u@h:/r?bogus=1", err: true},
		{in: "sftp:u@h:/r?accept-new-host-key=maybe", err: true},
		{in: "sftp:u@h", err: true},
		{in: "sftp:u@h:", err: true},
		{in: "sftp::/x", err: true},
		{in: "sftp:u@h:99999:/x", err: true},
		{in: "sftp:u@[::1:/x", err: true},
		{in: "sftp://u:secret@h/x", err: true},
		{in: "sftp://h", err: true},
		{in: "s3:http://h/b", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseLocation(tc.in)
			if tc.err {
				if err == nil || !errors.Is(err, ErrBadLocation) {
					t.Fatalf("got %+v, %v; want an error matching ErrBadLocation", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.User != tc.want.User || got.Host != tc.want.Host || got.Port != tc.want.Port || got.Path != tc.want.Path ||
				got.KeyFile != tc.want.KeyFile || got.KnownHostsFile != tc.want.KnownHostsFile || got.AcceptNewHostKey != tc.want.AcceptNewHostKey {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestConfigString(t *testing.T) {
	for _, in := range []string{"sftp:alice@nas:/srv/backup", "sftp:alice@nas:2222:/srv/backup", "sftp:bob@[::1]:2222:/x", "sftp:nas:rel/dir"} {
		c, err := ParseLocation(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.String(); got != in {
			t.Errorf("String(%q) = %q", in, got)
		}
	}
}

// FuzzParseLocation checks that parsing never panics and that a parsed
// location written back parses to the same place.
func FuzzParseLocation(f *testing.F) {
	for _, s := range []string{"sftp:alice@nas:/srv/backup", "sftp://u@[::1]:22/r", "sftp:u@h:2222:/r?key=/k&accept-new-host-key=1", "sftp:[::1]:x", "sftp:@:/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseLocation(s)
		if err != nil {
			return
		}
		if c.Host == "" || c.Path == "" {
			t.Fatalf("%q parsed without host or path: %+v", s, c)
		}
		c2, err := ParseLocation(c.String())
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", s, c.String(), err)
		}
		if c2.Host != c.Host || c2.Path != c.Path || c2.User != c.User || (c2.Port != c.Port && !(c.Port == 22 && c2.Port == 0)) {
			t.Fatalf("%q -> %q -> %+v, want %+v", s, c.String(), c2, c)
		}
	})
}
