package invoice

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// This file signs invoices the way Vietnamese issuing software does
// (enveloped XMLDSig over DLHDon plus a SigningTime ds:Object that is
// digested standalone), so that every signature status is covered in CI
// without redistributing real invoices.

type testSigner struct {
	key  crypto.Signer
	cert *x509.Certificate
	der  []byte
}

type testPKI struct {
	caKey   *ecdsa.PrivateKey
	ca      *x509.Certificate
	other   *x509.Certificate // an unrelated CA
	sellers map[string]*testSigner
	mu      sync.Mutex
}

var (
	pkiOnce sync.Once
	pki     *testPKI
)

func newCA(t testing.TB, name string) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return k, c
}

func getPKI(t testing.TB) *testPKI {
	pkiOnce.Do(func() {
		p := &testPKI{sellers: map[string]*testSigner{}}
		p.caKey, p.ca = newCA(t, "Test CA")
		_, p.other = newCA(t, "Other CA")
		pki = p
	})
	return pki
}

// signer returns a certificate for tax code mst ("MST:<mst>" in UID),
// valid in [from, to), with an RSA or ECDSA key.
func (p *testPKI) signer(t testing.TB, mst string, from, to time.Time, ec bool) *testSigner {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	id := fmt.Sprintf("%s|%s|%s|%v", mst, from, to, ec)
	if s := p.sellers[id]; s != nil {
		return s
	}
	var key crypto.Signer
	var err error
	if ec {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 1024)
	}
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(len(p.sellers) + 2)),
		Subject: pkix.Name{CommonName: "CÔNG TY TEST " + mst, ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, Value: "MST:" + mst}}},
		NotBefore: from, NotAfter: to, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, key.Public(), p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	s := &testSigner{key: key, cert: c, der: der}
	p.sellers[id] = s
	return s
}

// hdonXML is an unsigned Circular 78 invoice with an empty DSCKS.
func hdonXML(mst, series string, number int, mccqt bool) string {
	m := ""
	if mccqt {
		m = `<MCCQT Id="mccqt">00ABCDEF0123456789ABCDEF0123456789</MCCQT>`
	}
	return fmt.Sprintf(`<HDon><DLHDon Id="data"><TTChung><PBan>2.0.1</PBan><THDon>Hóa đơn giá trị gia tăng</THDon>`+
		`<KHMSHDon>1</KHMSHDon><KHHDon>%s</KHHDon><SHDon>%d</SHDon><NLap>2024-03-05</NLap><DVTTe>VND</DVTTe><TGia>1</TGia></TTChung>`+
		`<NDHDon><NBan><Ten>Công ty Bán</Ten><MST>%s</MST></NBan><NMua><Ten>Công ty Mua</Ten><MST>0100000001</MST></NMua>`+
		`<DSHHDVu><HHDVu><STT>1</STT><THHDVu>Dịch vụ</THHDVu><ThTien>1000000</ThTien><TSuat>10%%</TSuat></HHDVu></DSHHDVu>`+
		`<TToan><TgTCThue>1000000</TgTCThue><TgTThue>100000</TgTThue><TgTTTBSo>1100000</TgTTTBSo></TToan></NDHDon></DLHDon>%s`+
		`<DSCKS><NBan/></DSCKS></HDon>`, series, number, mst, m)
}

// signVN adds a signature under DSCKS/<holder> of the HDon in doc,
// covering DLHDon, its own SigningTime object and the extra ids.
func signVN(t testing.TB, doc *etree.Document, holder string, s *testSigner, at time.Time, extra ...string) {
	t.Helper()
	hdon := findEtree(doc.Root(), "HDon")[0]
	ds := epath(hdon, "DSCKS")
	h := epath(ds, holder)
	if h == nil {
		h = ds.CreateElement(holder)
	}
	n := len(findEtree(doc.Root(), "Signature"))
	objID, sigID := fmt.Sprintf("st%d", n), fmt.Sprintf("sig%d", n)
	method := "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	if _, ok := s.key.(*ecdsa.PrivateKey); ok {
		method = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
	}
	sig := h.CreateElement("Signature")
	sig.CreateAttr("xmlns", dsig.Namespace)
	sig.CreateAttr("Id", sigID)
	si := sig.CreateElement("SignedInfo")
	si.CreateElement("CanonicalizationMethod").CreateAttr("Algorithm", string(dsig.CanonicalXML10RecAlgorithmId))
	si.CreateElement("SignatureMethod").CreateAttr("Algorithm", method)
	sig.CreateElement("SignatureValue")
	sig.CreateElement("KeyInfo").CreateElement("X509Data").CreateElement("X509Certificate").SetText(base64.StdEncoding.EncodeToString(s.der))
	obj := sig.CreateElement("Object")
	obj.CreateAttr("Id", objID)
	sp := obj.CreateElement("SignatureProperties").CreateElement("SignatureProperty")
	sp.CreateAttr("Target", "#"+sigID)
	sp.CreateElement("SigningTime").SetText(at.Format("2006-01-02T15:04:05"))
	excl := dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	digest := func(el *etree.Element) string {
		cp := el.Copy()
		if el == obj { // standalone, carrying the inherited default namespace
			cp.CreateAttr("xmlns", dsig.Namespace)
		}
		b, err := excl.Canonicalize(cp)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		return base64.StdEncoding.EncodeToString(sum[:])
	}
	addRef := func(uri string, target *etree.Element) {
		ref := si.CreateElement("Reference")
		ref.CreateAttr("URI", "#"+uri)
		tr := ref.CreateElement("Transforms")
		tr.CreateElement("Transform").CreateAttr("Algorithm", envelopedAlg)
		tr.CreateElement("Transform").CreateAttr("Algorithm", string(dsig.CanonicalXML10ExclusiveAlgorithmId))
		ref.CreateElement("DigestMethod").CreateAttr("Algorithm", "http://www.w3.org/2001/04/xmlenc#sha256")
		ref.CreateElement("DigestValue").SetText(digest(target))
	}
	addRef("data", epath(hdon, "DLHDon"))
	addRef(objID, obj)
	for _, id := range extra {
		addRef(id, hdon.FindElement(fmt.Sprintf("//*[@Id='%s']", id)))
	}
	cp := si.Copy()
	cp.CreateAttr("xmlns", dsig.Namespace)
	canon, err := dsig.MakeC14N10RecCanonicalizer().Canonicalize(cp)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(canon)
	var value []byte
	switch k := s.key.(type) {
	case *rsa.PrivateKey:
		value, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	case *ecdsa.PrivateKey:
		var r, ss *big.Int
		r, ss, err = ecdsa.Sign(rand.Reader, k, sum[:])
		value = append(r.FillBytes(make([]byte, 32)), ss.FillBytes(make([]byte, 32))...)
	}
	if err != nil {
		t.Fatal(err)
	}
	epath(sig, "SignatureValue").SetText(base64.StdEncoding.EncodeToString(value))
}

const envelopedAlg = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

func mustDoc(t testing.TB, s string) *etree.Document {
	t.Helper()
	d := etree.NewDocument()
	if err := d.ReadFromString(s); err != nil {
		t.Fatal(err)
	}
	return d
}

func docBytes(t testing.TB, d *etree.Document) []byte {
	t.Helper()
	b, err := d.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signedInvoice returns a seller-signed invoice and, when cqt, the same
// invoice coded and signed by the tax authority inside a TDiep 202.
func signedInvoice(t testing.TB, mst string, seller *testSigner, cqt *testSigner, at time.Time) []byte {
	t.Helper()
	doc := mustDoc(t, hdonXML(mst, "C24TAA", 42, cqt != nil))
	signVN(t, doc, "NBan", seller, at)
	if cqt != nil {
		signVN(t, doc, "CQT", cqt, at.Add(time.Minute), "mccqt")
		wrapped := mustDoc(t, `<TDiep><TTChung><PBan>2.0.1</PBan><MLTDiep>202</MLTDiep><MST>`+mst+`</MST></TTChung><DLieu/></TDiep>`)
		epath(wrapped.Root(), "DLieu").AddChild(doc.Root())
		return docBytes(t, wrapped)
	}
	return docBytes(t, doc)
}

func TestVerifyGenerated(t *testing.T) {
	p := getPKI(t)
	const mst = "0312345678"
	signAt := testTime
	valid := p.signer(t, mst, signAt.AddDate(-1, 0, 0), signAt.AddDate(1, 0, 0), false)
	ecSigner := p.signer(t, mst, signAt.AddDate(-1, 0, 0), signAt.AddDate(1, 0, 0), true)
	expired := p.signer(t, mst, signAt.AddDate(-3, 0, 0), signAt.AddDate(0, 0, -1), false)
	wrongMST := p.signer(t, "0399999999", signAt.AddDate(-1, 0, 0), signAt.AddDate(1, 0, 0), false)
	gdt := p.signer(t, "TCT", signAt.AddDate(-1, 0, 0), signAt.AddDate(1, 0, 0), false)

	base := signedInvoice(t, mst, valid, nil, signAt)
	edit := func(old, new string) []byte {
		t.Helper()
		if !strings.Contains(string(base), old) {
			t.Fatalf("%q not in the signed invoice", old)
		}
		return []byte(strings.Replace(string(base), old, new, 1))
	}
	reindented := func(b []byte) []byte {
		d := mustDoc(t, string(b))
		d.Indent(2)
		return append([]byte("\xEF\xBB\xBF"), docBytes(t, d)...)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.ca)
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(p.other)

	tests := []struct {
		name  string
		data  []byte
		roots *x509.CertPool
		want  []SigStatus
	}{
		{"valid", base, nil, []SigStatus{SigValid}},
		{"ecdsa", signedInvoice(t, mst, ecSigner, nil, signAt), nil, []SigStatus{SigValid}},
		{"reindented", reindented(base), nil, []SigStatus{SigReformatted}},
		{"buyer changed", edit("<Ten>Công ty Mua</Ten>", "<Ten>Công ty Khác</Ten>"), nil, []SigStatus{SigAltered}},
		{"total changed", edit("<TgTTTBSo>1100000</TgTTTBSo>", "<TgTTTBSo>1100001</TgTTTBSo>"), nil, []SigStatus{SigAltered}},
		{"reindented and changed", reindented(edit("<SHDon>42</SHDon><NLap>2024-03-05", "<SHDon>42</SHDon><NLap>2024-03-06")), nil, []SigStatus{SigAltered}},
		{"signing time changed", edit(">2024-03-05T10:00:00<", ">2024-03-05T11:00:00<"), nil, []SigStatus{SigPartial}},
		{"signature value broken", editSigValue(t, base), nil, []SigStatus{SigAltered}},
		{"tdiep 202 with tax authority", signedInvoice(t, mst, valid, gdt, signAt), nil, []SigStatus{SigValid, SigValid}},
		{"tdiep 202 reindented", reindented(signedInvoice(t, mst, valid, gdt, signAt)), nil, []SigStatus{SigReformatted, SigReformatted}},
		{"trusted", base, roots, []SigStatus{SigValid}},
		{"chain not anchored", base, otherRoots, []SigStatus{SigUntrusted}},
		{"expired at signing time", signedInvoice(t, mst, expired, nil, signAt), roots, []SigStatus{SigUntrusted}},
		{"expired but roots not configured", signedInvoice(t, mst, expired, nil, signAt), nil, []SigStatus{SigValid}},
		{"certificate of another tax code", signedInvoice(t, mst, wrongMST, nil, signAt), roots, []SigStatus{SigUntrusted}},
		{"altered stays altered with roots", edit("<Ten>Công ty Mua</Ten>", "<Ten>X</Ten>"), roots, []SigStatus{SigAltered}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			invs, err := Recognize(t.Context(), tc.name, tc.data, Limits{})
			if err != nil || len(invs) != 1 {
				t.Fatalf("Recognize: %d invoices, %v", len(invs), err)
			}
			inv := &invs[0]
			if inv.Key() != mst+"/1/C24TAA/42" {
				t.Fatalf("key %s", inv.Key())
			}
			for _, s := range inv.Signatures {
				if s.Status != SigPending {
					t.Fatalf("before verification: %s", s.Status)
				}
			}
			err = VerifySignatures(t.Context(), tc.data, inv, VerifyOptions{Roots: tc.roots})
			if err != nil {
				t.Fatal(err)
			}
			if len(inv.Signatures) != len(tc.want) {
				t.Fatalf("%d signatures, want %d", len(inv.Signatures), len(tc.want))
			}
			for i, s := range inv.Signatures {
				if s.Status != tc.want[i] {
					t.Errorf("signature %d (%s): %s (%s), want %s", i, s.Role, s.Status, s.Detail, tc.want[i])
				}
				if s.Status != SigValid && s.Detail == "" {
					t.Errorf("signature %d: status %s without a detail", i, s.Status)
				}
			}
			s := inv.Signatures[0]
			if s.Role != "seller" || s.SigningTime != "2024-03-05T10:00:00" && tc.name != "signing time changed" {
				t.Errorf("seller signature: role %q signing time %q", s.Role, s.SigningTime)
			}
			if len(inv.Signatures) == 2 && inv.Signatures[1].Role != "tax-authority" {
				t.Errorf("second signature role %q", inv.Signatures[1].Role)
			}
			if !strings.HasPrefix(s.Signer, "CÔNG TY TEST") || s.SignerTaxCode == "" {
				t.Errorf("signer %q tax code %q", s.Signer, s.SignerTaxCode)
			}
			if got, want := inv.SigStatus(), worstOf(tc.want); got != want {
				t.Errorf("overall %s, want %s", got, want)
			}
		})
	}
}

func worstOf(s []SigStatus) SigStatus {
	w := SigValid
	for _, x := range s {
		w = Worse(w, x)
	}
	return w
}

// editSigValue flips one character of the first SignatureValue.
func editSigValue(t testing.TB, b []byte) []byte {
	t.Helper()
	s := string(b)
	i := strings.Index(s, "<SignatureValue>")
	if i < 0 {
		t.Fatal("no SignatureValue")
	}
	i += len("<SignatureValue>") + 5
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return []byte(s[:i] + string(c) + s[i+1:])
}

func TestVerifyUnsignedAndChinese(t *testing.T) {
	data := []byte(hdonXML("0312345678", "K24TAA", 7, false))
	invs, err := Recognize(t.Context(), "u.xml", data, Limits{})
	if err != nil || len(invs) != 1 {
		t.Fatal(invs, err)
	}
	if err := VerifySignatures(t.Context(), data, &invs[0], VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	if st := invs[0].SigStatus(); st != SigUnsigned {
		t.Errorf("unsigned invoice: %s", st)
	}
}

var testTime = time.Date(2024, 3, 5, 10, 0, 0, 0, time.FixedZone("ICT", 7*3600))
