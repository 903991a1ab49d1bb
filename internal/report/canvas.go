package report

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// canvas is what a chart draws on: an SVG document for the HTML report,
// a region of a PDF page for the PDF one. Coordinates are in points from
// the chart's top-left corner.
type canvas interface {
	Rect(x, y, w, h float64, fill string)
	Line(x1, y1, x2, y2 float64, stroke string, width float64)
	Polyline(pts [][2]float64, stroke string, width float64)
	Text(x, y, size float64, s, anchor, color string) // anchor: start, middle, end
}

// Colours of the charts (also used by tables).
const (
	colOK       = "#2e7d32"
	colDegraded = "#f9a825"
	colFailed   = "#c62828"
	colAxis     = "#555555"
	colGrid     = "#dddddd"
	colSeries   = "#1565c0"
	colSeries2  = "#6a1b9a"
	colText     = "#222222"
)

type svgCanvas struct {
	b    strings.Builder
	w, h float64
}

func newSVG(w, h float64) *svgCanvas {
	c := &svgCanvas{w: w, h: h}
	fmt.Fprintf(&c.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="DejaVu Sans, Arial, sans-serif">`, w, h, w, h)
	return c
}

func (c *svgCanvas) Rect(x, y, w, h float64, fill string) {
	fmt.Fprintf(&c.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x, y, w, h, fill)
}

func (c *svgCanvas) Line(x1, y1, x2, y2 float64, stroke string, width float64) {
	fmt.Fprintf(&c.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.1f"/>`, x1, y1, x2, y2, stroke, width)
}

func (c *svgCanvas) Polyline(pts [][2]float64, stroke string, width float64) {
	var s strings.Builder
	for _, p := range pts {
		fmt.Fprintf(&s, "%.1f,%.1f ", p[0], p[1])
	}
	fmt.Fprintf(&c.b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="%.1f"/>`, strings.TrimSpace(s.String()), stroke, width)
	for _, p := range pts {
		fmt.Fprintf(&c.b, `<circle cx="%.1f" cy="%.1f" r="2" fill="%s"/>`, p[0], p[1], stroke)
	}
}

func (c *svgCanvas) Text(x, y, size float64, s, anchor, color string) {
	fmt.Fprintf(&c.b, `<text x="%.1f" y="%.1f" font-size="%.1f" text-anchor="%s" fill="%s">%s</text>`, x, y, size, anchor, color, html.EscapeString(s))
}

func (c *svgCanvas) String() string { return c.b.String() + "</svg>" }

// barChart draws labelled vertical bars; stacked segments per bar.
type barSeg struct {
	Value float64
	Color string
}

type bar struct {
	Label string
	Segs  []barSeg
	Note  string // printed above the bar (e.g. "97%")
}

func drawBars(c canvas, w, h float64, title string, bars []bar, yMax float64, yFmt func(float64) string) {
	const left, bottom, top = 46.0, 34.0, 22.0
	c.Text(0, 12, 10, title, "start", colText)
	plotW, plotH := w-left-8, h-bottom-top
	if yMax <= 0 {
		for _, b := range bars {
			s := 0.0
			for _, g := range b.Segs {
				s += g.Value
			}
			yMax = math.Max(yMax, s)
		}
	}
	if yMax <= 0 {
		yMax = 1
	}
	yMax = niceCeil(yMax)
	for i := 0; i <= 4; i++ {
		v := yMax * float64(i) / 4
		y := top + plotH - plotH*float64(i)/4
		c.Line(left, y, left+plotW, y, colGrid, 0.5)
		c.Text(left-4, y+3, 7, yFmt(v), "end", colAxis)
	}
	c.Line(left, top+plotH, left+plotW, top+plotH, colAxis, 0.8)
	if len(bars) == 0 {
		c.Text(left+plotW/2, top+plotH/2, 9, "—", "middle", colAxis)
		return
	}
	slot := plotW / float64(len(bars))
	bw := math.Min(slot*0.6, 40)
	for i, b := range bars {
		x := left + slot*float64(i) + (slot-bw)/2
		y := top + plotH
		for _, g := range b.Segs {
			hh := plotH * g.Value / yMax
			y -= hh
			if hh > 0 {
				c.Rect(x, y, bw, hh, g.Color)
			}
		}
		if b.Note != "" {
			c.Text(x+bw/2, y-3, 7, b.Note, "middle", colText)
		}
		c.Text(x+bw/2, top+plotH+11, 7, truncate(b.Label, int(slot/4.2)), "middle", colAxis)
	}
}

// drawLines draws one or two series over the days of the month.
type series struct {
	Name   string
	Color  string
	Points []float64 // one per day; NaN = no data
}

func drawLines(c canvas, w, h float64, title string, ss []series, yFmt func(float64) string) {
	const left, bottom, top = 52.0, 30.0, 22.0
	c.Text(0, 12, 10, title, "start", colText)
	plotW, plotH := w-left-8, h-bottom-top
	yMax, n := 0.0, 0
	for _, s := range ss {
		n = max(n, len(s.Points))
		for _, v := range s.Points {
			if !math.IsNaN(v) {
				yMax = math.Max(yMax, v)
			}
		}
	}
	if yMax <= 0 {
		yMax = 1
	}
	yMax = niceCeil(yMax)
	for i := 0; i <= 4; i++ {
		v := yMax * float64(i) / 4
		y := top + plotH - plotH*float64(i)/4
		c.Line(left, y, left+plotW, y, colGrid, 0.5)
		c.Text(left-4, y+3, 7, yFmt(v), "end", colAxis)
	}
	c.Line(left, top+plotH, left+plotW, top+plotH, colAxis, 0.8)
	if n == 0 {
		return
	}
	step := plotW / float64(max(n-1, 1))
	for d := 0; d < n; d += 5 {
		c.Text(left+step*float64(d), top+plotH+11, 7, fmt.Sprint(d+1), "middle", colAxis)
	}
	lx := left + 4
	for _, s := range ss {
		var pts [][2]float64
		flush := func() {
			if len(pts) > 0 {
				c.Polyline(pts, s.Color, 1.2)
			}
			pts = nil
		}
		for d, v := range s.Points {
			if math.IsNaN(v) {
				flush()
				continue
			}
			pts = append(pts, [2]float64{left + step*float64(d), top + plotH - plotH*v/yMax})
		}
		flush()
		c.Rect(lx, h-9, 8, 3, s.Color)
		c.Text(lx+11, h-6, 7, s.Name, "start", colText)
		lx += 18 + textWidth(s.Name, 7)
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func truncate(s string, n int) string {
	r := []rune(s)
	if n < 4 || len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// textWidth estimates the width of s at size: CJK glyphs are square,
// Latin ones about half as wide.
func textWidth(s string, size float64) float64 {
	w := 0.0
	for _, r := range s {
		if r >= 0x2E80 {
			w += size
		} else {
			w += size * 0.55
		}
	}
	return w
}
