package corpus

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The corpus spans two calendar years; invoice dates grow with the invoice
// index so that numbers rise with dates inside every series.
const (
	startYear = 2024
	spanDays  = 731 // 2024-01-01 .. 2025-12-31
)

var epoch = time.Date(startYear, 1, 1, 0, 0, 0, 0, time.UTC)

// planEntry is what must be decided in order for all invoices (the number
// inside a series depends on every earlier invoice); everything else about
// an invoice is derived from its own random stream.
type planEntry struct {
	seller uint8
	series uint8
	pdf    bool
	day    uint16 // days since epoch
	number uint32
}

func (p planEntry) date() time.Time { return epoch.AddDate(0, 0, int(p.day)) }

func (p planEntry) key() (mst, series string) {
	s := &sellers[p.seller]
	return s.mst, string(s.form) + seriesName(s.series[p.series], p.date().Year())
}

// relBase returns "2024/03/<MST>_<form><series>_<number>" without extension.
func (p planEntry) relBase() string {
	d := p.date()
	mst, ser := p.key()
	return fmt.Sprintf("%04d/%02d/%s_%s_%08d", d.Year(), int(d.Month()), mst, ser, p.number)
}

func makePlan(seed int64, files int, pdfRatio float64) []planEntry {
	r := newRNG(seed, streamPlan, 0)
	total := 0
	for i := range sellers {
		total += sellers[i].weight
	}
	counters := map[[3]int]uint32{}
	plan := make([]planEntry, files)
	for i := range plan {
		w := r.intn(total)
		si := 0
		for w >= sellers[si].weight {
			w -= sellers[si].weight
			si++
		}
		p := planEntry{seller: uint8(si)}
		p.series = uint8(r.intn(len(sellers[si].series)))
		p.day = uint16(int64(i) * spanDays / int64(files))
		p.pdf = r.chance(pdfRatio)
		k := [3]int{si, int(p.series), p.date().Year()}
		counters[k]++
		p.number = counters[k]
		plan[i] = p
	}
	return plan
}

type line struct {
	note        bool // TChat 4: a note line without amounts
	code, name  string
	unit        string
	qty         int64 // hundredths
	price       int64
	discountPct int64
	discount    int64
	amount      int64
	rate        string
	tax         int64
}

type rateTotal struct {
	rate        string
	amount, tax int64
}

type invoice struct {
	plan       planEntry
	s          *seller
	form       string // KHMSHDon
	series     string // KHHDon
	date       time.Time
	signed     time.Time
	buyer      buyer
	payment    string
	lines      []line
	rates      []rateTotal
	net, tax   int64
	total      int64
	words      string
	mccqt      string
	dlID       string
	cqtSigned  bool
	secretCode string
	paid       bool
	sigSeed    uint64
}

func ratePct(rate string) int64 {
	if strings.HasSuffix(rate, "%") {
		v, _ := strconv.ParseInt(strings.TrimSuffix(rate, "%"), 10, 64)
		return v
	}
	return 0
}

// makeInvoice derives one invoice from the plan entry and its random stream.
func makeInvoice(seed int64, r *rng, p planEntry, nBuyers int) *invoice {
	s := &sellers[p.seller]
	inv := &invoice{plan: p, s: s, form: string(s.form), date: p.date()}
	inv.series = seriesName(s.series[p.series], inv.date.Year())
	inv.signed = inv.date.Add(time.Duration(r.between(7*3600, 21*3600)) * time.Second)
	// a few large customers buy often
	bid := r.intn(nBuyers)
	if r.chance(0.4) {
		bid = r.intn(min(nBuyers, 20))
	}
	inv.buyer = makeBuyer(seed, bid)
	inv.payment = pick(r, s.payment)
	switch s.dlID {
	case "guid":
		inv.dlID = strings.ToLower(r.hex(8) + "-" + r.hex(4) + "-4" + r.hex(3) + "-a" + r.hex(3) + "-" + r.hex(12))
	default:
		inv.dlID = s.dlID
	}
	if s.series[p.series].kind == 'C' {
		inv.mccqt = "00" + r.hex(32)
		inv.cqtSigned = r.chance(0.3)
	}
	if s.verbose {
		inv.secretCode = r.hex(15)
		inv.paid = r.chance(0.8)
	}
	inv.sigSeed = r.u64()

	n := 1
	switch u := r.float(); {
	case u < 0.45:
		n = 1
	case u < 0.75:
		n = r.between(2, 3)
	case u < 0.93:
		n = r.between(4, 8)
	default:
		n = r.between(9, 25)
	}
	n = min(n, s.maxLines)
	for i := 0; i < n; i++ {
		pr := pick(r, s.products)
		ln := line{code: fmt.Sprintf("%s%04d", strings.ToUpper(slug(pr.unit))[:1], r.intn(10000)), name: pr.name, unit: pr.unit, rate: pr.rate}
		ln.price = pr.lo
		if pr.hi > pr.lo {
			ln.price = pr.lo + int64(r.intn(int(pr.hi-pr.lo+1)))
			if ln.price > 100000 {
				ln.price = ln.price / 1000 * 1000
			}
		}
		switch {
		case pr.fracQ:
			ln.qty = int64(r.between(100, 50000))
		case ln.price < 50000:
			ln.qty = int64(r.between(1, 200)) * 100
		case ln.price < 1000000:
			ln.qty = int64(r.between(1, 20)) * 100
		default:
			ln.qty = int64(r.between(1, 3)) * 100
		}
		gross := (ln.qty*ln.price + 50) / 100
		if r.chance(0.08) {
			ln.discountPct = int64(pick(r, []int{2, 3, 5, 10}))
			ln.discount = (gross*ln.discountPct + 50) / 100
		}
		ln.amount = gross - ln.discount
		ln.tax = (ln.amount*ratePct(ln.rate) + 50) / 100
		inv.lines = append(inv.lines, ln)
		if s.products[0].name == productsElectronics[0].name && ln.price > 2000000 && r.chance(0.7) {
			inv.lines = append(inv.lines, line{note: true, name: "IMEI/Serial: " + r.hex(3) + r.digits(12)})
		}
	}
	inv.computeTotals()
	return inv
}

func (inv *invoice) computeTotals() {
	inv.rates, inv.net, inv.tax = nil, 0, 0
	for _, ln := range inv.lines {
		if ln.note {
			continue
		}
		inv.net += ln.amount
		inv.tax += ln.tax
		found := false
		for i := range inv.rates {
			if inv.rates[i].rate == ln.rate {
				inv.rates[i].amount += ln.amount
				inv.rates[i].tax += ln.tax
				found = true
			}
		}
		if !found {
			inv.rates = append(inv.rates, rateTotal{ln.rate, ln.amount, ln.tax})
		}
	}
	inv.total = inv.net + inv.tax
	inv.words = vndWords(inv.total)
}

// dropLines removes trailing lines (keeping at least one) to shrink the XML.
func (inv *invoice) dropLines() bool {
	n := len(inv.lines)
	if n <= 1 {
		return false
	}
	n = max(1, n*3/4)
	if inv.lines[n-1].note && n > 1 {
		n--
	}
	inv.lines = inv.lines[:n]
	inv.computeTotals()
	return true
}

// xw writes XML either compact (most vendors) or indented.
type xw struct {
	b      *bytes.Buffer
	indent bool
	depth  int
}

var xmlEsc = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func (w *xw) nl() {
	if w.indent {
		w.b.WriteByte('\n')
		for i := 0; i < w.depth; i++ {
			w.b.WriteString("  ")
		}
	}
}

func (w *xw) open(tag string, attrs ...string) {
	w.nl()
	w.b.WriteByte('<')
	w.b.WriteString(tag)
	for i := 0; i+1 < len(attrs); i += 2 {
		w.b.WriteString(" " + attrs[i] + `="` + attrs[i+1] + `"`)
	}
	w.b.WriteByte('>')
	w.depth++
}

func (w *xw) close(tag string) {
	w.depth--
	w.nl()
	w.b.WriteString("</" + tag + ">")
}

func (w *xw) leaf(tag, val string) {
	w.nl()
	if val == "" {
		w.b.WriteString("<" + tag + "/>")
		return
	}
	w.b.WriteString("<" + tag + ">")
	xmlEsc.WriteString(w.b, val)
	w.b.WriteString("</" + tag + ">")
}

func (w *xw) empty(tag string, attrs ...string) {
	w.nl()
	w.b.WriteByte('<')
	w.b.WriteString(tag)
	for i := 0; i+1 < len(attrs); i += 2 {
		w.b.WriteString(" " + attrs[i] + `="` + attrs[i+1] + `"`)
	}
	w.b.WriteString(" />")
}

func (w *xw) ttin(field, kind, val string) {
	w.open("TTin")
	w.leaf("TTruong", field)
	w.leaf("KDLieu", kind)
	w.leaf("DLieu", val)
	w.close("TTin")
}

func money(v int64, decimals bool) string {
	if decimals {
		return strconv.FormatInt(v, 10) + ".0000"
	}
	return strconv.FormatInt(v, 10)
}

func qtyString(q int64, decimals bool) string {
	if decimals {
		return fmt.Sprintf("%d.%02d00", q/100, q%100)
	}
	if q%100 == 0 {
		return strconv.FormatInt(q/100, 10)
	}
	s := fmt.Sprintf("%d.%02d", q/100, q%100)
	return strings.TrimSuffix(s, "0")
}

const (
	xmldsigNS = "http://www.w3.org/2000/09/xmldsig#"
	maxXML    = 12 * 1024
	minXML    = 3 * 1024
)

// renderXML writes the invoice as a Circular 78 HDon document into b.
func (inv *invoice) renderXML(b *bytes.Buffer, seed int64) {
	s := inv.s
	w := &xw{b: b, indent: s.indent}
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	w.open("HDon")
	w.open("DLHDon", "Id", inv.dlID)
	w.open("TTChung")
	w.leaf("PBan", s.pban)
	w.leaf("THDon", s.thdon)
	w.leaf("KHMSHDon", inv.form)
	w.leaf("KHHDon", inv.series)
	w.leaf("SHDon", strconv.Itoa(int(inv.plan.number)))
	w.leaf("NLap", inv.date.Format("2006-01-02"))
	w.leaf("DVTTe", "VND")
	w.leaf("TGia", "1")
	w.leaf("HTTToan", inv.payment)
	w.leaf("MSTTCGP", s.provider)
	if s.verbose {
		w.open("TTKhac")
		w.ttin("Trạng thái thanh toán", "string", map[bool]string{true: "Đã thanh toán", false: "Chưa thanh toán"}[inv.paid])
		w.ttin("Mã số bí mật", "string", inv.secretCode)
		w.ttin("Ghi chú hóa đơn", "string", "")
		w.close("TTKhac")
	}
	w.close("TTChung")
	w.open("NDHDon")
	w.open("NBan")
	w.leaf("Ten", s.name)
	w.leaf("MST", s.mst)
	w.leaf("DChi", s.addr)
	w.leaf("SDThoai", s.phone)
	w.leaf("DCTDTu", s.email)
	w.leaf("STKNHang", s.bankAcct)
	w.leaf("TNHang", s.bankName)
	if s.website != "" {
		w.leaf("Website", s.website)
	}
	w.close("NBan")
	bu := inv.buyer
	w.open("NMua")
	w.leaf("Ten", bu.name)
	w.leaf("MST", bu.mst)
	w.leaf("DChi", bu.addr)
	w.leaf("MKHang", bu.code)
	w.leaf("SDThoai", bu.phone)
	w.leaf("DCTDTu", bu.email)
	if bu.consumer {
		w.leaf("HVTNMHang", bu.name)
	} else {
		w.leaf("HVTNMHang", bu.contact)
	}
	w.leaf("STKNHang", bu.bankAcct)
	w.leaf("TNHang", bu.bankName)
	w.close("NMua")
	w.open("DSHHDVu")
	stt := 0
	for _, ln := range inv.lines {
		w.open("HHDVu")
		if ln.note {
			w.leaf("TChat", "4")
			w.leaf("MHHDVu", "")
			w.leaf("THHDVu", ln.name)
			w.close("HHDVu")
			continue
		}
		stt++
		w.leaf("TChat", "1")
		w.leaf("STT", strconv.Itoa(stt))
		w.leaf("MHHDVu", ln.code)
		w.leaf("THHDVu", ln.name)
		w.leaf("DVTinh", ln.unit)
		w.leaf("SLuong", qtyString(ln.qty, s.decimals))
		w.leaf("DGia", money(ln.price, s.decimals))
		w.leaf("TLCKhau", money(ln.discountPct, s.decimals))
		w.leaf("STCKhau", money(ln.discount, s.decimals))
		w.leaf("ThTien", money(ln.amount, s.decimals))
		w.leaf("TSuat", ln.rate)
		if s.verbose {
			w.leaf("TThue", money(ln.tax, false))
			w.open("TTKhac")
			w.ttin("Số lô", "string", "")
			w.ttin("Hạn dùng", "string", "")
			w.ttin("Thành tiền thanh toán của hàng hóa", "string", strconv.FormatInt(ln.amount+ln.tax, 10))
			w.ttin("Tiền thuế dòng (Tiền thuế GTGT)", "string", strconv.FormatInt(ln.tax, 10))
			w.close("TTKhac")
		}
		w.close("HHDVu")
	}
	w.close("DSHHDVu")
	w.open("TToan")
	w.open("THTTLTSuat")
	for _, rt := range inv.rates {
		w.open("LTSuat")
		w.leaf("TSuat", rt.rate)
		w.leaf("ThTien", money(rt.amount, s.decimals))
		w.leaf("TThue", money(rt.tax, s.decimals))
		w.close("LTSuat")
	}
	w.close("THTTLTSuat")
	w.leaf("TgTCThue", money(inv.net, s.decimals))
	w.leaf("TgTThue", money(inv.tax, s.decimals))
	w.leaf("TTCKTMai", money(0, s.decimals))
	w.leaf("TgTTTBSo", money(inv.total, s.decimals))
	w.leaf("TgTTTBChu", inv.words)
	w.close("TToan")
	w.close("NDHDon")
	w.close("DLHDon")
	if inv.mccqt != "" {
		w.nl()
		b.WriteString(`<MCCQT Id="Id-` + inv.mccqt[2:10] + `">` + inv.mccqt + `</MCCQT>`)
	}
	w.open("DSCKS")
	r := newRNG(seed, streamCert, inv.sigSeed)
	w.open("NBan")
	writeSignature(w, r, signatureParams{
		refID:   inv.dlID,
		subject: "OID.0.9.2342.19200300.100.1.1=MST:" + s.mst + ", CN=" + strings.ToUpper(s.name) + ", L=" + lastPart(s.addr) + ", C=VN",
		cert:    sellerCert(seed, int(inv.plan.seller)),
		sha256:  s.sha256,
		time:    inv.signed,
		objID:   "SigningTime",
	})
	w.close("NBan")
	w.empty("NMua")
	if inv.cqtSigned {
		w.open("CQT")
		writeSignature(w, r, signatureParams{
			refID:   inv.dlID,
			subject: "CN=TỔNG CỤC THUẾ, O=BỘ TÀI CHÍNH, L=Hà Nội, C=VN",
			cert:    sellerCert(seed, 1000),
			sha256:  true,
			time:    inv.signed.Add(time.Duration(r.between(5, 900)) * time.Second),
			objID:   "SigningTimeCQT",
		})
		w.close("CQT")
	}
	w.close("DSCKS")
	w.close("HDon")
	if s.indent {
		b.WriteByte('\n')
	}
}

func lastPart(addr string) string {
	i := strings.LastIndex(addr, ", ")
	return addr[i+2:]
}

type signatureParams struct {
	refID, subject, cert, objID string
	sha256                      bool
	time                        time.Time
}

// writeSignature writes a plausible enveloped XMLDSig Signature. Digests and
// signature values are random: the corpus is for backup benchmarks, and a
// verifier will (correctly) report these signatures as invalid.
func writeSignature(w *xw, r *rng, p signatureParams) {
	sigAlg, digAlg, dlen, slen := "http://www.w3.org/2000/09/xmldsig#rsa-sha1", "http://www.w3.org/2000/09/xmldsig#sha1", 20, 128
	if p.sha256 {
		sigAlg, digAlg, dlen, slen = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2001/04/xmlenc#sha256", 32, 256
	}
	w.open("Signature", "xmlns", xmldsigNS)
	w.open("SignedInfo")
	w.empty("CanonicalizationMethod", "Algorithm", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315")
	w.empty("SignatureMethod", "Algorithm", sigAlg)
	for _, ref := range []string{p.refID, p.objID} {
		w.open("Reference", "URI", "#"+ref)
		w.open("Transforms")
		w.empty("Transform", "Algorithm", "http://www.w3.org/2000/09/xmldsig#enveloped-signature")
		w.empty("Transform", "Algorithm", "http://www.w3.org/2001/10/xml-exc-c14n#")
		w.close("Transforms")
		w.empty("DigestMethod", "Algorithm", digAlg)
		w.leaf("DigestValue", r.b64(dlen))
		w.close("Reference")
	}
	w.close("SignedInfo")
	w.leaf("SignatureValue", r.b64(slen))
	w.open("KeyInfo")
	w.open("X509Data")
	w.leaf("X509SubjectName", p.subject)
	w.leaf("X509Certificate", p.cert)
	w.close("X509Data")
	w.close("KeyInfo")
	w.open("Object", "Id", p.objID)
	w.open("SignatureProperties", "xmlns", "")
	w.open("SignatureProperty", "Target", "#Signature")
	w.leaf("SigningTime", p.time.Format("2006-01-02T15:04:05"))
	w.close("SignatureProperty")
	w.close("SignatureProperties")
	w.close("Object")
	w.close("Signature")
}

// sellerCert returns a fake DER-looking base64 certificate, the same for
// every invoice of one seller in one corpus.
func sellerCert(seed int64, seller int) string {
	r := newRNG(seed, streamCert, uint64(seller)<<32)
	n := r.between(850, 1150)
	b := make([]byte, n)
	r.fill(b)
	copy(b, []byte{0x30, 0x82, byte((n - 4) >> 8), byte(n - 4), 0x30, 0x82})
	return base64.StdEncoding.EncodeToString(b)
}

var (
	vnDigits = []string{"không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín"}
	vnScales = []string{"", "nghìn", "triệu", "tỷ", "nghìn tỷ", "triệu tỷ"}
)

// vndWords spells an amount of Vietnamese dong, e.g. 13690000 ->
// "Mười ba triệu sáu trăm chín mươi nghìn đồng".
func vndWords(n int64) string {
	if n == 0 {
		return "Không đồng"
	}
	var groups []int
	for v := n; v > 0; v /= 1000 {
		groups = append(groups, int(v%1000))
	}
	var parts []string
	for i := len(groups) - 1; i >= 0; i-- {
		g := groups[i]
		if g == 0 {
			continue
		}
		parts = append(parts, readTriple(g, i == len(groups)-1))
		if vnScales[i] != "" {
			parts = append(parts, vnScales[i])
		}
	}
	s := strings.Join(parts, " ") + " đồng"
	first := []rune(s)
	return strings.ToUpper(string(first[0])) + string(first[1:])
}

func readTriple(g int, leading bool) string {
	h, t, u := g/100, g/10%10, g%10
	var w []string
	if h > 0 || !leading {
		w = append(w, vnDigits[h], "trăm")
	}
	switch {
	case t == 0 && u > 0 && (h > 0 || !leading):
		w = append(w, "lẻ")
	case t == 1:
		w = append(w, "mười")
	case t > 1:
		w = append(w, vnDigits[t], "mươi")
	}
	switch {
	case u == 0:
	case u == 1 && t > 1:
		w = append(w, "mốt")
	case u == 5 && t > 0:
		w = append(w, "lăm")
	case u == 4 && t > 1:
		w = append(w, "tư")
	default:
		w = append(w, vnDigits[u])
	}
	return strings.Join(w, " ")
}
