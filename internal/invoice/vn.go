package invoice

import (
	"strings"
)

// nsDSig is the XMLDSig namespace.
const nsDSig = "http://www.w3.org/2000/09/xmldsig#"

// nsTT32 is the namespace of the Circular 32 (2014) invoice XML.
const nsTT32 = "http://laphoadon.gdt.gov.vn/2014/09/invoicexml/v1"

// extractTT78 returns the HDon invoices of a bare HDon or of a TDiep
// message (wrapped messages included). A TDiep that carries no HDon (a
// notice, a cancellation) is not an invoice file.
func extractTT78(doc *node) []Invoice {
	var out []Invoice
	for _, h := range doc.findAll("", "HDon") {
		if inv, ok := hdon(h); ok {
			out = append(out, inv)
		}
	}
	return out
}

// hdon extracts one Circular 78 invoice.
func hdon(h *node) (Invoice, bool) {
	dl := h.child("DLHDon")
	ttc := dl.child("TTChung")
	nd := dl.child("NDHDon")
	if ttc == nil || nd == nil {
		return Invoice{}, false
	}
	inv := Invoice{
		Format:        FormatVNTT78,
		Kind:          "invoice",
		SellerTaxCode: nd.str("NBan", "MST"),
		SellerName:    nd.str("NBan", "Ten"),
		BuyerTaxCode:  nd.str("NMua", "MST"),
		BuyerName:     nd.str("NMua", "Ten"),
		Form:          ttc.str("KHMSHDon"),
		Series:        ttc.str("KHHDon"),
		Number:        normNumber(ttc.str("SHDon")),
		IssueDate:     dateOnly(ttc.str("NLap")),
		AuthorityCode: h.str("MCCQT"),
		Currency:      ttc.str("DVTTe"),
		TotalNet:      nd.str("TToan", "TgTCThue"),
		TotalTax:      nd.str("TToan", "TgTThue"),
		Total:         nd.str("TToan", "TgTTTBSo"),
	}
	if inv.SellerTaxCode == "" && inv.Series == "" {
		return Invoice{}, false
	}
	if rel := ttc.child("TTHDLQuan"); rel != nil {
		switch rel.str("TCHDon") {
		case "1":
			inv.Kind = "replacement"
		case "2":
			inv.Kind = "adjustment"
		}
		if n := normNumber(rel.str("SHDGoc")); n != "" {
			form := rel.str("KHMSHDGoc")
			if form == "" {
				form = inv.Form
			}
			inv.Related = strings.Join([]string{inv.SellerTaxCode, form, rel.str("KHHDGoc"), n}, "/")
		}
	}
	if ds := h.child("DSCKS"); ds != nil {
		for _, holder := range ds.kids {
			role := "other"
			switch holder.name {
			case "NBan":
				role = "seller"
			case "NMua":
				role = "buyer"
			case "CQT":
				role = "tax-authority"
			}
			inv.Signatures = append(inv.Signatures, listSignatures(holder, role)...)
		}
	}
	return inv, true
}

// extractTT32 reads a Circular 32 invoice (inv:invoice/inv:invoiceData).
func extractTT32(doc *node) (Invoice, bool) {
	if doc.space != nsTT32 {
		return Invoice{}, false
	}
	d := doc.child("invoiceData")
	if d == nil {
		return Invoice{}, false
	}
	inv := Invoice{
		Format:        FormatVNTT32,
		Kind:          "invoice",
		SellerTaxCode: d.str("sellerTaxCode"),
		SellerName:    d.str("sellerLegalName"),
		BuyerTaxCode:  d.str("buyerTaxCode"),
		BuyerName:     firstNonEmpty(d.str("buyerLegalName"), d.str("buyerDisplayName")),
		Form:          d.str("templateCode"),
		Series:        d.str("invoiceSeries"),
		Number:        normNumber(d.str("invoiceNumber")),
		IssueDate:     dateOnly(d.str("invoiceIssuedDate")),
		Currency:      firstNonEmpty(d.str("currencyCode"), "VND"),
		TotalNet:      d.str("totalAmountWithoutVAT"),
		TotalTax:      d.str("totalVATAmount"),
		Total:         d.str("totalAmountWithVAT"),
	}
	if inv.SellerTaxCode == "" {
		return Invoice{}, false
	}
	// adjustmentType in the 2014 GDT schema: 1 original, 3 replacement,
	// 5 adjustment, 7 cancellation record, 9 discount adjustment (from
	// the published format description; no sample other than 1 seen).
	switch d.str("adjustmentType") {
	case "3":
		inv.Kind = "replacement"
	case "5", "9":
		inv.Kind = "adjustment"
	}
	if orig := d.str("originalInvoiceId"); orig != "" && inv.Kind != "invoice" {
		inv.Related = orig
	}
	// The seller's signature is a direct child of inv:invoice; any other
	// signature (e.g. inside a tax-authority envelope) is "other".
	for _, k := range doc.kids {
		if k.name == "Signature" && k.space == nsDSig {
			inv.Signatures = append(inv.Signatures, pendingSig(k, "seller"))
		}
	}
	return inv, true
}

// listSignatures returns the XMLDSig signatures below holder.
func listSignatures(holder *node, role string) []Signature {
	var out []Signature
	for _, s := range holder.findAll(nsDSig, "Signature") {
		out = append(out, pendingSig(s, role))
	}
	return out
}

func pendingSig(s *node, role string) Signature {
	return Signature{
		Role:      role,
		Status:    SigPending,
		Algorithm: shortAlg(s.path("SignedInfo", "SignatureMethod").attr("Algorithm")),
	}
}

// shortAlg turns an XMLDSig algorithm URI into rsa-sha256 style.
func shortAlg(uri string) string {
	if i := strings.LastIndexAny(uri, "#"); i >= 0 {
		return uri[i+1:]
	}
	return uri
}

// normNumber drops leading zeros from a numeric invoice number so that
// "0000001" and "1" are the same number; other values stay as written.
func normNumber(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return s
		}
	}
	t := strings.TrimLeft(s, "0")
	if t == "" {
		return "0"
	}
	return t
}

// dateOnly keeps the YYYY-MM-DD part of a date or date-time.
func dateOnly(s string) string {
	if len(s) >= 10 && s[4] == '-' && s[7] == '-' {
		return s[:10]
	}
	return s
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
