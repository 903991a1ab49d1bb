package cli

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/einvault/einvault/internal/journal"
)

// TestMonthlyReportShowsDrills: a journaled drill appears in the
// report's recovery table with its measured RTO and RPO and the targets.
func TestMonthlyReportShowsDrills(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	g := &Globals{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" },
		StateDir: filepath.Join(dir, "state"), log: log}
	j, err := journal.Open(ctx, g.StateDir, journal.Options{Logger: log, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 10, 12, 3, 0, 0, 0, time.UTC)
	if _, err := j.Record(ctx, journal.Entry{Op: "drill", Job: "invoices-hourly", Start: at, End: at.Add(20 * time.Minute), Result: journal.ResultDegraded,
		Snapshot: "4f2a9c1e0000000000000000", RTO: 900, RPO: 1800, TargetRTO: 600, TargetRPO: 7200, ExitCode: 4}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	m, err := gatherMonth(ctx, g, at, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Recovery) != 1 {
		t.Fatalf("recovery rows: %+v", m.Recovery)
	}
	r := m.Recovery[0]
	if r.Op != "drill" || r.RTO != 15*time.Minute || r.RPO != 30*time.Minute || r.TargetRTO != 10*time.Minute || r.TargetRPO != 2*time.Hour ||
		!strings.Contains(r.What, "invoices-hourly") || !strings.Contains(r.What, "4f2a9c1e") {
		t.Fatalf("drill row %+v", r)
	}
}
