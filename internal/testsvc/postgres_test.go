package testsvc

import "testing"

func TestStartPostgres(t *testing.T) {
	p := StartPostgres(t, PGOptions{})
	p.Exec(t, "postgres", "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10)")
	if got := p.QueryString(t, "postgres", "SELECT count(*) FROM t"); got != "10" {
		t.Fatalf("count = %q, want 10", got)
	}
	p.Stop(t)
	p.Start(t)
	if got := p.QueryString(t, "postgres", "SELECT current_setting('wal_level')"); got != "replica" {
		t.Fatalf("wal_level = %q", got)
	}
	p.Kill(t)
}
