// Package invoice recognises e-invoices by their content and extracts
// their identity, totals and signatures: Vietnamese Circular 78 and
// Circular 32 XML, Chinese fully-digitalised (数电票) and VAT e-invoice XML
// (also inside OFD files), EU UBL 2.1 Invoice/CreditNote and CII, and
// invoices inside ZIP archives. It knows nothing of repositories or
// snapshots; the catalog package records what it finds.
//
// Recognize sniffs a file's first bytes and parses only invoice-shaped
// XML (and ZIP/OFD containers), under Limits, with a small scanner that
// refuses DOCTYPEs, unknown entities, non-UTF-8 input, deep nesting, huge
// text and zip bombs (ErrRejected). VerifySignatures judges the XMLDSig
// signatures Recognize listed (package xmlsig does the cryptography) and
// reports Chinese SM2 seals as unverified. ParseStatusRecords reads what
// the tax authority says about invoices (portal exports, TDiep messages).
package invoice

import (
	"fmt"
	"math/big"
	"strings"
)

// Format names the schema an invoice was recognised as.
type Format string

// Formats this package recognises.
const (
	FormatVNTT78     Format = "vn-tt78"        // Vietnam, Circular 78 (HDon)
	FormatVNTT32     Format = "vn-tt32"        // Vietnam, Circular 32 (older)
	FormatCNSDP      Format = "cn-sdp"         // China, fully digitalised 数电票
	FormatCNVAT      Format = "cn-vat"         // China, VAT e-invoice XML
	FormatUBLInvoice Format = "ubl-invoice"    // EU UBL 2.1 Invoice
	FormatUBLCredit  Format = "ubl-creditnote" // EU UBL 2.1 CreditNote
	FormatCII        Format = "cii"            // UN/CEFACT CII (Factur-X, ZUGFeRD)
)

// SigStatus is the verdict on one signature or on an invoice as a whole.
type SigStatus string

// Signature statuses, from best to worst where they are comparable
// (Worse orders them).
const (
	SigValid       SigStatus = "valid"       // every reference digest and the signature value verify
	SigReformatted SigStatus = "reformatted" // they verify only after whitespace normalisation
	SigPartial     SigStatus = "partial"     // some references verify, others do not
	SigAltered     SigStatus = "altered"     // a digest fails even after normalisation
	SigUntrusted   SigStatus = "untrusted"   // trust roots configured and chain, time or MST link fails
	SigUnverified  SigStatus = "unverified"  // present but not verifiable here (e.g. Chinese SM2 seals)
	SigUnsigned    SigStatus = "unsigned"    // no signature at all
	SigPending     SigStatus = "pending"     // not checked yet (checks may run after the backup)
)

// Signature is one signature found in an invoice file.
type Signature struct {
	Role          string    `json:"role"`                      // "seller", "tax-authority", "buyer" or "other"
	Status        SigStatus `json:"status"`                    // verdict on this signature
	Algorithm     string    `json:"algorithm,omitempty"`       // e.g. rsa-sha256, sm2
	Signer        string    `json:"signer,omitempty"`          // certificate subject (CN)
	SignerTaxCode string    `json:"signer_tax_code,omitempty"` // tax code named in the certificate
	SigningTime   string    `json:"signing_time,omitempty"`    // as recorded in the file (RFC 3339 when parseable)
	Detail        string    `json:"detail,omitempty"`          // why the status is not valid
}

// Invoice is what the parser extracts from one recognised invoice.
// Amounts are decimal strings exactly as written in the file (no float
// rounding); Amount converts when a number is needed.
type Invoice struct {
	Format        Format      `json:"format"`
	Kind          string      `json:"kind,omitempty"` // invoice, credit-note, replacement, adjustment
	SellerTaxCode string      `json:"seller_tax_code"`
	SellerName    string      `json:"seller_name,omitempty"`
	BuyerTaxCode  string      `json:"buyer_tax_code,omitempty"`
	BuyerName     string      `json:"buyer_name,omitempty"`
	Form          string      `json:"form,omitempty"`           // VN KHMSHDon; UBL/CII type code
	Series        string      `json:"series,omitempty"`         // VN KHHDon
	Number        string      `json:"number"`                   // VN SHDon, CN 20-digit number, UBL/CII ID
	IssueDate     string      `json:"issue_date,omitempty"`     // YYYY-MM-DD
	AuthorityCode string      `json:"authority_code,omitempty"` // VN MCCQT or equivalent
	Currency      string      `json:"currency,omitempty"`
	TotalNet      string      `json:"total_net,omitempty"`
	TotalTax      string      `json:"total_tax,omitempty"`
	Total         string      `json:"total,omitempty"`   // amount payable, tax included
	Related       string      `json:"related,omitempty"` // key of the invoice this one replaces or adjusts
	Inner         string      `json:"inner,omitempty"`   // path inside a ZIP or OFD container, "" for a plain file
	Signatures    []Signature `json:"signatures,omitempty"`
}

// Key is the invoice's identity: SELLERMST/FORM/SERIES/NUMBER. The
// seller's tax code is always part of it because series codes repeat
// across sellers.
func (inv *Invoice) Key() string {
	return strings.Join([]string{inv.SellerTaxCode, inv.Form, inv.Series, inv.Number}, "/")
}

// Amount parses a decimal amount as written in an invoice ("1436.50",
// "-12", "1e3" is refused) into an exact rational number.
func Amount(s string) (*big.Rat, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s, "eE/") {
		return nil, fmt.Errorf("invoice: %q is not a decimal amount", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("invoice: %q is not a decimal amount", s)
	}
	return r, nil
}

// rank orders statuses from best (0) to worst for Worse.
var rank = map[SigStatus]int{
	SigValid: 0, SigReformatted: 1, SigPending: 2, SigUnverified: 3, SigUnsigned: 4,
	SigPartial: 5, SigUntrusted: 6, SigAltered: 7,
}

// Worse returns the worse of two statuses: altered > untrusted > partial >
// unsigned > unverified > pending > reformatted > valid.
func Worse(a, b SigStatus) SigStatus {
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// SigStatus is the invoice's overall signature verdict: the worst of its
// signatures, or unsigned when it has none.
func (inv *Invoice) SigStatus() SigStatus {
	if len(inv.Signatures) == 0 {
		return SigUnsigned
	}
	st := SigValid
	for _, s := range inv.Signatures {
		st = Worse(st, s.Status)
	}
	return st
}
