package testsvc

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestStartMariaDB(t *testing.T) {
	start := time.Now()
	m := StartMariaDB(t)
	t.Logf("MariaDB started in %s", time.Since(start))
	m.Exec(t, "CREATE DATABASE shop; CREATE TABLE shop.t (id INT PRIMARY KEY); INSERT INTO shop.t VALUES (1),(2)")
	if got := m.QueryString(t, "shop", "SELECT COUNT(*) FROM t"); got != "2" {
		t.Fatalf("count over TCP = %q, want 2", got)
	}
	out, err := m.Client(context.Background(), "mariadb", "-N", "-e", "SELECT COUNT(*) FROM shop.t").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "2" {
		t.Fatalf("count over the socket = %q, %v", out, err)
	}
	m.Stop(t)
	if m.Running() {
		t.Fatal("server still running after Stop")
	}
}
