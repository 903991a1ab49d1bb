package report

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/go-pdf/fpdf"
)

// Fonts lists TrueType fonts the PDF can use, per language, first found
// wins. Vietnamese needs a font with its diacritics (DejaVu Sans, Debian
// fonts-dejavu-core); Chinese needs CJK glyphs (Droid Sans Fallback,
// Debian fonts-arphic-gbsn00lp, which also has Latin letters and digits). EINVAULT_REPORT_FONT overrides both.
var fontCandidates = map[string][]string{
	"latin": {
		"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
		"/usr/share/fonts/TTF/DejaVuSans.ttf",
		"/usr/share/fonts/dejavu/DejaVuSans.ttf",
	},
	"cjk": {
		"/usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf",
	},
}

// ErrNoFont is matched when no font for the report's language is found.
var ErrNoFont = errors.New("no TrueType font for the PDF report")

func findFont(lang string, getenv func(string) string) (string, error) {
	if getenv != nil {
		if f := getenv("EINVAULT_REPORT_FONT"); f != "" {
			return f, nil
		}
	}
	set := "latin"
	if lang == "zh" {
		set = "cjk"
	}
	for _, p := range fontCandidates[set] {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	pkg := "fonts-dejavu-core"
	if set == "cjk" {
		pkg = "fonts-arphic-gbsn00lp"
	}
	return "", fmt.Errorf("%w (%s text): install Debian's %s or set EINVAULT_REPORT_FONT to a .ttf file", ErrNoFont, lang, pkg)
}

type pdfCanvas struct {
	f      *fpdf.Fpdf
	ox, oy float64
	font   string
}

func hexRGB(c string) (int, int, int) {
	if len(c) != 7 {
		return 0, 0, 0
	}
	v, _ := strconv.ParseUint(c[1:], 16, 32)
	return int(v >> 16 & 0xff), int(v >> 8 & 0xff), int(v & 0xff)
}

func (p *pdfCanvas) Rect(x, y, w, h float64, fill string) {
	p.f.SetFillColor(hexRGB(fill))
	p.f.Rect(p.ox+x, p.oy+y, w, h, "F")
}

func (p *pdfCanvas) Line(x1, y1, x2, y2 float64, stroke string, width float64) {
	p.f.SetDrawColor(hexRGB(stroke))
	p.f.SetLineWidth(width)
	p.f.Line(p.ox+x1, p.oy+y1, p.ox+x2, p.oy+y2)
}

func (p *pdfCanvas) Polyline(pts [][2]float64, stroke string, width float64) {
	p.f.SetDrawColor(hexRGB(stroke))
	p.f.SetFillColor(hexRGB(stroke))
	p.f.SetLineWidth(width)
	for i := 1; i < len(pts); i++ {
		p.f.Line(p.ox+pts[i-1][0], p.oy+pts[i-1][1], p.ox+pts[i][0], p.oy+pts[i][1])
	}
	for _, pt := range pts {
		p.f.Circle(p.ox+pt[0], p.oy+pt[1], 1.6, "F")
	}
}

func (p *pdfCanvas) Text(x, y, size float64, s, anchor, color string) {
	p.f.SetFont(p.font, "", size)
	p.f.SetTextColor(hexRGB(color))
	w := p.f.GetStringWidth(s)
	switch anchor {
	case "middle":
		x -= w / 2
	case "end":
		x -= w
	}
	p.f.Text(p.ox+x, p.oy+y, s)
}

// PDF renders the report as an A4 PDF with the same content and charts
// as the HTML page. getenv is used for EINVAULT_REPORT_FONT.
func PDF(m *Month, lang string, getenv func(string) string) ([]byte, error) {
	fontFile, err := findFont(lang, getenv)
	if err != nil {
		return nil, err
	}
	ttf, err := os.ReadFile(fontFile)
	if err != nil {
		return nil, fmt.Errorf("read report font: %w", err)
	}
	d := build(m, lang)
	f := fpdf.New("P", "pt", "A4", "")
	f.SetCreator("einvault", true)
	f.SetTitle(d.title, true)
	f.SetCompression(true)
	f.AddUTF8FontFromBytes("body", "", ttf)
	if f.Err() {
		return nil, fmt.Errorf("load report font %s: %w", fontFile, f.Error())
	}
	const margin = 42.0
	f.SetMargins(margin, margin, margin)
	f.SetAutoPageBreak(true, margin)
	f.AliasNbPages("{nb}")
	f.SetFooterFunc(func() {
		f.SetY(-28)
		f.SetFont("body", "", 7)
		f.SetTextColor(120, 120, 120)
		f.CellFormat(0, 10, fmt.Sprintf("%s · %d/{nb}", d.title, f.PageNo()), "", 0, "C", false, 0, "")
	})
	f.AddPage()
	pageW, pageH := f.GetPageSize()
	contentW := pageW - 2*margin
	f.SetFont("body", "", 17)
	f.SetTextColor(34, 34, 34)
	f.MultiCell(contentW, 22, d.title, "", "L", false)
	f.SetFont("body", "", 8)
	f.SetTextColor(100, 100, 100)
	f.MultiCell(contentW, 11, d.subtitle, "", "L", false)
	f.Ln(6)
	ensure := func(h float64) {
		if f.GetY()+h > pageH-margin {
			f.AddPage()
		}
	}
	for _, bl := range d.blocks {
		if bl.heading != "" {
			need := 40.0
			if bl.chart != nil {
				need += bl.chart.h
			}
			ensure(need)
			f.Ln(6)
			f.SetFont("body", "", 12)
			f.SetTextColor(34, 34, 34)
			f.CellFormat(contentW, 16, bl.heading, "B", 1, "L", false, 0, "")
			f.Ln(4)
		}
		if bl.kv != nil {
			f.SetFont("body", "", 9)
			for _, kv := range bl.kv {
				ensure(13)
				f.SetTextColor(90, 90, 90)
				f.SetX(margin)
				f.CellFormat(contentW*0.45, 13, kv[0], "", 0, "L", false, 0, "")
				f.SetTextColor(20, 20, 20)
				f.MultiCell(contentW*0.55, 13, kv[1], "", "L", false)
			}
		}
		if bl.para != "" {
			f.SetFont("body", "", 9)
			f.SetTextColor(60, 60, 60)
			f.MultiCell(contentW, 12, bl.para, "", "L", false)
		}
		if ch := bl.chart; ch != nil {
			ensure(ch.h + 6)
			y := f.GetY()
			ch.draw(&pdfCanvas{f: f, ox: margin, oy: y, font: "body"}, contentW, ch.h)
			f.SetY(y + ch.h + 6)
		}
		if t := bl.table; t != nil {
			pdfTable(f, t, contentW, ensure)
		}
	}
	if f.Err() {
		return nil, fmt.Errorf("write PDF report: %w", f.Error())
	}
	var buf bytes.Buffer
	if err := f.Output(&buf); err != nil {
		return nil, fmt.Errorf("write PDF report: %w", err)
	}
	return buf.Bytes(), nil
}

func pdfTable(f *fpdf.Fpdf, t *table, width float64, ensure func(float64)) {
	total := 0.0
	for _, w := range t.widths {
		total += w
	}
	cols := make([]float64, len(t.head))
	for i := range cols {
		if i < len(t.widths) && total > 0 {
			cols[i] = width * t.widths[i] / total
		} else {
			cols[i] = width / float64(len(cols))
		}
	}
	const lh = 11.0
	row := func(cells []string, colors []string, header bool) {
		f.SetFont("body", "", 7.5)
		// Height: the tallest wrapped cell.
		lines := 1
		for i, c := range cells {
			if n := len(f.SplitText(c, cols[i]-4)); n > lines {
				lines = n
			}
		}
		h := float64(lines)*lh + 2
		ensure(h)
		x, y := f.GetX(), f.GetY()
		for i, c := range cells {
			if header {
				f.SetFillColor(240, 240, 240)
				f.Rect(x, y, cols[i], h, "F")
			}
			f.SetDrawColor(210, 210, 210)
			f.SetLineWidth(0.4)
			f.Rect(x, y, cols[i], h, "D")
			f.SetTextColor(34, 34, 34)
			if i < len(colors) && colors[i] != "" {
				f.SetTextColor(hexRGB(colors[i]))
			}
			f.SetXY(x+2, y+1)
			f.MultiCell(cols[i]-4, lh, c, "", "L", false)
			x += cols[i]
		}
		f.SetXY(f.GetX(), y+h)
		f.SetX(x - width)
	}
	row(t.head, nil, true)
	for i, r := range t.rows {
		var colors []string
		if i < len(t.colors) {
			colors = t.colors[i]
		}
		row(r, colors, false)
	}
	f.Ln(4)
}
