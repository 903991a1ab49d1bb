package catalog

import (
	"context"
	"fmt"
	"testing"

	"github.com/einvault/einvault/internal/invoice"
	"github.com/einvault/einvault/internal/testsvc"
)

func reconcileEntries() []Located {
	mk := func(num, date, total string) Located {
		e := Entry{Invoice: invoice.Invoice{SellerTaxCode: "0105987432-999", Form: "1", Series: "C21TAQ", Number: num, IssueDate: date, Total: total}}
		e.Path = "/srv/inv/" + num + ".xml"
		return Located{Entry: e, Path: e.Path}
	}
	return []Located{mk("1", "2021-03-01", "1000.50"), mk("2", "2021-03-02", "2000"), mk("3", "2021-03-03", "3000"), mk("5", "2021-03-05", "5000")}
}

// checkReconcile loads rows into a real database and reconciles them
// with reconcileEntries: row 4 has no file, file 5 no row, row 2 a
// different total, row 3 a different date; 00000001 matches 1.
func checkReconcile(t *testing.T, dsn string, exec func(string)) {
	t.Helper()
	exec(`CREATE TABLE hoa_don (mst VARCHAR(20), mau VARCHAR(5), ky_hieu VARCHAR(10), so VARCHAR(10), ngay DATE, tong_tien DECIMAL(18,2))`)
	exec(`INSERT INTO hoa_don VALUES ('0105987432-999','1','C21TAQ','00000001','2021-03-01',1000.50),
		('0105987432-999','1','C21TAQ','2','2021-03-02',2000.01), ('0105987432-999','1','C21TAQ','3','2021-04-03',3000),
		('0105987432-999','1','C21TAQ','4','2021-03-04',4000)`)
	db, err := OpenDB(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := ReadRows(context.Background(), db, `SELECT mst AS seller_tax_code, mau AS form, ky_hieu AS series, so AS number, ngay AS issue_date, tong_tien AS total FROM hoa_don`)
	if err != nil {
		t.Fatal(err)
	}
	rep := Reconcile(rows, reconcileEntries(), nil)
	got := fmt.Sprintf("rows=%d matched=%d nofile=%v norow=%d mism=%v", rep.Rows, rep.Matched, len(rep.RowsWithoutFile), len(rep.FilesWithoutRow), len(rep.Mismatches))
	if got != "rows=4 matched=3 nofile=1 norow=1 mism=2" || rep.RowsWithoutFile[0].Number != "4" || rep.FilesWithoutRow[0].Entry.Number != "5" {
		t.Fatalf("%s: %+v", got, rep)
	}
	fields := map[string]bool{}
	for _, m := range rep.Mismatches {
		fields[m.Key+" "+m.Field] = true
	}
	if !fields["0105987432-999/1/C21TAQ/2 total"] || !fields["0105987432-999/1/C21TAQ/3 issue_date"] {
		t.Fatalf("mismatches %+v", rep.Mismatches)
	}
	if _, err := ReadRows(context.Background(), db, `SELECT mst FROM hoa_don`); err == nil {
		t.Fatal("a query without the number column was accepted")
	}
}

func TestReconcilePostgres(t *testing.T) {
	p := testsvc.StartPostgres(t, testsvc.PGOptions{})
	p.Exec(t, "postgres", "CREATE DATABASE einvoice")
	checkReconcile(t, p.DSN("einvoice"), func(q string) { p.Exec(t, "einvoice", q) })
}

func TestReconcileMariaDB(t *testing.T) {
	m := testsvc.StartMariaDB(t)
	m.Exec(t, "CREATE DATABASE einvoice")
	checkReconcile(t, m.URL("einvoice"), func(q string) { m.Exec(t, "USE einvoice; "+q) })
}
