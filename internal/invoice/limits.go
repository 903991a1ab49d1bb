package invoice

import (
	"errors"
	"fmt"
)

// ErrRejected marks input that looks like an invoice (or a container of
// invoices) but that the parser refuses to process: hostile or malformed
// XML, unsupported encodings, or archives that exceed the limits. Callers
// record the reason and go on; a rejected file never stops a backup.
var ErrRejected = errors.New("invoice: input rejected")

// rejected builds an error that matches ErrRejected and says why.
func rejected(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, args...))
}

// Limits bounds the work and memory Recognize spends on one input. The
// zero value of a field means its default (DefaultLimits).
type Limits struct {
	// MaxBytes is the largest file (or ZIP member) parsed as XML.
	MaxBytes int64
	// MaxDepth is the deepest element nesting accepted.
	MaxDepth int
	// MaxTokenBytes is the longest text node, attribute value or name.
	MaxTokenBytes int
	// MaxElements is the largest number of elements in one document.
	MaxElements int
	// MaxEntries is the largest number of members read from a ZIP or OFD.
	MaxEntries int
	// MaxZipBytes is the most bytes decompressed from one ZIP or OFD in
	// all, and MaxZipRatio the largest uncompressed:compressed ratio of a
	// member (zip-bomb guard).
	MaxZipBytes int64
	MaxZipRatio int64
	// MaxZipDepth is how deep ZIPs inside ZIPs are followed.
	MaxZipDepth int
}

// DefaultLimits are generous for real invoices (a few KB to a few MB)
// and small enough that hostile input cannot exhaust memory.
var defaultLimits = Limits{
	MaxBytes:      32 << 20,
	MaxDepth:      64,
	MaxTokenBytes: 4 << 20,
	MaxElements:   500000,
	MaxEntries:    10000,
	MaxZipBytes:   256 << 20,
	MaxZipRatio:   200,
	MaxZipDepth:   2,
}

// DefaultLimits returns the limits used for zero fields.
func DefaultLimits() Limits { return defaultLimits }

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := defaultLimits
	if l.MaxBytes > 0 {
		d.MaxBytes = l.MaxBytes
	}
	if l.MaxDepth > 0 {
		d.MaxDepth = l.MaxDepth
	}
	if l.MaxTokenBytes > 0 {
		d.MaxTokenBytes = l.MaxTokenBytes
	}
	if l.MaxElements > 0 {
		d.MaxElements = l.MaxElements
	}
	if l.MaxEntries > 0 {
		d.MaxEntries = l.MaxEntries
	}
	if l.MaxZipBytes > 0 {
		d.MaxZipBytes = l.MaxZipBytes
	}
	if l.MaxZipRatio > 0 {
		d.MaxZipRatio = l.MaxZipRatio
	}
	if l.MaxZipDepth > 0 {
		d.MaxZipDepth = l.MaxZipDepth
	}
	return d
}
