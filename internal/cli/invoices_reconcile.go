package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/einvault/einvault/internal/catalog"
	"github.com/spf13/cobra"
)

type reconcileOptions struct {
	dsn, query, snapshot, dir string
}

func newInvoicesReconcileCmd(g *Globals) *cobra.Command {
	var o reconcileOptions
	cmd := &cobra.Command{
		Use:   "reconcile --db DSN --query SQL [--snapshot ID | --dir DIR]",
		Short: "Compare the invoice database with the invoice files",
		Long: `Run --query against the invoice database and compare its rows with the
invoices of a snapshot (the newest with a catalog by default) or of the files
under --dir: rows without a file, files without a row, and rows whose issue
date, total or currency differ from the file. With imported status records
('invoices import-status') also invoices the tax authority has that the
files or the database lack, and files of a series on record that the
authority does not list.

The query names its columns (case-insensitive):
  seller_tax_code  seller's tax code (required)
  number           invoice number (required; 11 matches 00000011)
  form, series     compared when present; without them rows match by seller and number
  issue_date       YYYY-MM-DD (a date or timestamp column works)
  total            amount payable, compared exactly as a decimal
  currency         compared when both sides have one

DSN: postgres://user:pass@host:port/db, mysql://user:pass@host:port/db
(MySQL, MariaDB), sqlite:/path/file.db. The database is only read.
Exit codes: 0 the database and the files agree; 5 differences were found
(listed, and "clean": false in --json): reconciliation is a verification of
the backed-up invoices against the database of record, and a failed
verification is exit code 5 as for 'check' and 'invoices verify', so a
scheduled run alerts; 1 the query or the repository could not be read.`,
		Example: `  einvault invoices reconcile --db 'postgres://ro@127.0.0.1/einvoice' \
    --query 'SELECT mst AS seller_tax_code, mau AS form, ky_hieu AS series, so AS number, ngay AS issue_date, tong_tien AS total FROM hoa_don'
  einvault invoices reconcile --db sqlite:/var/lib/app/inv.db --query 'SELECT * FROM v_invoices' --dir /srv/invoices --json`,
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReconcile(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dsn, "db", "", "database to read (required)")
	f.StringVar(&o.query, "query", "", "SQL returning one row per invoice (required; column names above)")
	f.StringVar(&o.snapshot, "snapshot", "", "compare with this snapshot (default: newest with a catalog)")
	f.StringVar(&o.dir, "dir", "", "compare with the invoice files under this directory instead of a snapshot")
	return cmd
}

func runReconcile(ctx context.Context, g *Globals, o reconcileOptions) error {
	switch {
	case o.dsn == "" || o.query == "":
		return usageError("give --db DSN and --query SQL")
	case o.dir != "" && o.snapshot != "":
		return usageError("--snapshot and --dir exclude each other")
	}
	db, err := catalog.OpenDB(o.dsn)
	if err != nil {
		return usageError("%v", err)
	}
	defer db.Close()
	rows, err := catalog.ReadRows(ctx, db, o.query)
	if err != nil {
		return err
	}
	cs, err := openCatalog(ctx, g)
	if err != nil {
		return err
	}
	defer cs.Close()
	c := cs.cache
	var files []catalog.Located
	source := o.dir
	if o.dir != "" {
		if files, err = scanInvoiceDir(ctx, g, o.dir); err != nil {
			return err
		}
	} else {
		s, err := c.ResolveSnapshot(ctx, o.snapshot)
		if err != nil {
			return WithExit(ExitError, err)
		}
		source = "snapshot " + s.ID
		if files, err = c.Entries(ctx, s.ID); err != nil {
			return err
		}
	}
	status, err := c.StatusRecords(ctx)
	if err != nil {
		return err
	}
	rep := catalog.Reconcile(rows, files, status)
	if g.JSON {
		out := make([]map[string]string, 0, len(rep.FilesWithoutRow))
		for _, f := range rep.FilesWithoutRow {
			out = append(out, map[string]string{"key": f.Entry.Key(), "path": f.Path, "content_id": f.Entry.ContentID,
				"issue_date": f.Entry.IssueDate, "total": f.Entry.Total})
		}
		nz := func(v []catalog.DBRow) []catalog.DBRow {
			if v == nil {
				return []catalog.DBRow{}
			}
			return v
		}
		mm := rep.Mismatches
		if mm == nil {
			mm = []catalog.Mismatch{}
		}
		if err := g.PrintJSON(map[string]any{"source": source, "rows": rep.Rows, "invoices": rep.Files, "matched": rep.Matched,
			"clean": rep.Clean(), "rows_without_file": nz(rep.RowsWithoutFile), "files_without_row": out, "mismatches": mm,
			"authority_without_file": rep.AuthorityWithoutFile, "authority_without_row": rep.AuthorityWithoutRow,
			"files_not_on_record": rep.FilesNotOnRecord}); err != nil {
			return err
		}
		return reconcileExit(rep)
	}
	for _, x := range rep.RowsWithoutFile {
		g.Printf("row without file:  %s/%s/%s/%s  %s  %s\n", x.Seller, x.Form, x.Series, x.Number, orDash(x.IssueDate), orDash(x.Total))
	}
	for _, f := range rep.FilesWithoutRow {
		g.Printf("file without row:  %s  %s\n", f.Entry.Key(), f.Path)
	}
	for _, m := range rep.Mismatches {
		g.Printf("mismatch:          %s  %s: database %q, file %q  (%s)\n", m.Key, m.Field, m.DB, m.File, m.Path)
	}
	for _, s := range rep.AuthorityWithoutFile {
		g.Printf("authority, no file: %s  %s (%s)\n", s.Key, s.Status, s.Source)
	}
	for _, s := range rep.AuthorityWithoutRow {
		g.Printf("authority, no row:  %s  %s (%s)\n", s.Key, s.Status, s.Source)
	}
	for _, k := range rep.FilesNotOnRecord {
		g.Printf("not on record:      %s\n", k)
	}
	verdict := "they agree"
	if !rep.Clean() {
		verdict = "differences listed above"
	}
	g.Printf("Reconciled %d row(s) with %d invoice(s) of %s: %d matched, %d row(s) without file, %d file(s) without row, %d mismatch(es); %s.\n",
		rep.Rows, rep.Files, source, rep.Matched, len(rep.RowsWithoutFile), len(rep.FilesWithoutRow), len(rep.Mismatches), verdict)
	return reconcileExit(rep)
}

// reconcileExit is exit code 5 when the reconciliation found differences.
func reconcileExit(rep *catalog.ReconcileReport) error {
	if rep.Clean() {
		return nil
	}
	return WithExit(ExitDamaged, fmt.Errorf("reconciliation found differences: %d row(s) without file, %d file(s) without row, %d mismatch(es), %d authority record(s) without file, %d without row, %d file(s) not on record; fix the database or restore the missing files ('einvault invoices restore')",
		len(rep.RowsWithoutFile), len(rep.FilesWithoutRow), len(rep.Mismatches), len(rep.AuthorityWithoutFile), len(rep.AuthorityWithoutRow), len(rep.FilesNotOnRecord)))
}

// scanInvoiceDir recognises the invoices in the files under dir.
func scanInvoiceDir(ctx context.Context, g *Globals, dir string) ([]catalog.Located, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	var out []catalog.Located
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			g.Warnf("warning: %v\n", err)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !d.Type().IsRegular() || strings.HasSuffix(strings.ToLower(p), ".pdf") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			g.Warnf("warning: %v\n", err)
			return nil
		}
		if !catalog.Candidate(data) {
			return nil
		}
		invs, err := recognizeInvoices(ctx, filepath.Base(p), data)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			g.Warnf("warning: %s: %v\n", p, err)
			return nil
		}
		cid := catalog.ContentID(data)
		for _, inv := range invs {
			e := catalog.Entry{Invoice: inv, ContentID: cid, File: catalog.File{Path: p, Size: uint64(len(data))}}
			out = append(out, catalog.Located{Entry: e, Path: p})
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usageError("--dir %s: no such directory", dir)
	}
	return out, nil
}
