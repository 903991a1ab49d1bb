package mysql

import (
	"bufio"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseDSN(t *testing.T) {
	tests := []struct {
		in   string
		want DSN
		str  string
		err  string
	}{
		{in: "mysql://backup@db1:3307/einvoice", want: DSN{Scheme: "mysql", User: "backup", Host: "db1", Port: 3307, Database: "einvoice"}, str: "mysql://backup@db1:3307/einvoice"},
		{in: "mariadb://backup:pw@db1/einvoice", want: DSN{Scheme: "mariadb", User: "backup", Password: "pw", Host: "db1", Port: 3306, Database: "einvoice"}, str: "mariadb://backup@db1:3306/einvoice"},
		{in: "mysql://root@localhost/shop?socket=/run/mysqld/mysqld.sock", want: DSN{Scheme: "mysql", User: "root", Port: 3306, Socket: "/run/mysqld/mysqld.sock", Database: "shop"}, str: "mysql://root@localhost/shop?socket=/run/mysqld/mysqld.sock"},
		{in: "mysql://root@db1/", err: "no database"},
		{in: "mysql://root@db1:99999/x", err: "bad port"},
		{in: "mysql://root@db1/x?ssl=1", err: "unknown parameter"},
		{in: "mysql://root@/x", err: "no host"},
		{in: "mysql://root@localhost/x?socket=rel.sock", err: "absolute"},
		{in: "pg://x@y/z", err: "mysql:// or mariadb://"},
	}
	for _, tt := range tests {
		got, err := ParseDSN(tt.in, false)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseDSN(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want || got.String() != tt.str {
			t.Errorf("ParseDSN(%q) = %+v (%s), %v", tt.in, got, got, err)
		}
	}
}

func TestCredentialsNeverOnTheCommandLine(t *testing.T) {
	d := DSN{User: "u", Password: "secret", Host: "h", Port: 1}
	if strings.Contains(strings.Join(d.ClientArgs(), " "), "secret") {
		t.Fatal("password in client arguments")
	}
	found := false
	for _, e := range d.ClientEnv() {
		found = found || e == "MYSQL_PWD=secret"
	}
	if !found {
		t.Fatal("password not in the client environment")
	}
}

func TestFillCredentials(t *testing.T) {
	dir := t.TempDir()
	cnf := filepath.Join(dir, ".my.cnf")
	if err := os.WriteFile(cnf, []byte("[mysqld]\npassword=server\n[client]\nuser = backup # the user\npassword = 'p#w'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": dir}
	d := DSN{}
	if err := d.FillCredentials(func(k string) string { return env[k] }, ""); err != nil || d.User != "backup" || d.Password != "p#w" {
		t.Fatalf("from option file: %+v, %v", d, err)
	}
	env["MYSQL_PWD"] = "fromenv"
	d = DSN{User: "x"}
	if err := d.FillCredentials(func(k string) string { return env[k] }, ""); err != nil || d.Password != "fromenv" {
		t.Fatalf("from MYSQL_PWD: %+v, %v", d, err)
	}
}

func TestParseOptionFile(t *testing.T) {
	in := "# comment\n!includedir /etc/mysql/conf.d/\n[client]\nuser=a\nsocket = /s\n[mysqldump]\nuser=b\nquick\n[other]\nuser=c\n"
	got, err := ParseOptionFile(bufio.NewReader(strings.NewReader(in)), "client", "mysqldump")
	want := map[string]string{"user": "b", "socket": "/s", "quick": ""}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := ParseOptionFile(bufio.NewReader(strings.NewReader("[client\n")), "client"); err == nil {
		t.Fatal("unclosed group accepted")
	}
}

func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"mysql://u@h:1/d", "mariadb://u:p@h/d?socket=/s", "mysql://", "mysql://@/?socket=", "mysql://u@[::1]:3306/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDSN(s, true)
		if err != nil {
			return
		}
		if d.Password != "" && strings.Contains(d.String(), d.Password) && !strings.Contains(d.User+d.Host+d.Database+d.Socket, d.Password) {
			t.Fatalf("String() leaks the password: %s", d.String())
		}
		_ = d.DriverDSN(d.Database)
	})
}

func FuzzParseOptionFile(f *testing.F) {
	for _, s := range []string{"[client]\nuser=a\npassword=\"b\"\n", "[client\n", "x=y\n[client]\n#c\n;d\nk = 'v' # c\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseOptionFile(bufio.NewReader(strings.NewReader(s)), "client")
	})
}
