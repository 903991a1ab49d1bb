package xmlsig

import (
	"testing"

	"github.com/beevik/etree"
)

// FuzzVerify: checking any signature-shaped document never panics and a
// result that claims OK has a verified value and only passing references.
func FuzzVerify(f *testing.F) {
	f.Add([]byte(`<r><d Id="a">x</d><Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo>` +
		`<CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>` +
		`<SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/><Reference URI="#a">` +
		`<DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/><DigestValue>AAAA</DigestValue></Reference>` +
		`</SignedInfo><SignatureValue>AAAA</SignatureValue></Signature></r>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc := etree.NewDocument()
		doc.ReadSettings.MaxDepth = 64
		if err := doc.ReadFromBytes(data); err != nil || doc.Root() == nil {
			return
		}
		NormalizeWhitespace(doc.Root())
		for _, sig := range Signatures(doc.Root()) {
			res := Verify(sig, doc.Root())
			if res.OK() {
				if !res.ValueOK || res.Err != nil {
					t.Fatal("OK without a verified value")
				}
				for _, r := range res.Refs {
					if !r.OK {
						t.Fatal("OK with a failing reference")
					}
				}
			}
		}
	})
}

func TestVerifyMissingParts(t *testing.T) {
	for name, xml := range map[string]string{
		"no SignedInfo":   `<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"/>`,
		"no key":          `<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo><CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/></SignedInfo><SignatureValue>AAAA</SignatureValue></Signature>`,
		"bad c14n":        `<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo><CanonicalizationMethod Algorithm="urn:x"/></SignedInfo><SignatureValue>AAAA</SignatureValue><KeyInfo><KeyValue><RSAKeyValue><Modulus>AQAB</Modulus><Exponent>AQAB</Exponent></RSAKeyValue></KeyValue></KeyInfo></Signature>`,
		"bad certificate": `<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo/><SignatureValue>AAAA</SignatureValue><KeyInfo><X509Data><X509Certificate>AAAA</X509Certificate></X509Data></KeyInfo></Signature>`,
	} {
		doc := etree.NewDocument()
		if err := doc.ReadFromString(xml); err != nil {
			t.Fatal(err)
		}
		res := Verify(doc.Root(), doc.Root())
		if res.Err == nil || res.OK() {
			t.Errorf("%s: %+v", name, res)
		}
	}
}
