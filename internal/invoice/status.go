package invoice

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Status words of tax-authority records.
const (
	StatusIssued    = "issued"    // the authority has the invoice (coded or received)
	StatusCancelled = "cancelled" // cancelled (hủy)
	StatusReplaced  = "replaced"  // replaced by another invoice (Related names it)
	StatusAdjusted  = "adjusted"  // adjusted by another invoice (Related names it when known)
)

// StatusRecord is what the tax authority says about one invoice.
type StatusRecord struct {
	Key           string `json:"key"` // SELLERMST/FORM/SERIES/NUMBER, as Invoice.Key
	SellerTaxCode string `json:"seller_tax_code"`
	Form          string `json:"form"`
	Series        string `json:"series"`
	Number        string `json:"number"`
	Status        string `json:"status"`            // issued, cancelled, replaced, adjusted
	Related       string `json:"related,omitempty"` // the replacing/adjusting invoice, or the original one
	AuthorityCode string `json:"authority_code,omitempty"`
	Date          string `json:"date,omitempty"` // issue date (or notice date), YYYY-MM-DD
	BuyerTaxCode  string `json:"buyer_tax_code,omitempty"`
	Total         string `json:"total,omitempty"`
	Source        string `json:"source"` // "portal-json", "tdiep-202", "tdiep-300", ...
}

func newRecord(mst, form, series, number string) StatusRecord {
	r := StatusRecord{SellerTaxCode: mst, Form: form, Series: series, Number: normNumber(number)}
	r.Key = strings.Join([]string{r.SellerTaxCode, r.Form, r.Series, r.Number}, "/")
	return r
}

// ParseStatusRecords reads tax-authority records: JSON exports of the
// Vietnamese e-invoice portal (hoadondientu.gdt.gov.vn: a list of invoice
// objects, or an object with a "datas" list) and TDiep messages (invoices
// in 200/202/203 messages are issued; 04/SS-HĐĐT notices in 300 messages
// cancel, replace or adjust). A replacement or adjustment also yields a
// record for the original invoice. name only appears in errors.
func ParseStatusRecords(name string, data []byte) ([]StatusRecord, error) {
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(data, utf8BOM), " \t\r\n")
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%s: empty file: expected a portal JSON export or a TDiep XML message", name)
	}
	switch trimmed[0] {
	case '[', '{':
		return parsePortalJSON(name, trimmed)
	case '<':
		return parseTDiepStatus(name, data)
	}
	return nil, fmt.Errorf("%s: neither JSON nor XML: expected a portal JSON export or a TDiep XML message", name)
}

// portalRow is the part of a portal record we use. Numbers come as JSON
// numbers or strings depending on the endpoint.
type portalRow struct {
	NBMST     string    `json:"nbmst"`
	KHMSHDon  flexValue `json:"khmshdon"`
	KHHDon    string    `json:"khhdon"`
	SHDon     flexValue `json:"shdon"`
	MHDon     *string   `json:"mhdon"`
	TDLap     string    `json:"tdlap"`
	TThai     flexValue `json:"tthai"`
	KHMSHDGoc flexValue `json:"khmshdgoc"`
	KHHDGoc   *string   `json:"khhdgoc"`
	SHDGoc    flexValue `json:"shdgoc"`
	NMMST     *string   `json:"nmmst"`
	TgTTTBSo  flexValue `json:"tgtttbso"`
}

// flexValue accepts a JSON string, number or null (a trailing ".0" of a
// whole number is dropped).
type flexValue string

func (f *flexValue) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*f = ""
	case len(b) > 0 && b[0] == '{':
		// Some exports wrap numbers: {"source": "432000.0", "parsedValue": 432000}.
		var w struct {
			Source      *flexValue `json:"source"`
			ParsedValue *flexValue `json:"parsedValue"`
		}
		if err := json.Unmarshal(b, &w); err != nil {
			return err
		}
		switch {
		case w.Source != nil:
			*f = *w.Source
		case w.ParsedValue != nil:
			*f = *w.ParsedValue
		default:
			*f = ""
		}
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexValue(strings.TrimSuffix(strings.TrimSpace(s), ".0"))
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*f = flexValue(strings.TrimSuffix(n.String(), ".0"))
	}
	return nil
}

func strp(p *string) string {
	if p == nil {
		return ""
	}
	return strings.TrimSpace(*p)
}

// vnZone is Vietnam time: the portal writes dates as the UTC instant of
// local midnight (2025-09-21T17:00:00Z is 2025-09-22).
var vnZone = time.FixedZone("ICT", 7*3600)

func portalDate(s string) string {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.In(vnZone).Format(time.DateOnly)
	}
	return dateOnly(s)
}

func parsePortalJSON(name string, data []byte) ([]StatusRecord, error) {
	var rows []portalRow
	if data[0] == '{' {
		var wrap struct {
			Datas []portalRow `json:"datas"`
		}
		if err := json.Unmarshal(data, &wrap); err != nil {
			return nil, fmt.Errorf("%s: not a portal JSON export: %w", name, err)
		}
		rows = wrap.Datas
		if rows == nil {
			var one portalRow
			if err := json.Unmarshal(data, &one); err == nil && one.NBMST != "" {
				rows = []portalRow{one}
			}
		}
	} else if err := json.Unmarshal(data, &rows); err != nil {
		return nil, fmt.Errorf("%s: not a portal JSON export: %w", name, err)
	}
	var out []StatusRecord
	for i, row := range rows {
		if row.NBMST == "" || row.KHHDon == "" || row.SHDon == "" {
			return nil, fmt.Errorf("%s: record %d lacks nbmst, khhdon or shdon: not a portal invoice export", name, i+1)
		}
		r := newRecord(strings.TrimSpace(row.NBMST), string(row.KHMSHDon), strings.TrimSpace(row.KHHDon), string(row.SHDon))
		r.Source = "portal-json"
		r.AuthorityCode = strp(row.MHDon)
		r.Date = portalDate(row.TDLap)
		r.BuyerTaxCode = strp(row.NMMST)
		r.Total = string(row.TgTTTBSo)
		var orig *StatusRecord
		if g := string(row.SHDGoc); g != "" && strp(row.KHHDGoc) != "" {
			o := newRecord(r.SellerTaxCode, firstNonEmpty(string(row.KHMSHDGoc), r.Form), strp(row.KHHDGoc), g)
			o.Source, o.Related = r.Source, r.Key
			orig = &o
		}
		// tthai: 1 new, 2 replacement, 3 adjustment, 4 replaced, 5
		// adjusted, 6 cancelled.
		switch row.TThai {
		case "1", "2", "3", "":
			r.Status = StatusIssued
			if orig != nil {
				r.Related = orig.Key
				orig.Status = StatusReplaced
				if row.TThai == "3" {
					orig.Status = StatusAdjusted
				}
			}
		case "4":
			r.Status = StatusReplaced
		case "5":
			r.Status = StatusAdjusted
		case "6":
			r.Status = StatusCancelled
		default:
			return nil, fmt.Errorf("%s: record %d (%s) has unknown status tthai=%s", name, i+1, r.Key, row.TThai)
		}
		out = append(out, r)
		if orig != nil && orig.Status != "" {
			out = append(out, *orig)
		}
	}
	return out, nil
}

// parseTDiepStatus reads invoices and error notices from TDiep messages.
func parseTDiepStatus(name string, data []byte) ([]StatusRecord, error) {
	doc, err := parseXML(context.Background(), data, defaultLimits)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if doc.name != "TDiep" && doc.name != "HDon" {
		return nil, fmt.Errorf("%s: root element <%s> is not a TDiep message", name, doc.name)
	}
	src := "tdiep-" + firstNonEmpty(doc.str("TTChung", "MLTDiep"), "?")
	if doc.name == "HDon" {
		src = "hdon"
	}
	var out []StatusRecord
	for _, inv := range extractTT78(doc) {
		r := newRecord(inv.SellerTaxCode, inv.Form, inv.Series, inv.Number)
		r.Status, r.Source = StatusIssued, src
		r.AuthorityCode, r.Date, r.BuyerTaxCode, r.Total = inv.AuthorityCode, inv.IssueDate, inv.BuyerTaxCode, inv.Total
		if inv.Related != "" {
			r.Related = inv.Related
			o := recordFromKey(inv.Related)
			o.Source, o.Related, o.Date = src, r.Key, inv.IssueDate
			o.Status = StatusReplaced
			if inv.Kind == "adjustment" {
				o.Status = StatusAdjusted
			}
			out = append(out, r, o)
			continue
		}
		out = append(out, r)
	}
	// 04/SS-HĐĐT notices: TBao/DLTBao/DSHDon/HDon with TCTBao.
	for _, tb := range doc.findAll("", "DLTBao") {
		mst := firstNonEmpty(tb.str("MST"), doc.str("TTChung", "MST"))
		for _, h := range tb.path("DSHDon").kids {
			if h.name != "HDon" {
				continue
			}
			r := newRecord(mst, h.str("KHMSHDon"), h.str("KHHDon"), h.str("SHDon"))
			r.Source = src
			r.AuthorityCode = h.str("MCQTCap")
			r.Date = dateOnly(firstNonEmpty(h.str("Ngay"), tb.str("NTBao")))
			switch h.str("TCTBao") {
			case "1":
				r.Status = StatusCancelled
			case "2":
				r.Status = StatusAdjusted
			case "3":
				r.Status = StatusReplaced
			default:
				continue // 4 = explanation only: no status change
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func recordFromKey(key string) StatusRecord {
	p := strings.SplitN(key, "/", 4)
	for len(p) < 4 {
		p = append(p, "")
	}
	return newRecord(p[0], p[1], p[2], p[3])
}
