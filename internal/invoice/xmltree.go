package invoice

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"strings"
)

// node is one element of a parsed document: a small tree that keeps
// exactly what the extractors read (names, attributes, text).
type node struct {
	space, name string // namespace URI and local name
	attrs       []xml.Attr
	kids        []*node
	text        string // character data directly inside the element
}

// child returns the first child element with the local name, or nil.
func (n *node) child(name string) *node {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

// path follows local names down the tree; nil when a step is missing.
func (n *node) path(names ...string) *node {
	for _, s := range names {
		n = n.child(s)
		if n == nil {
			return nil
		}
	}
	return n
}

// str returns the trimmed text at the path ("" when missing).
func (n *node) str(names ...string) string {
	if m := n.path(names...); m != nil {
		return strings.TrimSpace(m.text)
	}
	return ""
}

// attr returns the attribute with the local name, "" when missing.
func (n *node) attr(name string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// walk calls fn for n and every descendant in document order until fn
// returns false for a subtree (its children are then skipped).
func (n *node) walk(fn func(*node) bool) {
	if n == nil || !fn(n) {
		return
	}
	for _, k := range n.kids {
		k.walk(fn)
	}
}

// findAll returns every descendant (or n) with the local name and
// namespace ("" namespace matches any), not looking inside matches.
func (n *node) findAll(space, name string) []*node {
	var out []*node
	n.walk(func(m *node) bool {
		if m.name == name && (space == "" || m.space == space) {
			out = append(out, m)
			return false
		}
		return true
	})
	return out
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// parseXML parses a whole document into a tree under the limits.
// Anything hostile or malformed is an ErrRejected error with a reason:
// DOCTYPE declarations (and so entity definitions) are refused outright,
// undefined entities, non-UTF-8 encodings, too deep nesting, too many
// elements and too long text nodes or attributes are errors.
func parseXML(ctx context.Context, data []byte, lim Limits) (*node, error) {
	if int64(len(data)) > lim.MaxBytes {
		return nil, rejected("XML document of %d bytes exceeds the %d-byte limit", len(data), lim.MaxBytes)
	}
	if err := checkEncoding(data); err != nil {
		return nil, err
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		// checkEncoding let only UTF-8 and its ASCII subset through.
		return r, nil
	}
	var (
		root     *node
		stack    []*node
		elements int
		text     strings.Builder
	)
	flush := func() error {
		if text.Len() == 0 {
			return nil
		}
		if len(stack) > 0 {
			top := stack[len(stack)-1]
			top.text += text.String()
			if len(top.text) > lim.MaxTokenBytes {
				return rejected("text node longer than %d bytes", lim.MaxTokenBytes)
			}
		}
		text.Reset()
		return nil
	}
	for {
		if elements&1023 == 1023 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, rejected("malformed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := flush(); err != nil {
				return nil, err
			}
			elements++
			if elements > lim.MaxElements {
				return nil, rejected("more than %d XML elements", lim.MaxElements)
			}
			if len(stack) >= lim.MaxDepth {
				return nil, rejected("XML nesting deeper than %d levels", lim.MaxDepth)
			}
			for _, a := range t.Attr {
				if len(a.Value) > lim.MaxTokenBytes {
					return nil, rejected("XML attribute longer than %d bytes", lim.MaxTokenBytes)
				}
			}
			n := &node{space: t.Name.Space, name: t.Name.Local, attrs: t.Attr}
			if len(stack) == 0 {
				if root != nil {
					return nil, rejected("malformed XML: more than one root element")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			if err := flush(); err != nil {
				return nil, err
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				if text.Len()+len(t) > lim.MaxTokenBytes {
					return nil, rejected("text node longer than %d bytes", lim.MaxTokenBytes)
				}
				text.Write(t)
			}
		case xml.Directive:
			return nil, rejected("XML with a DOCTYPE or other declaration (<!%s...) is not accepted in invoices", firstWord(t))
		}
	}
	if root == nil {
		return nil, rejected("malformed XML: no root element")
	}
	return root, nil
}

func firstWord(b []byte) string {
	s := string(b)
	if i := strings.IndexAny(s, " \t\r\n["); i >= 0 {
		s = s[:i]
	}
	if len(s) > 16 {
		s = s[:16]
	}
	return s
}

// checkEncoding refuses UTF-16/UTF-32 (by byte-order mark or zero bytes)
// and XML declarations naming an encoding other than UTF-8 or US-ASCII.
func checkEncoding(data []byte) error {
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}), bytes.HasPrefix(data, []byte{0xFE, 0xFF}),
		bytes.HasPrefix(data, []byte{0, '<'}), bytes.HasPrefix(data, []byte{'<', 0}),
		bytes.HasPrefix(data, []byte{0, 0}):
		return rejected("UTF-16/UTF-32 XML is not supported; convert the file to UTF-8")
	}
	head := bytes.TrimPrefix(data, utf8BOM)
	if !bytes.HasPrefix(head, []byte("<?xml")) {
		return nil
	}
	end := bytes.Index(head, []byte("?>"))
	if end < 0 || end > 512 {
		return rejected("malformed XML declaration")
	}
	decl := string(head[:end])
	i := strings.Index(decl, "encoding")
	if i < 0 {
		return nil
	}
	rest := strings.TrimLeft(decl[i+len("encoding"):], " \t\r\n=")
	if rest == "" {
		return rejected("malformed XML declaration")
	}
	q := rest[0]
	rest = rest[1:]
	j := strings.IndexByte(rest, q)
	if j < 0 {
		return rejected("malformed XML declaration")
	}
	switch strings.ToLower(rest[:j]) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return nil
	}
	return rejected("XML encoding %q is not supported; invoices must be UTF-8", rest[:j])
}
