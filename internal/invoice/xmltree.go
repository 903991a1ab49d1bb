package invoice

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// node is one element of a parsed document: a small tree that keeps
// exactly what the extractors read (names, attributes, text).
type node struct {
	space, name string // namespace URI and local name
	attrs       []attr
	kids        []*node
	// raw is the character data directly inside the element
	// (whitespace-only runs dropped): a slice of the input while it is
	// one piece without entities, else a buffer of its own (owned). It
	// becomes a string only when an extractor reads it.
	raw   []byte
	owned bool
	strs  *strArena // where the strings extractors read are copied to
}

// strArena hands out the strings an extractor reads: copies of input
// bytes made into one shared, append-only buffer instead of one
// allocation each (an invoice has a dozen or two such fields, and the
// backup extracts millions). Bytes once handed out are never written
// again, so the strings stay immutable; a full buffer is replaced, not
// reused, and lives on as long as a string refers to it.
type strArena struct{ buf []byte }

const (
	arenaChunk    = 8 << 10
	arenaMaxPiece = 512 // longer strings get their own allocation
)

// str returns b as a string.
func (a *strArena) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if a == nil || len(b) > arenaMaxPiece {
		return string(b)
	}
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, arenaChunk)
	}
	start := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(&a.buf[start], len(b))
}

// attr is one attribute: its value stays a slice of the input (entities
// resolved) until an extractor reads it.
type attr struct {
	prefix, local string
	val           []byte
}

// child returns the first child element with the local name, or nil.
func (n *node) child(name string) *node {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

// path follows local names down the tree; nil when a step is missing.
func (n *node) path(names ...string) *node {
	for _, s := range names {
		n = n.child(s)
		if n == nil {
			return nil
		}
	}
	return n
}

// str returns the trimmed text at the path ("" when missing).
func (n *node) str(names ...string) string {
	if m := n.path(names...); m != nil {
		return m.strs.str(bytes.TrimSpace(m.raw))
	}
	return ""
}

// txt returns the element's text as written (entities resolved).
func (n *node) txt() string {
	if n == nil {
		return ""
	}
	return n.strs.str(n.raw)
}

// attr returns the attribute with the local name, "" when missing.
func (n *node) attr(name string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.attrs {
		if a.local == name {
			return n.strs.str(a.val)
		}
	}
	return ""
}

// walk calls fn for n and every descendant in document order until fn
// returns false for a subtree (its children are then skipped).
func (n *node) walk(fn func(*node) bool) {
	if n == nil || !fn(n) {
		return
	}
	for _, k := range n.kids {
		k.walk(fn)
	}
}

// findAll returns every descendant (or n) with the local name and
// namespace ("" namespace matches any), not looking inside matches.
func (n *node) findAll(space, name string) []*node {
	var out []*node
	n.walk(func(m *node) bool {
		if m.name == name && (space == "" || m.space == space) {
			out = append(out, m)
			return false
		}
		return true
	})
	return out
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// parseXML parses a whole document into a tree under the limits.
// Anything hostile or malformed is an ErrRejected error with a reason:
// DOCTYPE declarations (and so entity definitions) are refused outright,
// undefined entities, non-UTF-8 encodings, too deep nesting, too many
// elements and too long text nodes or attributes are errors.
//
// It is a small purpose-built scanner rather than encoding/xml: the
// backup runs it on every invoice and encoding/xml costs several times
// more. It checks what matters for extraction (UTF-8, tag balance,
// quoting, entities, namespaces); it is not a validating parser.
func parseXML(ctx context.Context, data []byte, lim Limits) (*node, error) {
	return parseXMLWith(ctx, &scanner{}, data, lim)
}

// scanners keeps scanners, with their node slabs, for withTree: parsing
// an invoice then allocates almost nothing.
var scanners = sync.Pool{New: func() any { return new(scanner) }}

// withTree parses data with a pooled scanner and calls fn with the tree,
// which is only valid during the call: fn must copy what it keeps (the
// extractors copy every string they return).
func withTree[T any](ctx context.Context, data []byte, lim Limits, fn func(*node) T) (T, error) {
	p := scanners.Get().(*scanner)
	defer func() {
		p.recycle()
		scanners.Put(p)
	}()
	doc, err := parseXMLWith(ctx, p, data, lim)
	if err != nil {
		var zero T
		return zero, err
	}
	return fn(doc), nil
}

func parseXMLWith(ctx context.Context, p *scanner, data []byte, lim Limits) (*node, error) {
	if int64(len(data)) > lim.MaxBytes {
		return nil, rejected("XML document of %d bytes exceeds the %d-byte limit", len(data), lim.MaxBytes)
	}
	if err := checkEncoding(data); err != nil {
		return nil, err
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	if !utf8.Valid(data) {
		return nil, rejected("malformed XML: invalid UTF-8")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.data, p.lim = data, lim
	if cap(p.slab) == 0 {
		// '<' count bounds the number of elements: one allocation of
		// nodes for a typical invoice, blocks of at most 1024 for big
		// documents.
		p.block = min(bytes.Count(data, []byte("<"))/2+1, 1024)
	}
	return p.parse()
}

// recycle prepares a pooled scanner for the next document: the first
// node slab is kept (grown to what this document needed, within reason)
// and cleared, except for the attribute slices' storage.
func (p *scanner) recycle() {
	const keepNodes = 4096
	used := p.used
	if used <= cap(p.first) {
		nodes := p.first[:used]
		for i := range nodes {
			nodes[i] = node{attrs: nodes[i].attrs[:0]}
		}
	} else if used <= keepNodes {
		p.first = make([]node, 0, used+used/4)
	} else {
		p.first = nil
	}
	clear(p.kidFirst[:min(p.kids, cap(p.kidFirst))])
	if p.kids > cap(p.kidFirst) && p.kids <= keepNodes {
		p.kidFirst = make([]*node, 0, p.kids+p.kids/4)
	}
	clear(p.stack[:cap(p.stack)])
	clear(p.pending[:cap(p.pending)])
	*p = scanner{
		stack: p.stack[:0], qnames: p.qnames[:0], pending: p.pending[:0], marks: p.marks[:0],
		ns: p.ns[:0], nsMarks: p.nsMarks[:0],
		first: p.first[:0], slab: p.first[:0], block: 64, kidFirst: p.kidFirst[:0], kidArena: p.kidFirst[:0],
		strs: p.strs,
	}
}

// scanner is the state of one parseXML call.
type scanner struct {
	data     []byte
	pos      int
	lim      Limits
	stack    []*node
	qnames   [][]byte // raw qualified names of open elements (slices of data)
	slab     []node   // nodes are carved from here, a block at a time
	block    int      // size of the next slab block
	pending  []*node  // children of the open elements, in order
	marks    []int    // where each open element's children start in pending
	kidArena []*node  // exact-size kids slices are carved from here
	ns       []nsBinding
	nsMarks  []int
	elements int
	// pooled scanners (withTree) reuse their first slabs
	first    []node
	kidFirst []*node
	strs     strArena // kept across documents: append-only
	used     int      // nodes handed out
	kids     int      // kid pointers handed out
}

type nsBinding struct{ prefix, uri string }

func (p *scanner) malformed(what string) error {
	return rejected("malformed XML at byte %d: %s", p.pos, what)
}

func (p *scanner) parse() (*node, error) {
	var root *node
	d := p.data
	for p.pos < len(d) {
		if d[p.pos] != '<' {
			end := bytes.IndexByte(d[p.pos:], '<')
			if end < 0 {
				end = len(d) - p.pos
			}
			run := d[p.pos : p.pos+end]
			if len(p.stack) == 0 {
				if len(bytes.TrimLeft(run, " \t\r\n")) != 0 {
					return nil, p.malformed("text outside the root element")
				}
			} else if !allSpace(run) { // indentation carries nothing the extractors read
				if err := p.addText(run, true); err != nil {
					return nil, err
				}
			}
			p.pos += end
			continue
		}
		rest := d[p.pos:]
		var next byte
		if len(rest) > 1 {
			next = rest[1]
		}
		switch {
		case next != '?' && next != '!' && next != '/':
			// the common case first: a start tag
			if len(p.stack) == 0 && root != nil {
				return nil, p.malformed("more than one root element")
			}
			n, err := p.startTag()
			if err != nil {
				return nil, err
			}
			if root == nil {
				root = n
			}
		case next == '/':
			if err := p.endTag(); err != nil {
				return nil, err
			}
		case bytes.HasPrefix(rest, []byte("<?")):
			end := bytes.Index(rest, []byte("?>"))
			if end < 0 {
				return nil, p.malformed("unterminated processing instruction")
			}
			p.pos += end + 2
		case bytes.HasPrefix(rest, []byte("<!--")):
			end := bytes.Index(rest[4:], []byte("-->"))
			if end < 0 {
				return nil, p.malformed("unterminated comment")
			}
			p.pos += 4 + end + 3
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			if len(p.stack) == 0 {
				return nil, p.malformed("CDATA outside the root element")
			}
			end := bytes.Index(rest, []byte("]]>"))
			if end < 0 {
				return nil, p.malformed("unterminated CDATA section")
			}
			if err := p.addText(rest[9:end], false); err != nil {
				return nil, err
			}
			p.pos += end + 3
		case bytes.HasPrefix(rest, []byte("<!")):
			return nil, rejected("XML with a DOCTYPE or other declaration (<!%s...) is not accepted in invoices", firstWord(rest[2:]))
		}
	}
	if root == nil {
		return nil, rejected("malformed XML: no root element")
	}
	if len(p.stack) > 0 {
		return nil, p.malformed("unexpected end of document inside <" + string(p.qnames[len(p.qnames)-1]) + ">")
	}
	return root, nil
}

func (p *scanner) addText(run []byte, entities bool) error {
	top := p.stack[len(p.stack)-1]
	if len(top.raw)+len(run) > p.lim.MaxTokenBytes {
		return rejected("text node longer than %d bytes", p.lim.MaxTokenBytes)
	}
	piece, owned := run, false
	if entities && bytes.IndexByte(run, '&') >= 0 {
		s, err := p.unescape(run)
		if err != nil {
			return err
		}
		piece, owned = []byte(s), true
	}
	switch {
	case len(top.raw) == 0 && !top.owned:
		top.raw, top.owned = piece, owned
	case !top.owned:
		top.raw = append(append(make([]byte, 0, 2*(len(top.raw)+len(piece))), top.raw...), piece...)
		top.owned = true
	default:
		top.raw = append(top.raw, piece...) // amortised: no quadratic concatenation
	}
	return nil
}

// unescape resolves the predefined and character entities.
func (p *scanner) unescape(b []byte) (string, error) {
	var out strings.Builder
	out.Grow(len(b))
	for {
		i := bytes.IndexByte(b, '&')
		if i < 0 {
			out.Write(b)
			return out.String(), nil
		}
		out.Write(b[:i])
		b = b[i:]
		semi := bytes.IndexByte(b, ';')
		if semi < 0 || semi > 12 {
			return "", p.malformed("unterminated entity reference")
		}
		ent := string(b[1:semi])
		switch ent {
		case "lt":
			out.WriteByte('<')
		case "gt":
			out.WriteByte('>')
		case "amp":
			out.WriteByte('&')
		case "quot":
			out.WriteByte('"')
		case "apos":
			out.WriteByte('\'')
		default:
			if !strings.HasPrefix(ent, "#") {
				return "", p.malformed("undefined entity &" + ent + ";")
			}
			var v uint64
			var err error
			if strings.HasPrefix(ent, "#x") {
				v, err = strconv.ParseUint(ent[2:], 16, 32)
			} else {
				v, err = strconv.ParseUint(ent[1:], 10, 32)
			}
			r := rune(v)
			if err != nil || !utf8.ValidRune(r) || r == 0 {
				return "", p.malformed("invalid character reference &" + ent + ";")
			}
			out.WriteRune(r)
		}
		b = b[semi+1:]
	}
}

func allSpace(b []byte) bool {
	for _, c := range b {
		if !isSpace(c) {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// knownNames are the element and attribute names of the formats read
// here; names found in it are not allocated again for every element.
var knownNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range strings.Fields(`HDon DLHDon TTChung NDHDon NBan NMua DSHHDVu HHDVu TToan DSCKS CQT MCCQT
		PBan THDon KHMSHDon KHHDon SHDon NLap DVTTe TGia HTTToan MSTTCGP TTHDLQuan TTKhac TTin TTruong KDLieu DLieu
		Ten MST DChi SDThoai DCTDTu STKNHang TNHang MKHang HVTNMHang TChat STT MHHDVu THHDVu DVTinh SLuong DGia
		TLCKhau STCKhau ThTien TSuat THTTLTSuat LTSuat TThue TgTCThue TgTThue TTCKTMai TgTTTBSo TgTTTBChu
		TDiep MNGui MNNhan MLTDiep MTDiep MTDTChieu SLuong Id DLQRCode
		Signature SignedInfo CanonicalizationMethod SignatureMethod Reference Transforms Transform DigestMethod
		DigestValue SignatureValue KeyInfo X509Data X509SubjectName X509Certificate Object SignatureProperties
		SignatureProperty SigningTime Algorithm URI Target xmlns`) {
		m[n] = n
	}
	return m
}()

// skipped are elements whose content no extractor reads (line items,
// certificates, signature objects): the scanner keeps the element but
// jumps over its content, which is most of an invoice's markup.
// VerifySignatures reads the signatures with its own parser.
var skipped = map[string]bool{
	"DSHHDVu": true, "KeyInfo": true, "Object": true, // VN items, XMLDSig key and properties
	"TTKhac": true, "THTTLTSuat": true, // VN free-form extra fields, totals per tax rate
	"InvoiceLine": true, "CreditNoteLine": true, // UBL lines
	"IncludedSupplyChainTradeLineItem": true,                              // CII lines
	"GoodsInfos":                       true, "IssuItemInformation": true, // CN items
}

// skipContent moves p.pos past the end tag that closes the element
// qname whose start tag was just read, counting nested elements of the
// same name. The skipped bytes are not built into nodes (so cost no
// memory) and only checked to be balanced for that name.
func (p *scanner) skipContent(qname []byte) error {
	d := p.data
	depth := 1
	for depth > 0 {
		i := bytes.IndexByte(d[p.pos:], '<')
		if i < 0 {
			return p.malformed("unexpected end of document inside <" + string(qname) + ">")
		}
		p.pos += i + 1
		closing := p.pos < len(d) && d[p.pos] == '/'
		if closing {
			p.pos++
		}
		if !bytes.HasPrefix(d[p.pos:], qname) || p.pos+len(qname) >= len(d) {
			continue
		}
		switch c := d[p.pos+len(qname)]; {
		case c == '>' || isSpace(c):
		case c == '/' && !closing:
			continue // <name/>: opens and closes
		default:
			continue // a longer name
		}
		if closing {
			depth--
		} else {
			depth++
		}
	}
	end := bytes.IndexByte(d[p.pos:], '>')
	if end < 0 {
		return p.malformed("unterminated end tag </" + string(qname) + ">")
	}
	p.pos += end + 1
	return nil
}

// newNode returns a zeroed node from the slab.
func (p *scanner) newNode() *node {
	if len(p.slab) == cap(p.slab) {
		p.slab = make([]node, 0, p.block)
		p.block = min(2*p.block, 1024)
	}
	p.slab = p.slab[:len(p.slab)+1]
	p.used++
	n := &p.slab[len(p.slab)-1]
	n.strs = &p.strs
	return n
}

// name reads an XML name at p.pos.
func (p *scanner) name() (string, error) {
	b, err := p.nameBytes()
	if err != nil {
		return "", err
	}
	if s, ok := knownNames[string(b)]; ok {
		return s, nil
	}
	return string(b), nil
}

// nameStop are the bytes that end an XML name.
var nameStop = [256]bool{' ': true, '\t': true, '\r': true, '\n': true, '/': true, '>': true, '=': true, '<': true, '"': true, '\'': true}

// nameBytes reads an XML name at p.pos without allocating.
func (p *scanner) nameBytes() ([]byte, error) {
	d := p.data
	start := p.pos
	for p.pos < len(d) && !nameStop[d[p.pos]] {
		p.pos++
	}
	if p.pos == start {
		return nil, p.malformed("expected a name")
	}
	if p.pos-start > 1024 {
		return nil, p.malformed("name too long")
	}
	return d[start:p.pos], nil
}

func (p *scanner) skipSpace() {
	for p.pos < len(p.data) && isSpace(p.data[p.pos]) {
		p.pos++
	}
}

func (p *scanner) startTag() (*node, error) {
	p.pos++ // '<'
	qb, err := p.nameBytes()
	if err != nil {
		return nil, err
	}
	qname, ok := knownNames[string(qb)]
	if !ok {
		qname = string(qb)
	}
	p.elements++
	if p.elements > p.lim.MaxElements {
		return nil, rejected("more than %d XML elements", p.lim.MaxElements)
	}
	if len(p.stack) >= p.lim.MaxDepth {
		return nil, rejected("XML nesting deeper than %d levels", p.lim.MaxDepth)
	}
	n := p.newNode()
	p.nsMarks = append(p.nsMarks, len(p.ns))
	d := p.data
	selfClosing := false
	for {
		p.skipSpace()
		if p.pos >= len(d) {
			return nil, p.malformed("unterminated start tag <" + qname + ">")
		}
		if d[p.pos] == '>' {
			p.pos++
			break
		}
		if d[p.pos] == '/' {
			if p.pos+1 >= len(d) || d[p.pos+1] != '>' {
				return nil, p.malformed("expected /> in <" + qname + ">")
			}
			p.pos += 2
			selfClosing = true
			break
		}
		an, err := p.name()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(d) || d[p.pos] != '=' {
			return nil, p.malformed("attribute " + an + " without a value")
		}
		p.pos++
		p.skipSpace()
		if p.pos >= len(d) || (d[p.pos] != '"' && d[p.pos] != '\'') {
			return nil, p.malformed("attribute " + an + " value not quoted")
		}
		q := d[p.pos]
		p.pos++
		end := bytes.IndexByte(d[p.pos:], q)
		if end < 0 {
			return nil, p.malformed("unterminated attribute value")
		}
		raw := d[p.pos : p.pos+end]
		if len(raw) > p.lim.MaxTokenBytes {
			return nil, rejected("XML attribute longer than %d bytes", p.lim.MaxTokenBytes)
		}
		if bytes.IndexByte(raw, '<') >= 0 {
			return nil, p.malformed("< in attribute value")
		}
		val := raw
		if bytes.IndexByte(raw, '&') >= 0 {
			u, err := p.unescape(raw)
			if err != nil {
				return nil, err
			}
			val = []byte(u)
		}
		p.pos += end + 1
		prefix, local := splitQName(an)
		switch {
		case an == "xmlns":
			p.ns = append(p.ns, nsBinding{"", p.uri(val)})
		case prefix == "xmlns":
			p.ns = append(p.ns, nsBinding{local, p.uri(val)})
		}
		n.attrs = append(n.attrs, attr{prefix: prefix, local: local, val: val})
	}
	prefix, local := splitQName(qname)
	n.name = local
	n.space = p.resolve(prefix)
	if len(p.stack) > 0 {
		p.pending = append(p.pending, n)
	}
	if selfClosing {
		p.ns = p.ns[:p.nsMarks[len(p.nsMarks)-1]]
		p.nsMarks = p.nsMarks[:len(p.nsMarks)-1]
		return n, nil
	}
	if skipped[local] {
		if err := p.skipContent(qb); err != nil {
			return nil, err
		}
		p.ns = p.ns[:p.nsMarks[len(p.nsMarks)-1]]
		p.nsMarks = p.nsMarks[:len(p.nsMarks)-1]
		return n, nil
	}
	p.stack = append(p.stack, n)
	p.qnames = append(p.qnames, qb)
	p.marks = append(p.marks, len(p.pending))
	return n, nil
}

func (p *scanner) endTag() error {
	p.pos += 2 // "</"
	qb, err := p.nameBytes()
	if err != nil {
		return err
	}
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != '>' {
		return p.malformed("unterminated end tag </" + string(qb) + ">")
	}
	p.pos++
	if len(p.stack) == 0 {
		return p.malformed("end tag </" + string(qb) + "> without start tag")
	}
	if open := p.qnames[len(p.qnames)-1]; !bytes.Equal(open, qb) {
		return p.malformed("end tag </" + string(qb) + "> does not match <" + string(open) + ">")
	}
	top := p.stack[len(p.stack)-1]
	mark := p.marks[len(p.marks)-1]
	p.marks = p.marks[:len(p.marks)-1]
	if k := len(p.pending) - mark; k > 0 {
		if len(p.kidArena)+k > cap(p.kidArena) {
			p.kidArena = make([]*node, 0, max(k, p.block))
		}
		start := len(p.kidArena)
		p.kids += k
		p.kidArena = append(p.kidArena, p.pending[mark:]...)
		top.kids = p.kidArena[start:len(p.kidArena):len(p.kidArena)]
		p.pending = p.pending[:mark]
	}
	p.stack = p.stack[:len(p.stack)-1]
	p.qnames = p.qnames[:len(p.qnames)-1]
	p.ns = p.ns[:p.nsMarks[len(p.nsMarks)-1]]
	p.nsMarks = p.nsMarks[:len(p.nsMarks)-1]
	return nil
}

// knownURIs are the namespaces of the formats read here, not allocated
// again for every declaration.
var knownURIs = func() map[string]string {
	m := map[string]string{}
	for _, u := range strings.Fields(`http://www.w3.org/2000/09/xmldsig# http://www.w3.org/2001/XMLSchema-instance
		http://www.w3.org/2001/XMLSchema urn:oasis:names:specification:ubl:schema:xsd:Invoice-2
		urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2
		urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2
		urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2
		urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100
		urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100
		urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100 http://www.w3.org/2000/09/xmldsig#Object`) {
		m[u] = u
	}
	return m
}()

func (p *scanner) uri(b []byte) string {
	if u, ok := knownURIs[string(b)]; ok {
		return u
	}
	return string(b)
}

// resolve maps a prefix to its namespace URI ("" prefix: the default
// namespace). An undeclared prefix resolves to itself, as encoding/xml
// does.
func (p *scanner) resolve(prefix string) string {
	for i := len(p.ns) - 1; i >= 0; i-- {
		if p.ns[i].prefix == prefix {
			return p.ns[i].uri
		}
	}
	if prefix == "xml" {
		return "http://www.w3.org/XML/1998/namespace"
	}
	return prefix
}

func splitQName(q string) (prefix, local string) {
	if i := strings.IndexByte(q, ':'); i >= 0 {
		return q[:i], q[i+1:]
	}
	return "", q
}

func firstWord(b []byte) string {
	s := string(b)
	if i := strings.IndexAny(s, " \t\r\n["); i >= 0 {
		s = s[:i]
	}
	if len(s) > 16 {
		s = s[:16]
	}
	return s
}

// checkEncoding refuses UTF-16/UTF-32 (by byte-order mark or zero bytes)
// and XML declarations naming an encoding other than UTF-8 or US-ASCII.
func checkEncoding(data []byte) error {
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}), bytes.HasPrefix(data, []byte{0xFE, 0xFF}),
		bytes.HasPrefix(data, []byte{0, '<'}), bytes.HasPrefix(data, []byte{'<', 0}),
		bytes.HasPrefix(data, []byte{0, 0}):
		return rejected("UTF-16/UTF-32 XML is not supported; convert the file to UTF-8")
	}
	head := bytes.TrimPrefix(data, utf8BOM)
	if !bytes.HasPrefix(head, []byte("<?xml")) {
		return nil
	}
	end := bytes.Index(head, []byte("?>"))
	if end < 0 || end > 512 {
		return rejected("malformed XML declaration")
	}
	decl := string(head[:end])
	i := strings.Index(decl, "encoding")
	if i < 0 {
		return nil
	}
	rest := strings.TrimLeft(decl[i+len("encoding"):], " \t\r\n=")
	if rest == "" {
		return rejected("malformed XML declaration")
	}
	q := rest[0]
	rest = rest[1:]
	j := strings.IndexByte(rest, q)
	if j < 0 {
		return rejected("malformed XML declaration")
	}
	switch strings.ToLower(rest[:j]) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return nil
	}
	return rejected("XML encoding %q is not supported; invoices must be UTF-8", rest[:j])
}
