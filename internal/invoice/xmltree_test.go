package invoice

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// refTree parses with encoding/xml into the same shape (local names and
// direct text), as a reference for the scanner.
func refTree(data []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(bytes.TrimPrefix(data, utf8BOM)))
	d.Strict = true
	var root *node
	var stack []*node
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{space: t.Name.Space, name: t.Name.Local}
			if len(stack) == 0 {
				root = n
			} else {
				stack[len(stack)-1].kids = append(stack[len(stack)-1].kids, n)
			}
			if skipped[n.name] { // the scanner jumps over these contents
				if err := d.Skip(); err != nil {
					return nil, err
				}
				continue
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].raw = append(stack[len(stack)-1].raw, t...)
			}
		case xml.Directive:
			return nil, errors.New("directive")
		}
	}
	if root == nil {
		return nil, errors.New("no root")
	}
	return root, nil
}

func sameTree(a, b *node) bool {
	if a.name != b.name || a.space != b.space || squash(a.txt()) != squash(b.txt()) || len(a.kids) != len(b.kids) {
		return false
	}
	for i := range a.kids {
		if !sameTree(a.kids[i], b.kids[i]) {
			return false
		}
	}
	return true
}

// FuzzParseXML compares the scanner with encoding/xml: whenever both
// accept a document they must build the same tree, and the scanner never
// panics or returns an error other than ErrRejected.
func FuzzParseXML(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0"?><a xmlns="u" xmlns:p="v"><p:b x='1'>t&amp;&#x41;<![CDATA[<c>]]></p:b><!-- c --><c/></a>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseXML(context.Background(), data, Limits{}.withDefaults())
		if err != nil {
			if !errors.Is(err, ErrRejected) {
				t.Fatalf("error not matching ErrRejected: %v", err)
			}
			return
		}
		if bytes.IndexByte(data, '\r') >= 0 { // encoding/xml normalises line ends, the scanner does not
			return
		}
		want, err := refTree(data)
		if err != nil {
			return
		}
		if !sameTree(got, want) {
			if len(data) > 300 {
				data = data[:300]
			}
			t.Fatalf("trees differ for %q...", data)
		}
	})
}

func TestParseXMLAgreesWithEncodingXML(t *testing.T) {
	docs := []string{
		`<a/>`,
		`<a xmlns="urn:x"><b xmlns=""><c/></b><d>1 &lt; 2 &#233;</d></a>`,
		`<p:a xmlns:p="urn:p" p:x="1"><p:b><![CDATA[a<b]]>tail</p:b></p:a>`,
		"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- lead -->\n<HDon>\n  <X>v</X>\n</HDon>\n",
	}
	for _, d := range docs {
		got, err := parseXML(t.Context(), []byte(d), Limits{}.withDefaults())
		if err != nil {
			t.Fatalf("%q: %v", d, err)
		}
		want, err := refTree([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		if !sameTree(got, want) {
			t.Errorf("%q: trees differ", d)
		}
	}
	for _, bad := range []string{`<a>`, `<a></b>`, `<a x=1/>`, `<a x="1/>`, `</a>`, `<a/><b/>`, `<a>&bogus;</a>`, `<a>&#0;</a>`, `x<a/>`, `<a><!DOCTYPE a></a>`, `<a x="<"/>`} {
		if _, err := parseXML(t.Context(), []byte(bad), Limits{}.withDefaults()); !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "XML") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// squash drops all whitespace: the scanner leaves out whitespace-only
// text runs (indentation), encoding/xml keeps them.
func squash(s string) string { return strings.Join(strings.Fields(s), "") }
