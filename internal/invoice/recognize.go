package invoice

import (
	"bytes"
	"context"
	"strings"
	"unicode/utf16"
)

// sniffWindow is how far into a file Recognize looks for the root
// element before deciding the file is not an invoice.
const sniffWindow = 8 << 10

// rootNames are the local names of document elements that may be (or
// contain) an invoice; anything else is not parsed at all.
var rootNames = map[string]bool{
	"HDon": true, "TDiep": true, // VN Circular 78
	"invoice":  true,                     // VN Circular 32 (inv:invoice)
	"EInvoice": true,                     // CN 数电票
	"eInvoice": true,                     // CN VAT e-invoice (OFD attachment)
	"xbrl":     true,                     // CN XBRL invoice attachment
	"Invoice":  true, "CreditNote": true, // UBL 2.1
	"CrossIndustryInvoice": true, // CII
}

// Recognize returns the invoices in one file, judged by content only
// (name is used in messages). Files that are not invoices give nil, nil
// after looking at their first bytes; hostile or broken invoice-like
// input gives an error matching ErrRejected. ZIP archives and OFD files
// are opened and their members recognised (Invoice.Inner names them).
// Signatures are listed with status pending; VerifySignatures judges
// them.
func Recognize(ctx context.Context, name string, data []byte, lim Limits) ([]Invoice, error) {
	lim = lim.withDefaults()
	return recognize(ctx, name, data, lim, 0)
}

func recognize(ctx context.Context, name string, data []byte, lim Limits, zipDepth int) ([]Invoice, error) {
	if isZip(data) {
		if zipDepth >= lim.MaxZipDepth {
			return nil, nil
		}
		return recognizeZip(ctx, name, data, lim, zipDepth+1)
	}
	root, ok := sniffRoot(data)
	if !ok {
		return nil, nil
	}
	if !rootNames[root] {
		return nil, nil
	}
	return withTree(ctx, data, lim, extract)
}

// extract dispatches on the document element.
func extract(doc *node) []Invoice {
	switch doc.name {
	case "HDon", "TDiep":
		return extractTT78(doc)
	case "invoice":
		if inv, ok := extractTT32(doc); ok {
			return []Invoice{inv}
		}
	case "EInvoice":
		if inv, ok := extractCNSDP(doc); ok {
			return []Invoice{inv}
		}
	case "eInvoice":
		if inv, ok := extractCNVAT(doc); ok {
			return []Invoice{inv}
		}
	case "xbrl":
		if inv, ok := extractCNXBRL(doc); ok {
			return []Invoice{inv}
		}
	case "Invoice", "CreditNote":
		if inv, ok := extractUBL(doc); ok {
			return []Invoice{inv}
		}
	case "CrossIndustryInvoice":
		if inv, ok := extractCII(doc); ok {
			return []Invoice{inv}
		}
	}
	return nil
}

func isZip(data []byte) bool {
	return len(data) >= 4 && data[0] == 'P' && data[1] == 'K' && data[2] == 3 && data[3] == 4
}

// sniffRoot finds the local name of the document element in the first
// bytes without parsing: it skips a byte-order mark, the XML declaration,
// processing instructions, comments and whitespace; a DOCTYPE names the
// root too. ok is false when the data does not start like XML.
func sniffRoot(data []byte) (root string, ok bool) {
	if len(data) > sniffWindow {
		data = data[:sniffWindow]
	}
	if utf16Start(data) {
		data = fromUTF16(data)
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	for {
		data = bytes.TrimLeft(data, " \t\r\n")
		if len(data) < 2 || data[0] != '<' {
			return "", false
		}
		switch {
		case bytes.HasPrefix(data, []byte("<?")):
			i := bytes.Index(data, []byte("?>"))
			if i < 0 {
				return "", false
			}
			data = data[i+2:]
		case bytes.HasPrefix(data, []byte("<!--")):
			i := bytes.Index(data[4:], []byte("-->"))
			if i < 0 {
				return "", false
			}
			data = data[4+i+3:]
		case bytes.HasPrefix(data, []byte("<!DOCTYPE")):
			return localName(data[len("<!DOCTYPE"):]), true
		default:
			return localName(data[1:]), true
		}
	}
}

// localName reads an XML name at the start of b (after blanks) and drops
// its prefix.
func localName(b []byte) string {
	b = bytes.TrimLeft(b, " \t\r\n")
	end := bytes.IndexAny(b, " \t\r\n/>[")
	if end < 0 {
		end = len(b)
	}
	n := string(b[:end])
	if i := strings.LastIndexByte(n, ':'); i >= 0 {
		n = n[i+1:]
	}
	return n
}

func utf16Start(b []byte) bool {
	return bytes.HasPrefix(b, []byte{0xFF, 0xFE}) || bytes.HasPrefix(b, []byte{0xFE, 0xFF}) ||
		bytes.HasPrefix(b, []byte{0, '<'}) || bytes.HasPrefix(b, []byte{'<', 0})
}

// fromUTF16 decodes enough of a UTF-16 prefix to sniff its root; the
// parser then rejects the file with a clear reason.
func fromUTF16(b []byte) []byte {
	big := bytes.HasPrefix(b, []byte{0xFE, 0xFF}) || bytes.HasPrefix(b, []byte{0, '<'})
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		if big {
			u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
		} else {
			u = append(u, uint16(b[i+1])<<8|uint16(b[i]))
		}
	}
	s := string(utf16.Decode(u))
	return []byte(strings.TrimPrefix(s, "\uFEFF"))
}
