package corpus

import (
	"fmt"
	"slices"
)

const (
	minPDF = 30 * 1024
	maxPDF = 120 * 1024
)

// pdfSize draws a rendering size in [minPDF, maxPDF]: most invoices render
// to one page (30-40 KB), some to several.
func pdfSize(r *rng) int {
	const onePage = 40 * 1024
	if r.chance(0.85) {
		return r.between(minPDF, onePage)
	}
	u := r.float()
	return onePage + int(float64(maxPDF-onePage)*u*u)
}

const pdfTrailerFmt = "\nendstream\nendobj\n4 0 obj\n<< /Producer (einvault corpus) /Title (%s) /CreationDate (D:%s+07'00') >>\nendobj\ntrailer\n<< /Size 5 /Root 1 0 R /Info 4 0 R >>\nstartxref\n%d\n%%%%EOF\n"

// renderPDF appends a PDF-like file of exactly size bytes to buf: a real
// PDF header and trailer around an incompressible pseudo-random stream.
func renderPDF(buf []byte, r *rng, title, created string, size int) []byte {
	head := fmt.Sprintf("%%PDF-1.7\n%%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 1 >>\nendobj\n3 0 obj\n<< /Length %06d /Filter /FlateDecode >>\nstream\n", 0)
	tail := fmt.Sprintf(pdfTrailerFmt, title, created, size-64)
	body := size - len(head) - len(tail)
	if body < 0 {
		body = 0
	}
	head = fmt.Sprintf("%%PDF-1.7\n%%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 1 >>\nendobj\n3 0 obj\n<< /Length %06d /Filter /FlateDecode >>\nstream\n", body)
	buf = append(buf[:0], head...)
	start := len(buf)
	buf = slices.Grow(buf, body+len(tail))[:start+body]
	r.fill(buf[start:])
	return append(buf, tail...)
}
