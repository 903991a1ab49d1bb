package report

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"
)

// A document is built once and rendered to HTML or PDF, so both show the
// same content.
type block struct {
	heading string
	kv      [][2]string
	table   *table
	chart   *chart
	para    string
}

type table struct {
	head   []string
	rows   [][]string
	colors [][]string // optional per-cell text colour
	widths []float64  // relative column widths
}

type chart struct {
	w, h float64
	draw func(c canvas, w, h float64)
}

type document struct {
	title, subtitle string
	blocks          []block
}

func fmtTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format("2006-01-02 15:04")
}

func resultColor(r string) string {
	switch r {
	case ResultOK:
		return colOK
	case ResultDegraded:
		return colDegraded
	}
	return colFailed
}

func build(m *Month, lang string) document {
	s := Summarize(m)
	loc := s.From.Location()
	L := func(k string) string { return label(lang, k) }
	d := document{
		title:    fmt.Sprintf("%s — %s", L("title"), s.From.Format("2006-01")),
		subtitle: fmt.Sprintf("%s: %s · %s: %s", L("repository"), m.Repo, L("generated"), fmtTime(m.Generated, loc)),
	}
	if m.Org != "" {
		d.subtitle = m.Org + " · " + d.subtitle
	}
	mttr := s.MTTR
	if mttr == "" {
		mttr = "—"
	}
	d.blocks = append(d.blocks, block{heading: L("overview"), kv: [][2]string{
		{L("runs"), fmt.Sprint(s.TotalRuns)},
		{L("success"), fmt.Sprintf("%.1f%%", 100*s.SuccessRate)},
		{L("added"), bytesHuman(float64(s.BytesAdded))},
		{L("snapshots"), fmt.Sprint(m.Snapshots)},
		{L("unresolved"), fmt.Sprint(s.Unresolved)},
		{L("mttr"), mttr},
	}})

	// Success rate per job: stacked bars of ok/degraded/failed runs.
	var bars []bar
	for _, j := range s.Jobs {
		pct := func(n int) float64 { return 100 * float64(n) / float64(j.Runs) }
		bars = append(bars, bar{Label: j.Job, Note: fmt.Sprintf("%.1f%%", 100*j.SuccessRate),
			Segs: []barSeg{{pct(j.OK), colOK}, {pct(j.Degraded), colDegraded}, {pct(j.Failed), colFailed}}})
	}
	d.blocks = append(d.blocks, block{heading: L("jobs"), chart: &chart{w: 520, h: 170, draw: func(c canvas, w, h float64) {
		drawBars(c, w, h, fmt.Sprintf("%s / %s / %s (%%)", L("ok"), L("degraded"), L("failed")), bars, 100, func(v float64) string { return fmt.Sprintf("%.0f%%", v) })
	}}})
	jt := &table{head: []string{L("job"), L("runs"), L("ok"), L("degraded"), L("failed"), L("success")}, widths: []float64{3, 1, 1, 1, 1, 1.2}}
	for _, j := range s.Jobs {
		jt.rows = append(jt.rows, []string{j.Job, fmt.Sprint(j.Runs), fmt.Sprint(j.OK), fmt.Sprint(j.Degraded), fmt.Sprint(j.Failed), fmt.Sprintf("%.1f%%", 100*j.SuccessRate)})
		c := colOK
		if j.SuccessRate < 0.99 {
			c = colDegraded
		}
		if j.SuccessRate < 0.9 {
			c = colFailed
		}
		jt.colors = append(jt.colors, []string{"", "", "", "", "", c})
	}
	d.blocks = append(d.blocks, block{table: jt})

	mib := func(xs []float64) []float64 {
		out := make([]float64, len(xs))
		for i, x := range xs {
			out[i] = x / (1 << 20)
		}
		return out
	}
	d.blocks = append(d.blocks, block{heading: L("sizes"), chart: &chart{w: 520, h: 170, draw: func(c canvas, w, h float64) {
		drawLines(c, w, h, "MiB", []series{{L("read"), colSeries2, mib(s.DailyRead)}, {L("stored"), colSeries, mib(s.DailyAdded)}},
			func(v float64) string { return trimFloat(v) })
	}}})
	d.blocks = append(d.blocks, block{heading: L("durations"), chart: &chart{w: 520, h: 150, draw: func(c canvas, w, h float64) {
		drawLines(c, w, h, "s", []series{{L("durations"), colSeries, s.DailyDuration}}, func(v float64) string { return trimFloat(v) })
	}}})

	ct := &table{head: []string{L("copy"), L("kind"), L("reachable"), L("last_sync"), L("last_verify"), L("errors"), L("behind")}, widths: []float64{1.5, 1, 1, 1.8, 1.8, .8, 1}}
	for _, c := range m.Copies {
		reach, rc := L("yes"), colOK
		if !c.Reachable {
			reach, rc = L("no"), colFailed
		}
		ls, lv := fmtTime(c.LastSync, loc), fmtTime(c.LastVerify, loc)
		if ls == "" {
			ls = L("never")
		}
		if lv == "" {
			lv = L("never")
		}
		ec := colOK
		if c.Errors > 0 {
			ec = colFailed
		}
		ct.rows = append(ct.rows, []string{c.Name, c.Kind, reach, ls, lv, fmt.Sprint(c.Errors), fmt.Sprint(c.Behind)})
		ct.colors = append(ct.colors, []string{"", "", rc, "", "", ec, ""})
	}
	cb := block{heading: L("copies"), table: ct}
	if len(m.Copies) == 0 {
		cb = block{heading: L("copies"), para: L("none")}
	}
	d.blocks = append(d.blocks, cb)
	if v := m.Verdict; v != nil {
		word := L("verdict_not_met")
		if v.Met {
			word = L("verdict_met")
		}
		kv := [][2]string{{L("verdict"), word}}
		for _, c := range v.Criteria {
			mark := L("criterion_met")
			if !c.Met {
				mark = L("criterion_missing")
			}
			kv = append(kv, [2]string{L("rule_" + c.Key), fmt.Sprintf("%d / %d · %s", c.Have, c.Want, mark)})
		}
		d.blocks = append(d.blocks, block{kv: kv})
	}

	if len(m.Recovery) == 0 {
		d.blocks = append(d.blocks, block{heading: L("recovery"), para: L("none")})
	} else {
		rt := &table{head: []string{L("time"), L("op"), L("what"), L("result"), L("rto"), L("rpo")}, widths: []float64{1.6, 1, 2.4, 1, 1.4, 1.4}}
		for _, r := range m.Recovery {
			rt.rows = append(rt.rows, []string{fmtTime(r.Time, loc), word(lang, "op_", r.Op), r.What, word(lang, "", r.Result), withTarget(r.RTO, r.TargetRTO), withTarget(r.RPO, r.TargetRPO)})
			rtoC, rpoC := "", ""
			if r.TargetRTO > 0 && r.RTO > r.TargetRTO {
				rtoC = colFailed
			}
			if r.TargetRPO > 0 && r.RPO > r.TargetRPO {
				rpoC = colFailed
			}
			rt.colors = append(rt.colors, []string{"", "", "", resultColor(r.Result), rtoC, rpoC})
		}
		d.blocks = append(d.blocks, block{heading: L("recovery"), table: rt})
	}

	var ibars []bar
	for _, ic := range m.Invoices {
		ibars = append(ibars, bar{Label: ic.Month, Note: fmt.Sprint(ic.Count), Segs: []barSeg{{float64(ic.Count), colSeries}}})
	}
	d.blocks = append(d.blocks, block{heading: L("invoices"), chart: &chart{w: 520, h: 160, draw: func(c canvas, w, h float64) {
		drawBars(c, w, h, "", ibars, 0, func(v float64) string { return trimFloat(v) })
	}}})

	if len(s.Failures) == 0 {
		d.blocks = append(d.blocks, block{heading: L("failures"), para: L("none")})
	} else {
		ft := &table{head: []string{L("time"), L("job"), L("result"), L("error"), L("resolved")}, widths: []float64{1.5, 1.4, .9, 3.2, 2}}
		for _, f := range s.Failures {
			res, rc := L("not_resolved"), colFailed
			if f.ResolvedAt != nil {
				res, rc = fmt.Sprintf("%s (%s %s)", fmtTime(*f.ResolvedAt, loc), L("after"), f.TimeToFix), colOK
			}
			ft.rows = append(ft.rows, []string{fmtTime(f.Run.Start, loc), f.Run.Job, word(lang, "", f.Run.Result), f.Run.Error, res})
			ft.colors = append(ft.colors, []string{"", "", resultColor(f.Run.Result), "", rc})
		}
		d.blocks = append(d.blocks, block{heading: L("failures"), table: ft})
	}
	return d
}

func withTarget(v, target time.Duration) string {
	if v == 0 && target == 0 {
		return "—"
	}
	if target == 0 {
		return roundDur(v)
	}
	return fmt.Sprintf("%s (%s)", roundDur(v), roundDur(target))
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

// HTML renders the report as one self-contained HTML page.
func HTML(m *Month, lang string) []byte {
	d := build(m, lang)
	var b strings.Builder
	fmt.Fprintf(&b, `<!DOCTYPE html>
<html lang="%s"><head><meta charset="utf-8"><title>%s</title>
<style>
body{font-family:"DejaVu Sans",Arial,sans-serif;color:#222;max-width:820px;margin:24px auto;padding:0 16px}
h1{font-size:22px;margin-bottom:2px}.sub{color:#666;font-size:12px;margin-bottom:18px}
h2{font-size:16px;border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:26px}
table{border-collapse:collapse;width:100%%;font-size:12px}th,td{border:1px solid #ddd;padding:4px 6px;text-align:left}
th{background:#f3f3f3}dl{display:grid;grid-template-columns:max-content auto;gap:4px 16px;font-size:13px}dt{color:#555}dd{margin:0;font-weight:bold}
</style></head><body>
<h1>%s</h1><div class="sub">%s</div>
`, lang, html.EscapeString(d.title), html.EscapeString(d.title), html.EscapeString(d.subtitle))
	for _, bl := range d.blocks {
		if bl.heading != "" {
			fmt.Fprintf(&b, "<h2>%s</h2>\n", html.EscapeString(bl.heading))
		}
		if bl.kv != nil {
			b.WriteString("<dl>")
			for _, kv := range bl.kv {
				fmt.Fprintf(&b, "<dt>%s</dt><dd>%s</dd>", html.EscapeString(kv[0]), html.EscapeString(kv[1]))
			}
			b.WriteString("</dl>\n")
		}
		if bl.para != "" {
			fmt.Fprintf(&b, "<p>%s</p>\n", html.EscapeString(bl.para))
		}
		if bl.chart != nil {
			c := newSVG(bl.chart.w, bl.chart.h)
			bl.chart.draw(c, bl.chart.w, bl.chart.h)
			b.WriteString(c.String() + "\n")
		}
		if t := bl.table; t != nil {
			b.WriteString("<table><tr>")
			for _, h := range t.head {
				fmt.Fprintf(&b, "<th>%s</th>", html.EscapeString(h))
			}
			b.WriteString("</tr>\n")
			for i, r := range t.rows {
				b.WriteString("<tr>")
				for j, cell := range r {
					style := ""
					if i < len(t.colors) && j < len(t.colors[i]) && t.colors[i][j] != "" {
						style = fmt.Sprintf(` style="color:%s;font-weight:bold"`, t.colors[i][j])
					}
					fmt.Fprintf(&b, "<td%s>%s</td>", style, html.EscapeString(cell))
				}
				b.WriteString("</tr>\n")
			}
			b.WriteString("</table>\n")
		}
	}
	b.WriteString("</body></html>\n")
	return []byte(b.String())
}
