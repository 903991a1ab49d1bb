package pg

import (
	"strings"
	"testing"
)

func TestParseDSN(t *testing.T) {
	tests := []struct {
		in                            string
		uri, pw, db, user, host, port string
		err                           string
	}{
		{in: "pg://app@db1:5433/einvoice", uri: "postgresql://app@db1:5433/einvoice", db: "einvoice", user: "app", host: "db1", port: "5433"},
		{in: "postgres://app:s3cret@localhost/inv?sslmode=disable", uri: "postgresql://app@localhost/inv?sslmode=disable", pw: "s3cret", db: "inv", user: "app", host: "localhost"},
		{in: "postgresql://u@/inv?host=/run/pg&port=5499", uri: "postgresql://u@/inv?host=/run/pg&port=5499", db: "inv", user: "u", host: "/run/pg", port: "5499"},
		{in: "pg://u@h/inv?password=pw&sslmode=require", uri: "postgresql://u@h/inv?sslmode=require", pw: "pw", db: "inv", user: "u", host: "h"},
		{in: "pg://h/", err: "names no database"},
		{in: "mysql://h/db", err: "not a PostgreSQL"},
		{in: "pg://u:p%zz@h/db", err: "invalid"},
	}
	for _, tt := range tests {
		d, err := ParseDSN(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err = %v, want %q", tt.in, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "p%zz") {
				t.Errorf("%s: error leaks the password: %v", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if d.URI != tt.uri || d.Password != tt.pw || d.Database != tt.db || d.User != tt.user || d.Host != tt.host || d.Port != tt.port {
			t.Errorf("%s: got %+v", tt.in, d)
		}
	}
}

func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"pg://app:pw@db1:5433/einvoice", "postgres://u@/x?host=/tmp&password=zz", "postgresql://[::1]:5/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDSN(s)
		if err != nil {
			return
		}
		if d.Password != "" && strings.Contains(d.URI, d.Password) && !strings.Contains(strings.ReplaceAll(s, d.Password, ""), d.Password) && len(d.Password) > 3 {
			// The URI must not carry the password, unless it also appears
			// elsewhere in the string (user or database named the same).
			if !strings.Contains(d.User+d.Database+d.Host, d.Password) {
				t.Fatalf("URI %q leaks password %q", d.URI, d.Password)
			}
		}
		if d.Database == "" {
			t.Fatalf("parsed %q without a database", s)
		}
	})
}
