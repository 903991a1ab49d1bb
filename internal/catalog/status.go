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

// IsStatusPayload reports whether a catalogs/ file payload holds
// imported status records rather than a snapshot's catalog. Prune uses
// it: status records are never deleted.
func IsStatusPayload(data []byte) bool {
	return bytes.HasPrefix(data, []byte(statusMagic))
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
func SaveStatus(ctx context.Context, s interface {
	SaveCatalog(context.Context, []byte) (repo.ID, error)
}, recs []StatusRecord) (repo.ID, error) {
	payload, err := EncodeStatus(recs)
	if err != nil {
		return repo.ID{}, err
	}
	return s.SaveCatalog(ctx, payload)
}

// Worse reports whether status now is worse than status then (the
// order of invoice.Worse). Nothing is worse than a pending status: the
// signatures were not checked then.
func Worse(now, then invoice.SigStatus) bool {
	if then == invoice.SigPending || now == then {
		return false
	}
	return invoice.Worse(now, then) == now
}
