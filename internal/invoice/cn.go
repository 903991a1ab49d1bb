package invoice

import (
	"strings"
)

// nsCNXBRL is the MOF invoice taxonomy namespace of XBRL attachments.
const nsCNXBRLPrefix = "http://xbrl.mof.gov.cn/taxonomy/"

// extractCNSDP reads a fully digitalised invoice (数电票, <EInvoice>).
// Its key is the nationally unique 20-digit number.
func extractCNSDP(doc *node) (Invoice, bool) {
	num := firstNonEmpty(doc.str("TaxSupervisionInfo", "InvoiceNumber"), doc.str("Header", "EIid"))
	if num == "" {
		return Invoice{}, false
	}
	data := doc.child("EInvoiceData")
	inv := Invoice{
		Format:        FormatCNSDP,
		Kind:          "invoice",
		SellerTaxCode: data.str("SellerInformation", "SellerIdNum"),
		SellerName:    data.str("SellerInformation", "SellerName"),
		BuyerTaxCode:  data.str("BuyerInformation", "BuyerIdNum"),
		BuyerName:     data.str("BuyerInformation", "BuyerName"),
		Number:        num,
		IssueDate:     cnDate(firstNonEmpty(doc.str("TaxSupervisionInfo", "IssueTime"), data.str("BasicInformation", "RequestTime"))),
		AuthorityCode: doc.str("TaxSupervisionInfo", "TaxBureauCode"),
		Currency:      "CNY",
		TotalNet:      data.str("BasicInformation", "TotalAmWithoutTax"),
		TotalTax:      data.str("BasicInformation", "TotalTaxAm"),
		Total:         data.str("BasicInformation", "TotalTax-includedAmount"),
	}
	// A red-letter (negative) invoice names the blue one it corrects.
	if doc.str("Header", "InherentLabel", "InIssuType", "LabelCode") == "N" {
		inv.Kind = "adjustment"
		if orig := data.str("AdditionalInformation", "RedInvoiceNumber"); orig != "" {
			inv.Related = inv.SellerTaxCode + "///" + orig
		}
	}
	if sig := doc.child("TaxBureauSignature"); sig != nil {
		inv.Signatures = append(inv.Signatures, Signature{
			Role:        "tax-authority",
			Status:      SigPending,
			Algorithm:   cnAlg(sig.str("SignatureAlgorithm")),
			SigningTime: sig.str("SignatureTime"),
		})
	}
	return inv, true
}

// extractCNVAT reads the pre-数电票 VAT e-invoice XML found in OFD files
// (<eInvoice xmlns:fp="http://www.edrm.org.cn/schema/e-invoice/2019">):
// identity is 发票代码 (Series) + 发票号码 (Number).
func extractCNVAT(doc *node) (Invoice, bool) {
	code, no := doc.str("InvoiceCode"), doc.str("InvoiceNo")
	if no == "" {
		return Invoice{}, false
	}
	inv := Invoice{
		Format:        FormatCNVAT,
		Kind:          "invoice",
		SellerTaxCode: doc.str("Seller", "SellerTaxID"),
		SellerName:    doc.str("Seller", "SellerName"),
		BuyerTaxCode:  doc.str("Buyer", "BuyerTaxID"),
		BuyerName:     doc.str("Buyer", "BuyerName"),
		Series:        code,
		Number:        no,
		IssueDate:     cnDate(doc.str("IssueDate")),
		AuthorityCode: doc.str("InvoiceCheckCode"),
		Currency:      "CNY",
		TotalNet:      doc.str("TaxExclusiveTotalAmount"),
		TotalTax:      doc.str("TaxTotalAmount"),
		Total:         doc.str("TaxInclusiveTotalAmount"),
	}
	if doc.str("Signature") != "" {
		// A PKCS#7 SM2 signature of the tax-control system.
		inv.Signatures = append(inv.Signatures, Signature{Role: "tax-authority", Status: SigPending, Algorithm: "sm2"})
	}
	return inv, true
}

// extractCNXBRL reads the XBRL invoice attachment (MOF taxonomy).
func extractCNXBRL(doc *node) (Invoice, bool) {
	facts := map[string]string{}
	for _, k := range doc.kids {
		if strings.HasPrefix(k.space, nsCNXBRLPrefix) {
			if _, dup := facts[k.name]; !dup {
				facts[k.name] = strings.TrimSpace(k.txt())
			}
		}
	}
	code, no := facts["CodeOfInvoice"], facts["NumberOfInvoice"]
	if u := facts["UniqueCodeOfInvoice"]; (code == "" || no == "") && len(u) == 20 {
		code, no = u[:12], u[12:]
	}
	if no == "" {
		return Invoice{}, false
	}
	return Invoice{
		Format:        FormatCNVAT,
		Kind:          "invoice",
		SellerTaxCode: facts["TaxpayerIdentificationNumberUnifiedSocialCreditCodeOfSeller"],
		SellerName:    facts["NameOfSeller"],
		BuyerTaxCode:  facts["TaxpayerIdentificationNumberUnifiedSocialCreditCodeOfPurchaser"],
		BuyerName:     facts["NameOfPurchaser"],
		Series:        code,
		Number:        no,
		IssueDate:     cnDate(facts["DateOfIssue"]),
		AuthorityCode: facts["IdentifyingCode"],
		Currency:      "CNY",
		TotalNet:      facts["TotalAmountExcludingTax"],
		TotalTax:      facts["TotalTaxAmount"],
		Total:         facts["TaxIncludedAmountInFigures"],
	}, true
}

// cnDate turns "2020年07月23日", "2023-02-23 10:08:05" or "20200723" into
// YYYY-MM-DD; other values stay as written.
func cnDate(s string) string {
	s = strings.TrimSpace(s)
	if y, rest, ok := strings.Cut(s, "年"); ok {
		if m, rest, ok := strings.Cut(rest, "月"); ok {
			d := strings.TrimSuffix(rest, "日")
			return y + "-" + pad2(m) + "-" + pad2(d)
		}
	}
	if len(s) == 8 && allDigits(s) {
		return s[:4] + "-" + s[4:6] + "-" + s[6:]
	}
	return dateOnly(s)
}

func pad2(s string) string {
	if len(s) == 1 {
		return "0" + s
	}
	return s
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// cnAlg names the Chinese national algorithms by their OIDs.
func cnAlg(oid string) string {
	switch oid {
	case "1.2.156.10197.1.501":
		return "sm2-sm3"
	case "1.2.156.10197.1.301", "1.2.156.10197.1.301.1":
		return "sm2"
	}
	return oid
}
