package invoice

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// zipReader bounds what one archive may cost: entries, the bytes
// decompressed in all, and each member's compression ratio.
type zipReader struct {
	zr    *zip.Reader
	lim   Limits
	name  string
	spent int64
	files map[string]*zip.File
}

func openZip(name string, data []byte, lim Limits) (*zipReader, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, rejected("unreadable ZIP archive: %v", err)
	}
	if len(zr.File) > lim.MaxEntries {
		return nil, rejected("ZIP archive with %d entries exceeds the limit of %d", len(zr.File), lim.MaxEntries)
	}
	z := &zipReader{zr: zr, lim: lim, name: name, files: make(map[string]*zip.File, len(zr.File))}
	for _, f := range zr.File {
		if f.UncompressedSize64 > 1<<20 && f.CompressedSize64 > 0 &&
			f.UncompressedSize64/f.CompressedSize64 > uint64(lim.MaxZipRatio) {
			return nil, rejected("ZIP member %q expands %d:1 (zip bomb?)", f.Name, f.UncompressedSize64/f.CompressedSize64)
		}
		z.files[strings.TrimPrefix(f.Name, "/")] = f
	}
	return z, nil
}

// read returns up to max bytes of a member (the whole member when it is
// smaller), counting them against MaxZipBytes. full reports whether the
// member was read to its end.
func (z *zipReader) read(f *zip.File, max int64) (data []byte, full bool, err error) {
	rc, err := f.Open()
	if err != nil {
		return nil, false, rejected("ZIP member %q: %v", f.Name, err)
	}
	defer rc.Close()
	data, err = io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, false, rejected("ZIP member %q: %v", f.Name, err)
	}
	full = int64(len(data)) <= max
	if !full {
		data = data[:max]
	}
	z.spent += int64(len(data))
	if z.spent > z.lim.MaxZipBytes {
		return nil, false, rejected("ZIP archive expands to more than %d bytes", z.lim.MaxZipBytes)
	}
	return data, full, nil
}

// member reads a whole member that must fit MaxBytes.
func (z *zipReader) member(name string) ([]byte, error) {
	f := z.files[strings.TrimPrefix(name, "/")]
	if f == nil {
		return nil, fmt.Errorf("%s: no member %q", z.name, name)
	}
	data, full, err := z.read(f, z.lim.MaxBytes)
	if err != nil {
		return nil, err
	}
	if !full {
		return nil, rejected("ZIP member %q is larger than %d bytes", name, z.lim.MaxBytes)
	}
	return data, nil
}

// recognizeZip handles OFD files (a ZIP with OFD.xml) and plain ZIP
// archives: every member that sniffs as an invoice is recognised, with
// Inner set to its path.
func recognizeZip(ctx context.Context, name string, data []byte, lim Limits, depth int) ([]Invoice, error) {
	z, err := openZip(name, data, lim)
	if err != nil {
		return nil, err
	}
	if z.files["OFD.xml"] != nil {
		return recognizeOFD(ctx, z)
	}
	var out []Invoice
	for _, f := range z.zr.File {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if f.FileInfo().IsDir() {
			continue
		}
		head, full, err := z.read(f, sniffWindow)
		if err != nil {
			return nil, err
		}
		if !isZip(head) {
			if root, ok := sniffRoot(head); !ok || !rootNames[root] {
				continue
			}
		}
		body := head
		if !full {
			if body, err = z.member(f.Name); err != nil {
				return nil, err
			}
		}
		invs, err := recognize(ctx, name+"/"+f.Name, body, lim, depth)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		for i := range invs {
			invs[i].Inner = joinInner(f.Name, invs[i].Inner)
		}
		out = append(out, invs...)
	}
	return out, nil
}

// joinInner builds the path of a member inside nested containers:
// "outer.zip!/inner.xml" style, with "!/" between container levels.
func joinInner(member, inner string) string {
	if inner == "" {
		return member
	}
	return member + "!/" + inner
}

// recognizeOFD reads the invoice XML attachments of an OFD (Doc_N/Attachs)
// and, when there is none (数电票 OFD), the identity fields OFD.xml keeps in
// CustomDatas. Electronic seals (Signs/) are listed as signatures.
func recognizeOFD(ctx context.Context, z *zipReader) ([]Invoice, error) {
	ofdXML, err := z.member("OFD.xml")
	if err != nil {
		return nil, err
	}
	ofd, err := parseXML(ctx, ofdXML, z.lim)
	if err != nil {
		return nil, fmt.Errorf("OFD.xml: %w", err)
	}
	var out []Invoice
	names := make([]string, 0, len(z.files))
	for n := range z.files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		dir := path.Dir(n)
		if path.Base(dir) != "Attachs" || !strings.EqualFold(path.Ext(n), ".xml") || path.Base(n) == "Attachments.xml" {
			continue
		}
		body, err := z.member(n)
		if err != nil {
			return nil, err
		}
		root, ok := sniffRoot(body)
		if !ok || !rootNames[root] {
			continue
		}
		doc, err := parseXML(ctx, body, z.lim)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		for _, inv := range extract(doc) {
			inv.Inner = n
			out = append(out, inv)
		}
	}
	if len(out) == 0 {
		if inv, ok := ofdCustomData(ofd); ok {
			inv.Inner = "OFD.xml"
			out = append(out, inv)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	seals, err := ofdSeals(ctx, z, ofd)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Signatures = append(out[i].Signatures, seals...)
	}
	return out, nil
}

// ofdCustomData builds an invoice from OFD.xml DocInfo/CustomDatas.
func ofdCustomData(ofd *node) (Invoice, bool) {
	cd := map[string]string{}
	if c := ofd.path("DocBody", "DocInfo", "CustomDatas"); c != nil {
		for _, k := range c.kids {
			cd[k.attr("Name")] = strings.TrimSpace(k.txt())
		}
	}
	num := cd["发票号码"]
	if num == "" {
		return Invoice{}, false
	}
	inv := Invoice{
		Format:        FormatCNVAT,
		Kind:          "invoice",
		SellerTaxCode: cd["销售方纳税人识别号"],
		BuyerTaxCode:  cd["购买方纳税人识别号"],
		Series:        cd["发票代码"],
		Number:        num,
		IssueDate:     cnDate(cd["开票日期"]),
		AuthorityCode: strings.ReplaceAll(cd["校验码"], " ", ""),
		Currency:      "CNY",
		TotalNet:      cd["合计金额"],
		TotalTax:      cd["合计税额"],
	}
	if inv.Series == "" && len(num) == 20 {
		inv.Format = FormatCNSDP
	}
	return inv, true
}

// ofdSeals lists the electronic seals named by the Signatures.xml files
// of the package; Chinese SM2 seals are not verified here.
func ofdSeals(ctx context.Context, z *zipReader, ofd *node) ([]Signature, error) {
	var lists []string
	for _, n := range ofd.findAll("", "Signatures") {
		if t := strings.TrimSpace(n.txt()); t != "" {
			lists = append(lists, t)
		}
	}
	if len(lists) == 0 {
		for n := range z.files {
			if path.Base(n) == "Signatures.xml" && path.Base(path.Dir(n)) == "Signs" {
				lists = append(lists, n)
			}
		}
		sort.Strings(lists)
	}
	var out []Signature
	for _, l := range lists {
		body, err := z.member(l)
		if err != nil {
			continue // a dangling reference is not an invoice problem
		}
		doc, err := parseXML(ctx, body, z.lim)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l, err)
		}
		for _, s := range doc.findAll("", "Signature") {
			loc := s.attr("BaseLoc")
			if !strings.HasPrefix(loc, "/") {
				loc = path.Join(path.Dir(l), loc)
			}
			sig := Signature{Role: "seller", Status: SigPending, Algorithm: "sm2"}
			if sb, err := z.member(loc); err == nil {
				if sd, err := parseXML(ctx, sb, z.lim); err == nil {
					si := sd.child("SignedInfo")
					sig.Algorithm = cnAlg(si.str("SignatureMethod"))
					sig.SigningTime = si.str("SignatureDateTime")
					if p := si.child("Provider"); p != nil {
						sig.Detail = "seal provider " + p.attr("ProviderName")
					}
				}
			}
			out = append(out, sig)
		}
	}
	return out, nil
}
