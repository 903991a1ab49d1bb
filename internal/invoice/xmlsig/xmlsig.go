// Package xmlsig checks enveloped XML signatures (XMLDSig) the way an
// archive needs them checked: every Reference digest and the
// SignatureValue against the key in the signature's own certificate, with
// a result per reference instead of a single yes/no, so that callers can
// tell content changes from reformatting and from a broken signing-time
// reference. It uses goxmldsig's canonicalisers; trust (chains, validity
// periods) is the caller's business: Result carries the certificates.
package xmlsig

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// Namespace is the XMLDSig namespace.
const Namespace = "http://www.w3.org/2000/09/xmldsig#"

const envelopedTransform = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

// RefResult is the check of one Reference.
type RefResult struct {
	URI string
	// InSignature is true when the reference points inside the signature
	// itself (a ds:Object such as the signing-time property).
	InSignature bool
	OK          bool
	Detail      string // why it failed
}

// Result is the check of one ds:Signature.
type Result struct {
	Algorithm   string // SignatureMethod URI
	ValueOK     bool   // SignatureValue verifies over the canonical SignedInfo
	Refs        []RefResult
	Certs       []*x509.Certificate // from KeyInfo/X509Data, leaf first when it verified
	SigningTime string              // SignatureProperty SigningTime text, if any
	// Err is set when the signature could not be checked at all (missing
	// parts, unsupported algorithms, no key).
	Err error
}

// OK reports whether the value and every reference verified.
func (r *Result) OK() bool {
	if r.Err != nil || !r.ValueOK {
		return false
	}
	for _, ref := range r.Refs {
		if !ref.OK {
			return false
		}
	}
	return true
}

// Verify checks the signature element sig. References ("#id") are looked
// up first inside scope (the signed document part, e.g. one HDon), then
// in the whole document. A reference whose target lies inside sig itself
// is canonicalised standalone even when it declares the enveloped-signature
// transform, as .NET SignedXml (the Vietnamese issuers' software) does.
func Verify(sig, scope *etree.Element) *Result {
	res := &Result{}
	si := child(sig, "SignedInfo")
	if si == nil {
		res.Err = errors.New("signature has no SignedInfo")
		return res
	}
	res.Algorithm = attr(child(si, "SignatureMethod"), "Algorithm")
	if st := find(sig, "SigningTime"); st != nil {
		res.SigningTime = strings.TrimSpace(text(st))
	}
	for _, ref := range children(si, "Reference") {
		res.Refs = append(res.Refs, checkRef(sig, scope, ref))
	}
	certs, err := certificates(sig)
	if err != nil {
		res.Err = err
		return res
	}
	res.Certs = certs
	c14n, err := canonicalizer(child(si, "CanonicalizationMethod"))
	if err != nil {
		res.Err = err
		return res
	}
	signed, err := c14n.Canonicalize(detach(si))
	if err != nil {
		res.Err = fmt.Errorf("canonicalising SignedInfo: %w", err)
		return res
	}
	value, err := base64.StdEncoding.DecodeString(compact(text(child(sig, "SignatureValue"))))
	if err != nil {
		res.Err = fmt.Errorf("SignatureValue is not base64: %w", err)
		return res
	}
	var pub []crypto.PublicKey
	for _, c := range certs {
		pub = append(pub, c.PublicKey)
	}
	if k := rsaKeyValue(sig); k != nil {
		pub = append(pub, k)
	}
	if len(pub) == 0 {
		res.Err = errors.New("signature carries no certificate or key")
		return res
	}
	for i, k := range pub {
		ok, err := checkValue(res.Algorithm, k, signed, value)
		if err != nil {
			res.Err = err
			return res
		}
		if ok {
			res.ValueOK = true
			if i > 0 && i < len(certs) { // put the signing certificate first
				res.Certs[0], res.Certs[i] = res.Certs[i], res.Certs[0]
			}
			break
		}
	}
	return res
}

func checkRef(sig, scope, ref *etree.Element) RefResult {
	uri := attr(ref, "URI")
	rr := RefResult{URI: uri}
	var target *etree.Element
	switch {
	case uri == "":
		target = scope
		for target.Parent() != nil && target.Parent().Parent() != nil {
			target = target.Parent()
		}
	case strings.HasPrefix(uri, "#"):
		id := uri[1:]
		if target = byID(sig, id); target != nil {
			rr.InSignature = true
		} else if target = byID(scope, id); target == nil {
			target = byID(root(scope), id)
		}
	default:
		rr.Detail = "external reference " + uri + " not followed"
		return rr
	}
	if target == nil {
		rr.Detail = "reference target " + uri + " not found"
		return rr
	}
	el := detach(target)
	var c14n dsig.Canonicalizer = dsig.MakeC14N10RecCanonicalizer()
	for _, tr := range children(child(ref, "Transforms"), "Transform") {
		alg := attr(tr, "Algorithm")
		if alg == envelopedTransform {
			if !rr.InSignature {
				removeSignature(el, sig)
			}
			continue
		}
		c, err := canonicalizer(tr)
		if err != nil {
			rr.Detail = err.Error()
			return rr
		}
		c14n = c
	}
	canon, err := c14n.Canonicalize(el)
	if err != nil {
		rr.Detail = "canonicalising: " + err.Error()
		return rr
	}
	h, err := digestHash(attr(child(ref, "DigestMethod"), "Algorithm"))
	if err != nil {
		rr.Detail = err.Error()
		return rr
	}
	want, err := base64.StdEncoding.DecodeString(compact(text(child(ref, "DigestValue"))))
	if err != nil {
		rr.Detail = "DigestValue is not base64"
		return rr
	}
	hh := h.New()
	hh.Write(canon)
	if !bytes.Equal(hh.Sum(nil), want) {
		rr.Detail = "digest of " + uri + " does not match"
		return rr
	}
	rr.OK = true
	return rr
}

// removeSignature drops, from the detached copy el, the element that
// corresponds to sig (same path of child indexes below the target).
func removeSignature(el, sig *etree.Element) {
	// Find sig's path relative to the original target by matching the
	// signature's SignatureValue text, which is unique.
	want := compact(text(child(sig, "SignatureValue")))
	var drop func(e *etree.Element) bool
	drop = func(e *etree.Element) bool {
		for _, k := range e.ChildElements() {
			if k.Tag == sig.Tag && k.Space == sig.Space && compact(text(child(k, "SignatureValue"))) == want {
				e.RemoveChild(k)
				return true
			}
			if drop(k) {
				return true
			}
		}
		return false
	}
	drop(el)
}

// detach copies el and declares on the copy every namespace in scope at
// el, so that it canonicalises the same outside its document.
func detach(el *etree.Element) *etree.Element {
	cp := el.Copy()
	declared := map[string]bool{}
	for _, a := range cp.Attr {
		if a.Space == "xmlns" {
			declared[a.Key] = true
		} else if a.Space == "" && a.Key == "xmlns" {
			declared[""] = true
		}
	}
	for p := el.Parent(); p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			var prefix string
			switch {
			case a.Space == "xmlns":
				prefix = a.Key
			case a.Space == "" && a.Key == "xmlns":
				prefix = ""
			default:
				continue
			}
			if declared[prefix] {
				continue
			}
			declared[prefix] = true
			if prefix == "" {
				if a.Value != "" {
					cp.CreateAttr("xmlns", a.Value)
				}
			} else {
				cp.CreateAttr("xmlns:"+prefix, a.Value)
			}
		}
	}
	return cp
}

func canonicalizer(m *etree.Element) (dsig.Canonicalizer, error) {
	alg := attr(m, "Algorithm")
	prefixes := ""
	if inc := child(m, "InclusiveNamespaces"); inc != nil {
		prefixes = attr(inc, "PrefixList")
	}
	switch dsig.AlgorithmID(alg) {
	case dsig.CanonicalXML10RecAlgorithmId:
		return dsig.MakeC14N10RecCanonicalizer(), nil
	case dsig.CanonicalXML10WithCommentsAlgorithmId:
		return dsig.MakeC14N10WithCommentsCanonicalizer(), nil
	case dsig.CanonicalXML10ExclusiveAlgorithmId:
		return dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList(prefixes), nil
	case dsig.CanonicalXML10ExclusiveWithCommentsAlgorithmId:
		return dsig.MakeC14N10ExclusiveWithCommentsCanonicalizerWithPrefixList(prefixes), nil
	case dsig.CanonicalXML11AlgorithmId:
		return dsig.MakeC14N11Canonicalizer(), nil
	case dsig.CanonicalXML11WithCommentsAlgorithmId:
		return dsig.MakeC14N11WithCommentsCanonicalizer(), nil
	}
	return nil, fmt.Errorf("unsupported canonicalisation or transform %q", alg)
}

func digestHash(alg string) (crypto.Hash, error) {
	switch alg {
	case "http://www.w3.org/2000/09/xmldsig#sha1":
		return crypto.SHA1, nil
	case "http://www.w3.org/2001/04/xmlenc#sha256":
		return crypto.SHA256, nil
	case "http://www.w3.org/2001/04/xmldsig-more#sha384":
		return crypto.SHA384, nil
	case "http://www.w3.org/2001/04/xmlenc#sha512":
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("unsupported digest algorithm %q", alg)
}

// sigAlgs maps SignatureMethod URIs to key type and hash.
var sigAlgs = map[string]struct {
	ecdsa bool
	hash  crypto.Hash
}{
	"http://www.w3.org/2000/09/xmldsig#rsa-sha1":          {false, crypto.SHA1},
	"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256":   {false, crypto.SHA256},
	"http://www.w3.org/2001/04/xmldsig-more#rsa-sha384":   {false, crypto.SHA384},
	"http://www.w3.org/2001/04/xmldsig-more#rsa-sha512":   {false, crypto.SHA512},
	"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1":   {true, crypto.SHA1},
	"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": {true, crypto.SHA256},
	"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": {true, crypto.SHA384},
	"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": {true, crypto.SHA512},
}

// checkValue verifies an RSA PKCS#1 v1.5 or ECDSA (r||s) signature value.
func checkValue(alg string, key crypto.PublicKey, signed, value []byte) (bool, error) {
	a, ok := sigAlgs[alg]
	if !ok {
		return false, fmt.Errorf("unsupported signature algorithm %q", alg)
	}
	h := a.hash.New()
	h.Write(signed)
	sum := h.Sum(nil)
	switch k := key.(type) {
	case *rsa.PublicKey:
		return !a.ecdsa && rsa.VerifyPKCS1v15(k, a.hash, sum, value) == nil, nil
	case *ecdsa.PublicKey:
		if !a.ecdsa || len(value)%2 != 0 {
			return false, nil
		}
		n := len(value) / 2
		r, s := new(big.Int).SetBytes(value[:n]), new(big.Int).SetBytes(value[n:])
		return ecdsa.Verify(k, sum, r, s), nil
	}
	return false, nil
}

func certificates(sig *etree.Element) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, xd := range children(child(sig, "KeyInfo"), "X509Data") {
		for _, c := range children(xd, "X509Certificate") {
			der, err := base64.StdEncoding.DecodeString(compact(text(c)))
			if err != nil {
				return nil, fmt.Errorf("X509Certificate is not base64: %w", err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("unreadable X509Certificate: %w", err)
			}
			out = append(out, cert)
		}
	}
	return out, nil
}

func rsaKeyValue(sig *etree.Element) *rsa.PublicKey {
	kv := find(child(sig, "KeyInfo"), "RSAKeyValue")
	if kv == nil {
		return nil
	}
	m, err1 := base64.StdEncoding.DecodeString(compact(text(child(kv, "Modulus"))))
	e, err2 := base64.StdEncoding.DecodeString(compact(text(child(kv, "Exponent"))))
	if err1 != nil || err2 != nil || len(e) > 4 || len(m) == 0 {
		return nil
	}
	exp := new(big.Int).SetBytes(e)
	return &rsa.PublicKey{N: new(big.Int).SetBytes(m), E: int(exp.Int64())}
}

// NormalizeWhitespace removes whitespace-only text between elements in
// the tree below el (in place): what re-indenting a signed file adds.
func NormalizeWhitespace(el *etree.Element) {
	if len(el.ChildElements()) > 0 {
		for _, tok := range append([]etree.Token(nil), el.Child...) {
			if cd, ok := tok.(*etree.CharData); ok && strings.TrimSpace(cd.Data) == "" {
				el.RemoveChild(cd)
			}
		}
	}
	for _, k := range el.ChildElements() {
		NormalizeWhitespace(k)
	}
}

// Signatures returns the ds:Signature elements below el in document order
// (not looking inside a signature).
func Signatures(el *etree.Element) []*etree.Element {
	var out []*etree.Element
	var walk func(*etree.Element)
	walk = func(e *etree.Element) {
		for _, k := range e.ChildElements() {
			if k.Tag == "Signature" && k.NamespaceURI() == Namespace {
				out = append(out, k)
				continue
			}
			walk(k)
		}
	}
	walk(el)
	return out
}

func child(el *etree.Element, tag string) *etree.Element {
	if el == nil {
		return nil
	}
	for _, k := range el.ChildElements() {
		if k.Tag == tag {
			return k
		}
	}
	return nil
}

func children(el *etree.Element, tag string) []*etree.Element {
	if el == nil {
		return nil
	}
	var out []*etree.Element
	for _, k := range el.ChildElements() {
		if k.Tag == tag {
			out = append(out, k)
		}
	}
	return out
}

func find(el *etree.Element, tag string) *etree.Element {
	if el == nil {
		return nil
	}
	for _, k := range el.ChildElements() {
		if k.Tag == tag {
			return k
		}
		if f := find(k, tag); f != nil {
			return f
		}
	}
	return nil
}

func byID(el *etree.Element, id string) *etree.Element {
	if el == nil {
		return nil
	}
	for _, a := range []string{"Id", "ID", "id"} {
		if el.SelectAttrValue(a, "\x00") == id {
			return el
		}
	}
	for _, k := range el.ChildElements() {
		if f := byID(k, id); f != nil {
			return f
		}
	}
	return nil
}

func root(el *etree.Element) *etree.Element {
	for el.Parent() != nil && el.Parent().Parent() != nil {
		el = el.Parent()
	}
	return el
}

func compact(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
}

// attr and text are nil-safe accessors: a missing element reads as "".
func attr(el *etree.Element, name string) string {
	if el == nil {
		return ""
	}
	return el.SelectAttrValue(name, "")
}

func text(el *etree.Element) string {
	if el == nil {
		return ""
	}
	return el.Text()
}
