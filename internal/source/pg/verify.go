package pg

import (
	"context"
	"fmt"

	"github.com/einvault/einvault/internal/source"
	"github.com/jackc/pgx/v5"
)

// VerifyDatabase checks a restored database: every table recorded at
// backup time is present with the same row count (and checksum where
// recorded), and, where the amcheck extension is installed on the server,
// every B-tree index passes bt_index_check. amcheck is created for the
// check and dropped again when it was not there before.
func VerifyDatabase(ctx context.Context, conn *pgx.Conn, db string, want []source.Table, checksums bool) (*source.Verification, error) {
	v := &source.Verification{Engine: "postgresql", Database: db}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("verify %s: %v", db, oneLine(err))
	}
	got, err := listTables(ctx, tx)
	if err != nil {
		tx.Rollback(ctx)
		return nil, err
	}
	if err := countTables(ctx, tx, got, checksums); err != nil {
		tx.Rollback(ctx)
		return nil, err
	}
	tx.Rollback(ctx)
	m := map[string]source.Table{}
	for _, t := range got {
		m[t.Schema+"."+t.Name] = t
	}
	v.CompareTables(want, m)
	v.Checks = append(v.Checks, Amcheck(ctx, conn))
	return v, nil
}

// Amcheck runs bt_index_check on every B-tree index of the connected
// database. Without the amcheck extension available the check is
// reported as skipped (OK, with a detail saying so).
func Amcheck(ctx context.Context, conn *pgx.Conn) source.Check {
	c := source.Check{Name: "amcheck"}
	var avail, installed bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'amcheck'),
		EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'amcheck')`).Scan(&avail, &installed); err != nil {
		c.Detail = "could not query extensions: " + oneLine(err)
		return c
	}
	if !avail {
		c.OK, c.Detail = true, "skipped: the amcheck extension is not installed on this server (postgresql-contrib)"
		return c
	}
	if !installed {
		if _, err := conn.Exec(ctx, "CREATE EXTENSION amcheck"); err != nil {
			c.OK, c.Detail = true, "skipped: cannot create the amcheck extension: "+oneLine(err)
			return c
		}
		defer conn.Exec(context.WithoutCancel(ctx), "DROP EXTENSION IF EXISTS amcheck")
	}
	rows, err := conn.Query(ctx, `SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_am am ON am.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE am.amname = 'btree' AND c.relpersistence <> 't' AND i.indisready AND i.indisvalid ORDER BY 1`)
	if err != nil {
		c.Detail = "list indexes: " + oneLine(err)
		return c
	}
	idx, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		c.Detail = "list indexes: " + oneLine(err)
		return c
	}
	for _, name := range idx {
		if _, err := conn.Exec(ctx, "SELECT bt_index_check($1::regclass)", name); err != nil {
			c.Want, c.Got, c.Detail = "no corruption", name, oneLine(err)
			return c
		}
	}
	c.OK, c.Detail = true, fmt.Sprintf("%d B-tree indexes checked", len(idx))
	return c
}
