package catalog

import (
	"strconv"
	"unicode/utf8"

	"github.com/einvault/einvault/internal/invoice"
)

// appendEntry appends e as the JSON object encoding/json writes for it
// (same fields, order and escaping, HTML not escaped), without
// reflection: the backup encodes every entry. TestAppendEntryMatchesJSON
// fails when a field is added to Entry or invoice.Invoice and not here.
func appendEntry(b []byte, e *Entry) []byte {
	inv := &e.Invoice
	b = append(b, `{"format":`...)
	b = appendString(b, string(inv.Format))
	b = appendOpt(b, "kind", inv.Kind)
	b = append(b, `,"seller_tax_code":`...)
	b = appendString(b, inv.SellerTaxCode)
	b = appendOpt(b, "seller_name", inv.SellerName)
	b = appendOpt(b, "buyer_tax_code", inv.BuyerTaxCode)
	b = appendOpt(b, "buyer_name", inv.BuyerName)
	b = appendOpt(b, "form", inv.Form)
	b = appendOpt(b, "series", inv.Series)
	b = append(b, `,"number":`...)
	b = appendString(b, inv.Number)
	b = appendOpt(b, "issue_date", inv.IssueDate)
	b = appendOpt(b, "authority_code", inv.AuthorityCode)
	b = appendOpt(b, "currency", inv.Currency)
	b = appendOpt(b, "total_net", inv.TotalNet)
	b = appendOpt(b, "total_tax", inv.TotalTax)
	b = appendOpt(b, "total", inv.Total)
	b = appendOpt(b, "related", inv.Related)
	b = appendOpt(b, "inner", inv.Inner)
	if len(inv.Signatures) > 0 {
		b = append(b, `,"signatures":[`...)
		for i := range inv.Signatures {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendSignature(b, &inv.Signatures[i])
		}
		b = append(b, ']')
	}
	b = append(b, ',')
	b = appendFileFields(b, &e.File)
	b = append(b, `,"content_id":`...)
	b = appendString(b, e.ContentID)
	if e.PDF != nil {
		b = append(b, `,"pdf":{`...)
		b = appendFileFields(b, e.PDF)
		b = append(b, '}')
	}
	if e.Reused {
		b = append(b, `,"reused":true`...)
	}
	return append(b, '}')
}

func appendSignature(b []byte, s *invoice.Signature) []byte {
	b = append(b, `{"role":`...)
	b = appendString(b, s.Role)
	b = append(b, `,"status":`...)
	b = appendString(b, string(s.Status))
	b = appendOpt(b, "algorithm", s.Algorithm)
	b = appendOpt(b, "signer", s.Signer)
	b = appendOpt(b, "signer_tax_code", s.SignerTaxCode)
	b = appendOpt(b, "signing_time", s.SigningTime)
	b = appendOpt(b, "detail", s.Detail)
	return append(b, '}')
}

// appendFileFields appends the fields of a File without braces.
func appendFileFields(b []byte, f *File) []byte {
	b = append(b, `"path":`...)
	b = appendString(b, f.Path)
	b = append(b, `,"size":`...)
	b = strconv.AppendUint(b, f.Size, 10)
	if len(f.Blobs) > 0 {
		b = append(b, `,"blobs":[`...)
		for i, bl := range f.Blobs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":"`...)
			b = appendHex(b, bl.ID[:])
			b = append(b, `","p":`...)
			b = strconv.AppendInt(b, int64(bl.Pack), 10)
			if bl.Flags != 0 {
				b = append(b, `,"f":`...)
				b = strconv.AppendUint(b, uint64(bl.Flags), 10)
			}
			b = append(b, `,"o":`...)
			b = strconv.AppendUint(b, uint64(bl.Offset), 10)
			b = append(b, `,"l":`...)
			b = strconv.AppendUint(b, uint64(bl.Length), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return b
}

func appendOpt(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

const hexDigits = "0123456789abcdef"

func appendHex(b []byte, p []byte) []byte {
	for _, c := range p {
		b = append(b, hexDigits[c>>4], hexDigits[c&15])
	}
	return b
}

// appendString quotes s as encoding/json does with HTML escaping off:
// control characters, quote and backslash escaped, U+2028 and U+2029
// escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&15])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
