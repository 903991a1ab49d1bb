package invoice

import "strings"

// extractUBL reads a UBL 2.1 Invoice or CreditNote.
func extractUBL(doc *node) (Invoice, bool) {
	if !strings.HasPrefix(doc.space, "urn:oasis:names:specification:ubl:schema:xsd:") {
		return Invoice{}, false
	}
	id := doc.str("ID")
	if id == "" {
		return Invoice{}, false
	}
	inv := Invoice{
		Format:    FormatUBLInvoice,
		Kind:      "invoice",
		Number:    id,
		IssueDate: doc.str("IssueDate"),
		Currency:  doc.str("DocumentCurrencyCode"),
		Form:      firstNonEmpty(doc.str("InvoiceTypeCode"), "380"),
	}
	if doc.name == "CreditNote" {
		inv.Format, inv.Kind = FormatUBLCredit, "credit-note"
		inv.Form = firstNonEmpty(doc.str("CreditNoteTypeCode"), "381")
	}
	if inv.Form == "384" {
		inv.Kind = "replacement"
	}
	seller := doc.path("AccountingSupplierParty", "Party")
	buyer := doc.path("AccountingCustomerParty", "Party")
	inv.SellerTaxCode, inv.SellerName = ublParty(seller)
	inv.BuyerTaxCode, inv.BuyerName = ublParty(buyer)
	if mt := doc.child("LegalMonetaryTotal"); mt != nil {
		inv.TotalNet = mt.str("TaxExclusiveAmount")
		inv.Total = mt.str("TaxInclusiveAmount")
	}
	for _, tt := range doc.kids {
		if tt.name != "TaxTotal" {
			continue
		}
		if ta := tt.child("TaxAmount"); ta != nil && (inv.TotalTax == "" || ta.attr("currencyID") == inv.Currency) {
			inv.TotalTax = strings.TrimSpace(ta.txt())
		}
	}
	if ref := doc.path("BillingReference", "InvoiceDocumentReference", "ID"); ref != nil && inv.Kind != "invoice" {
		inv.Related = strings.Join([]string{inv.SellerTaxCode, "380", "", strings.TrimSpace(ref.txt())}, "/")
	}
	if ext := doc.child("UBLExtensions"); ext != nil {
		inv.Signatures = append(inv.Signatures, listSignatures(ext, "seller")...)
	}
	return inv, true
}

// ublParty returns a party's tax identifier (VAT number BT-31, else legal
// registration BT-30, else electronic address BT-34 as scheme:value) and
// name.
func ublParty(p *node) (id, name string) {
	if p == nil {
		return "", ""
	}
	for _, k := range p.kids {
		if k.name == "PartyTaxScheme" && id == "" {
			id = k.str("CompanyID")
		}
	}
	if id == "" {
		id = p.str("PartyLegalEntity", "CompanyID")
	}
	if id == "" {
		if e := p.child("EndpointID"); e != nil {
			id = schemeValue(e)
		}
	}
	name = firstNonEmpty(p.str("PartyLegalEntity", "RegistrationName"), p.str("PartyName", "Name"))
	return id, name
}

func schemeValue(n *node) string {
	v := strings.TrimSpace(n.txt())
	if s := n.attr("schemeID"); s != "" && v != "" {
		return s + ":" + v
	}
	return v
}

// extractCII reads a UN/CEFACT Cross Industry Invoice (Factur-X,
// ZUGFeRD, XRechnung CII).
func extractCII(doc *node) (Invoice, bool) {
	if !strings.HasPrefix(doc.space, "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice") {
		return Invoice{}, false
	}
	ed := doc.child("ExchangedDocument")
	id := ed.str("ID")
	if id == "" {
		return Invoice{}, false
	}
	tx := doc.child("SupplyChainTradeTransaction")
	agr := tx.child("ApplicableHeaderTradeAgreement")
	set := tx.child("ApplicableHeaderTradeSettlement")
	inv := Invoice{
		Format:    FormatCII,
		Kind:      "invoice",
		Form:      firstNonEmpty(ed.str("TypeCode"), "380"),
		Number:    id,
		IssueDate: cnDate(ed.str("IssueDateTime", "DateTimeString")),
		Currency:  set.str("InvoiceCurrencyCode"),
	}
	switch inv.Form {
	case "381":
		inv.Kind = "credit-note"
	case "384":
		inv.Kind = "replacement"
	}
	inv.SellerTaxCode, inv.SellerName = ciiParty(agr.child("SellerTradeParty"))
	inv.BuyerTaxCode, inv.BuyerName = ciiParty(agr.child("BuyerTradeParty"))
	if ms := set.child("SpecifiedTradeSettlementHeaderMonetarySummation"); ms != nil {
		inv.TotalNet = ms.str("TaxBasisTotalAmount")
		inv.Total = ms.str("GrandTotalAmount")
		for _, k := range ms.kids {
			if k.name == "TaxTotalAmount" && (inv.TotalTax == "" || k.attr("currencyID") == inv.Currency) {
				inv.TotalTax = strings.TrimSpace(k.txt())
			}
		}
	}
	if ref := set.path("InvoiceReferencedDocument", "IssuerAssignedID"); ref != nil && inv.Kind != "invoice" {
		inv.Related = strings.Join([]string{inv.SellerTaxCode, "380", "", strings.TrimSpace(ref.txt())}, "/")
	}
	return inv, true
}

// ciiParty returns a trade party's VAT number (else any tax registration,
// else the electronic address or global id) and name.
func ciiParty(p *node) (id, name string) {
	if p == nil {
		return "", ""
	}
	var fc string
	for _, k := range p.kids {
		if k.name != "SpecifiedTaxRegistration" {
			continue
		}
		r := k.child("ID")
		switch r.attr("schemeID") {
		case "VA":
			if id == "" {
				id = strings.TrimSpace(r.txt())
			}
		default:
			if fc == "" {
				fc = strings.TrimSpace(r.txt())
			}
		}
	}
	id = firstNonEmpty(id, fc)
	if id == "" {
		if u := p.path("URIUniversalCommunication", "URIID"); u != nil {
			id = schemeValue(u)
		}
	}
	if id == "" {
		if g := p.child("GlobalID"); g != nil {
			id = schemeValue(g)
		}
	}
	if id == "" {
		id = p.str("ID")
	}
	return id, p.str("Name")
}
