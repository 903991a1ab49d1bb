package invoice

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/einvault/einvault/internal/invoice/xmlsig"
)

// VerifyOptions configures VerifySignatures.
type VerifyOptions struct {
	// Roots, when set, are the trust anchors: a signature whose
	// certificate does not chain to them, was not valid at signing time,
	// or (for the seller's signature) names another tax code than the
	// seller's becomes untrusted. Nil means the chain is not judged.
	Roots *x509.CertPool
	// Intermediates are extra CA certificates for building chains.
	Intermediates *x509.CertPool
	// Now is used when a signature has no readable signing time; nil
	// means time.Now.
	Now func() time.Time
	// Limits bound the parse (zero fields mean the defaults).
	Limits Limits
}

// oidUID is the LDAP userid attribute where Vietnamese certificates keep
// "MST:<tax code>".
var oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// VerifySignatures checks the signatures of inv, which Recognize found in
// data (the whole file; for members of a ZIP or OFD, the container), and
// fills each Signature's Status, Signer, SignerTaxCode, SigningTime,
// Algorithm and Detail. Only an unreadable file is an error; every
// finding about a signature is a status.
func VerifySignatures(ctx context.Context, data []byte, inv *Invoice, opt VerifyOptions) error {
	lim := opt.Limits.withDefaults()
	body, err := innerBytes(data, inv.Inner, lim)
	if err != nil {
		return err
	}
	switch inv.Format {
	case FormatCNSDP, FormatCNVAT:
		for i := range inv.Signatures {
			s := &inv.Signatures[i]
			s.Status = SigUnverified
			s.Detail = strings.TrimSpace(s.Detail + "; SM2/SM3 seals and signatures are reported but not verified")
			s.Detail = strings.TrimPrefix(s.Detail, "; ")
		}
		return nil
	}
	if len(inv.Signatures) == 0 {
		return nil
	}
	if _, err := parseXML(ctx, body, lim); err != nil { // limits first
		return err
	}
	stored, err := readEtree(body)
	if err != nil {
		return err
	}
	scope, sigs := signatureScope(stored, inv)
	if scope == nil || len(sigs) != len(inv.Signatures) {
		return fmt.Errorf("invoice %s: signatures not found where Recognize found them", inv.Key())
	}
	var normSigs []*etree.Element
	var normScope *etree.Element
	for i, sig := range sigs {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := &inv.Signatures[i]
		res := xmlsig.Verify(sig, scope)
		status, detail := SigValid, ""
		if !res.OK() && res.Err == nil {
			if normSigs == nil {
				nd, err := readEtree(body)
				if err != nil {
					return err
				}
				xmlsig.NormalizeWhitespace(nd.Root())
				normScope, normSigs = signatureScope(nd, inv)
			}
			nres := (*xmlsig.Result)(nil)
			if i < len(normSigs) {
				nres = xmlsig.Verify(normSigs[i], normScope)
			}
			switch {
			case nres != nil && nres.OK():
				status, detail = SigReformatted, "verifies only after whitespace normalisation (the file was re-indented after signing)"
			default:
				if nres != nil && nres.Err == nil {
					res = nres
				}
				status, detail = judge(res)
			}
		} else if res.Err != nil {
			status, detail = SigUnverified, res.Err.Error()
		}
		fillSigner(s, res)
		s.Status, s.Detail = status, detail
		if opt.Roots != nil && (status == SigValid || status == SigReformatted || status == SigPartial) {
			if why := trustProblem(s, res, inv, opt); why != "" {
				s.Status, s.Detail = SigUntrusted, why
			}
		}
	}
	return nil
}

// judge names the status of a signature that fails even after whitespace
// normalisation.
func judge(res *xmlsig.Result) (SigStatus, string) {
	if !res.ValueOK {
		return SigAltered, "signature value does not verify with the embedded certificate"
	}
	var failed []string
	contentOK := 0
	inSigOnly := true
	for _, r := range res.Refs {
		if r.OK {
			if !r.InSignature {
				contentOK++
			}
			continue
		}
		failed = append(failed, r.Detail)
		if !r.InSignature {
			inSigOnly = false
		}
	}
	if inSigOnly && contentOK > 0 {
		return SigPartial, "content verifies but " + strings.Join(failed, "; ") + " (signing-time or other signature property)"
	}
	return SigAltered, "content changed after signing: " + strings.Join(failed, "; ")
}

func fillSigner(s *Signature, res *xmlsig.Result) {
	if res.Algorithm != "" {
		s.Algorithm = shortAlg(res.Algorithm)
	}
	if res.SigningTime != "" {
		s.SigningTime = normTime(res.SigningTime)
	}
	if len(res.Certs) > 0 {
		c := res.Certs[0]
		s.Signer = c.Subject.CommonName
		s.SignerTaxCode = certTaxCode(c)
	}
}

// certTaxCode returns the tax code a certificate names: the UID
// "MST:<code>" of Vietnamese certificates.
func certTaxCode(c *x509.Certificate) string {
	for _, n := range c.Subject.Names {
		if !n.Type.Equal(oidUID) {
			continue
		}
		if v, ok := n.Value.(string); ok {
			if code, ok := strings.CutPrefix(v, "MST:"); ok {
				return strings.TrimSpace(code)
			}
		}
	}
	return ""
}

// trustProblem returns why a cryptographically sound signature is not
// trusted under opt.Roots, or "".
func trustProblem(s *Signature, res *xmlsig.Result, inv *Invoice, opt VerifyOptions) string {
	if len(res.Certs) == 0 {
		return "no certificate to anchor in the configured trust roots"
	}
	at := time.Time{}
	if t, ok := parseSigTime(res.SigningTime); ok {
		at = t
	} else if opt.Now != nil {
		at = opt.Now()
	} else {
		at = time.Now()
	}
	leaf := res.Certs[0]
	inter := x509.NewCertPool()
	if opt.Intermediates != nil {
		inter = opt.Intermediates.Clone()
	}
	for _, c := range res.Certs[1:] {
		inter.AddCert(c)
	}
	if at.Before(leaf.NotBefore) || at.After(leaf.NotAfter) {
		return fmt.Sprintf("certificate not valid at signing time %s (valid %s to %s)",
			at.Format(time.RFC3339), leaf.NotBefore.Format(time.DateOnly), leaf.NotAfter.Format(time.DateOnly))
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: opt.Roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return "certificate chain not anchored in the configured trust roots: " + err.Error()
	}
	if s.Role == "seller" && s.SignerTaxCode != "" && inv.SellerTaxCode != "" && s.SignerTaxCode != inv.SellerTaxCode {
		return fmt.Sprintf("certificate tax code %s is not the seller's %s", s.SignerTaxCode, inv.SellerTaxCode)
	}
	return ""
}

var sigTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05"}

// parseSigTime reads a signing time; times without a zone are taken as
// Vietnam time (UTC+7), which is what the issuers' software writes.
func parseSigTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, l := range sigTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
		if t, err := time.ParseInLocation(l, s, time.FixedZone("ICT", 7*3600)); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// normTime writes a signing time as RFC 3339 when it has a zone, else
// as written.
func normTime(s string) string {
	if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s)); err == nil {
		return t.Format(time.RFC3339)
	}
	return strings.TrimSpace(s)
}

func readEtree(body []byte) (*etree.Document, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(bytes.TrimPrefix(body, utf8BOM)); err != nil {
		return nil, rejected("malformed XML: %v", err)
	}
	if doc.Root() == nil {
		return nil, rejected("malformed XML: no root element")
	}
	return doc, nil
}

// signatureScope finds, in an etree document, the element of inv (one
// HDon, or the document element) and its signatures in the order
// Recognize listed them.
func signatureScope(doc *etree.Document, inv *Invoice) (*etree.Element, []*etree.Element) {
	root := doc.Root()
	switch inv.Format {
	case FormatVNTT78:
		for _, h := range findEtree(root, "HDon") {
			ttc := epath(h, "DLHDon", "TTChung")
			if ttc == nil || strings.TrimSpace(text(epath(h, "DLHDon", "NDHDon", "NBan", "MST"))) != inv.SellerTaxCode ||
				strings.TrimSpace(text(epath(ttc, "KHHDon"))) != inv.Series ||
				normNumber(text(epath(ttc, "SHDon"))) != inv.Number {
				continue
			}
			var sigs []*etree.Element
			if ds := epath(h, "DSCKS"); ds != nil {
				sigs = xmlsig.Signatures(ds)
			}
			return h, sigs
		}
		return nil, nil
	case FormatVNTT32:
		var sigs []*etree.Element
		for _, k := range root.ChildElements() {
			if k.Tag == "Signature" && k.NamespaceURI() == xmlsig.Namespace {
				sigs = append(sigs, k)
			}
		}
		return root, sigs
	default:
		var sigs []*etree.Element
		if ext := epath(root, "UBLExtensions"); ext != nil {
			sigs = xmlsig.Signatures(ext)
		}
		return root, sigs
	}
}

func findEtree(el *etree.Element, tag string) []*etree.Element {
	var out []*etree.Element
	for _, k := range el.ChildElements() {
		if k.Tag == tag {
			out = append(out, k)
			continue
		}
		out = append(out, findEtree(k, tag)...)
	}
	if el.Tag == tag && el.Parent() != nil && el.Parent().Parent() == nil {
		out = append([]*etree.Element{el}, out...)
	}
	return out
}

func epath(el *etree.Element, tags ...string) *etree.Element {
	for _, t := range tags {
		if el == nil {
			return nil
		}
		var next *etree.Element
		for _, k := range el.ChildElements() {
			if k.Tag == t {
				next = k
				break
			}
		}
		el = next
	}
	return el
}

func text(el *etree.Element) string {
	if el == nil {
		return ""
	}
	return el.Text()
}

// innerBytes returns the member named by inner ("a.zip!/b.xml" for
// nested containers) or data itself when inner is "".
func innerBytes(data []byte, inner string, lim Limits) ([]byte, error) {
	if inner == "" {
		return data, nil
	}
	first, rest, _ := strings.Cut(inner, "!/")
	z, err := openZip("", data, lim)
	if err != nil {
		return nil, err
	}
	var f *zip.File = z.files[strings.TrimPrefix(first, "/")]
	if f == nil {
		return nil, fmt.Errorf("invoice container has no member %q", first)
	}
	body, err := z.member(first)
	if err != nil {
		return nil, err
	}
	return innerBytes(body, rest, lim)
}
