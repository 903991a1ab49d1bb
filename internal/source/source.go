// Package source holds what every database and command source shares:
// the metadata a source records in its snapshot (engine, server version,
// size, per-table row counts and checksums) and the verification report
// that compares a restored database with it. Each engine lives in its
// own subpackage (source/pg, source/mysql, source/sqlite, source/command)
// and produces its streams through archiver.StreamFunc.
package source

import (
	"encoding/json"
	"fmt"
)

// MetaKey is the key of a source's Metadata in repo.Snapshot.Meta.
const MetaKey = "source"

// Table is one table as the source saw it at backup time.
type Table struct {
	Schema   string `json:"schema,omitempty"`
	Name     string `json:"name"`
	Rows     int64  `json:"rows"`
	Checksum string `json:"checksum,omitempty"` // engine-specific, e.g. MariaDB CHECKSUM TABLE or an md5 over ordered rows
}

// Stream is one stream stored in the snapshot.
type Stream struct {
	Name   string `json:"name"`
	Format string `json:"format"` // pg-custom, pg-globals-sql, pg-basebackup-tar, sql, sqlite-db, raw
	Bytes  int64  `json:"bytes"`
}

// Metadata is what a source records about itself in its snapshot.
type Metadata struct {
	Engine        string            `json:"engine"` // postgresql, mariadb, mysql, sqlite, command
	ServerVersion string            `json:"server_version,omitempty"`
	Database      string            `json:"database,omitempty"`
	Location      string            `json:"location,omitempty"` // DSN or path without secrets
	SizeBytes     int64             `json:"size_bytes,omitempty"`
	Tables        []Table           `json:"tables,omitempty"`
	Streams       []Stream          `json:"streams,omitempty"`
	Extra         map[string]string `json:"extra,omitempty"` // engine-specific facts (WAL start LSN, timeline, ...)
}

// Encode returns m as a snapshot Meta map.
func (m *Metadata) Encode() (map[string]json.RawMessage, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode source metadata: %w", err)
	}
	return map[string]json.RawMessage{MetaKey: b}, nil
}

// FromMeta decodes the source metadata of a snapshot's Meta; ok is false
// when the snapshot has none (a file backup).
func FromMeta(meta map[string]json.RawMessage) (m *Metadata, ok bool, err error) {
	raw, ok := meta[MetaKey]
	if !ok {
		return nil, false, nil
	}
	m = new(Metadata)
	if err := json.Unmarshal(raw, m); err != nil {
		return nil, true, fmt.Errorf("snapshot source metadata is damaged: %w", err)
	}
	return m, true, nil
}

// Check is one verification step after a database restore.
type Check struct {
	Name   string `json:"name"` // "table public.invoices rows", "amcheck", "integrity_check", ...
	OK     bool   `json:"ok"`
	Want   string `json:"want,omitempty"`
	Got    string `json:"got,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Verification is the report of a database restore's verification.
type Verification struct {
	Engine   string  `json:"engine"`
	Database string  `json:"database"`
	Checks   []Check `json:"checks"`
}

// OK reports whether every check passed.
func (v *Verification) OK() bool {
	for _, c := range v.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Failed returns the checks that did not pass.
func (v *Verification) Failed() []Check {
	var out []Check
	for _, c := range v.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// CompareTables adds one check per table recorded at backup time: the
// table exists after the restore, has the same row count and, where both
// sides have one, the same checksum. got maps "schema.name" (or "name")
// to the restored table.
func (v *Verification) CompareTables(want []Table, got map[string]Table) {
	for _, w := range want {
		key := w.Name
		if w.Schema != "" {
			key = w.Schema + "." + w.Name
		}
		g, ok := got[key]
		if !ok {
			v.Checks = append(v.Checks, Check{Name: "table " + key + " present", OK: false, Detail: "table missing after restore"})
			continue
		}
		v.Checks = append(v.Checks, Check{Name: "table " + key + " rows", OK: g.Rows == w.Rows,
			Want: fmt.Sprint(w.Rows), Got: fmt.Sprint(g.Rows)})
		if w.Checksum != "" && g.Checksum != "" {
			v.Checks = append(v.Checks, Check{Name: "table " + key + " checksum", OK: g.Checksum == w.Checksum,
				Want: w.Checksum, Got: g.Checksum})
		}
	}
}
