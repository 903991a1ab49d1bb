package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/einvault/einvault/internal/invoice"
	"github.com/einvault/einvault/internal/repo"
)

// StatusRecord is what a tax authority or portal says about one invoice:
// it was issued (registered), cancelled or replaced. Imported records
// are stored in the repository so that gaps and reconcile see them from
// any machine.
type StatusRecord struct {
	Key    string `json:"key"`    // SELLERMST/FORM/SERIES/NUMBER
	Status string `json:"status"` // issued, cancelled, replaced, adjusted, ...
	Date   string `json:"date,omitempty"`
	Detail string `json:"detail,omitempty"`
	Source string `json:"source"` // file name it was imported from
}

const statusMagic = "EVS1"

// EncodeStatus writes a status-record file payload: "EVS1" | version u8 |
// one JSON line per record.
func EncodeStatus(recs []StatusRecord) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(statusMagic)
	b.WriteByte(1)
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for i := range recs {
		if err := enc.Encode(&recs[i]); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// DecodeStatus parses a status-record file payload.
func DecodeStatus(data []byte) ([]StatusRecord, error) {
	if len(data) < 5 || string(data[:4]) != statusMagic || data[4] != 1 {
		return nil, fmt.Errorf("%w: not a status-record file", ErrDamaged)
	}
	dec := json.NewDecoder(bytes.NewReader(data[5:]))
	dec.DisallowUnknownFields()
	var out []StatusRecord
	for dec.More() {
		var r StatusRecord
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("%w: status record %d: %v", ErrDamaged, len(out)+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// SaveStatus stores imported records in the repository (a kind-5 file in
// catalogs/ that no snapshot names) and returns its ID.
func SaveStatus(ctx context.Context, s Saver, recs []StatusRecord) (repo.ID, error) {
	payload, err := EncodeStatus(recs)
	if err != nil {
		return repo.ID{}, err
	}
	return s.SaveCatalog(ctx, payload)
}

// rank orders signature statuses from best (0) to worst, for "worse than
// at backup" comparisons. Pending and unverified compare as unknown (0).
func rank(s invoice.SigStatus) int {
	switch s {
	case invoice.SigValid, invoice.SigPending, invoice.SigUnverified, "":
		return 0
	case invoice.SigReformatted:
		return 1
	case invoice.SigUnsigned:
		return 2
	case invoice.SigUntrusted:
		return 3
	case invoice.SigPartial:
		return 4
	case invoice.SigAltered:
		return 5
	}
	return 0
}

// Worse reports whether status now is worse than status then.
func Worse(now, then invoice.SigStatus) bool { return rank(now) > rank(then) }
