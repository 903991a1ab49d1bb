package checker

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/einvault/einvault/internal/repo"
)

// Kinds of findings. Errors mean referenced data is damaged or missing
// (exit 5); information never fails a check.
const (
	// Errors.
	KindConfigDamaged   = "config-damaged"
	KindKeyDamaged      = "key-damaged"
	KindIndexDamaged    = "index-damaged"
	KindIndexConflict   = "index-conflict"
	KindSnapshotDamaged = "snapshot-damaged"
	KindPackMissing     = "pack-missing"
	KindPackDamaged     = "pack-damaged"
	KindTreeDamaged     = "tree-damaged"
	KindBlobMissing     = "blob-missing"
	KindBlobWrongType   = "blob-wrong-type"
	KindFileDamaged     = "file-damaged"    // storage-only: a file whose bytes do not hash to its name
	KindCatalogDamaged  = "catalog-damaged" // a snapshot's invoice catalog is missing or does not decode

	// Information.
	KindPackUnreferenced = "pack-unreferenced"
	KindTemporaryFile    = "temporary-file"
	KindPendingDeletion  = "pending-deletion"
	KindLocks            = "locks"
)

// Problem is one finding about one repository file (or, for missing
// blobs, about the index as a whole).
type Problem struct {
	Kind string `json:"kind"`
	// File names the repository file, as "data/<id>", "index/<id>",
	// "snapshots/<id>", "keys/<id>" or "config".
	File    string `json:"file,omitempty"`
	Message string `json:"message"`
	// Blobs are the damaged or missing blobs (at most Options.MaxListed;
	// BlobsTotal counts all of them).
	Blobs      []BlobRef `json:"blobs,omitempty"`
	BlobsTotal int       `json:"blobs_total,omitempty"`
	// Affected are the snapshot paths whose content depends on the damaged
	// blobs (at most Options.MaxListed; AffectedTotal counts all).
	Affected      []Affected `json:"affected,omitempty"`
	AffectedTotal int        `json:"affected_total,omitempty"`

	blobSet repo.IDSet
}

// BlobRef names a blob.
type BlobRef struct {
	Type string  `json:"type"`
	ID   repo.ID `json:"id"`
}

// Affected is a file or directory of a snapshot that cannot be restored
// intact.
type Affected struct {
	Snapshot repo.ID   `json:"snapshot"`
	Time     time.Time `json:"time"`
	Host     string    `json:"host,omitempty"`
	Path     string    `json:"path"`
	// Directory is set when the directory listing itself is lost, so
	// nothing below Path can be restored.
	Directory bool `json:"directory,omitempty"`
}

func (a Affected) String() string {
	s := "snapshot " + a.Snapshot.Short() + " " + a.Path
	if a.Directory {
		s += " (directory listing lost: everything below it)"
	}
	return s
}

// Stats count what the check looked at.
type Stats struct {
	Snapshots    int     `json:"snapshots"`
	KeyFiles     int     `json:"key_files"`
	IndexFiles   int     `json:"index_files"`
	Packs        int     `json:"packs"`
	PacksRead    int     `json:"packs_read"`
	BytesRead    int64   `json:"bytes_read"`
	BlobsOpened  int64   `json:"blobs_opened"`
	Trees        int64   `json:"trees"`
	DataBlobRefs int64   `json:"data_blob_refs"`
	Duration     float64 `json:"duration_seconds"`
}

// Report is the result of a check. Errors are damaged or missing data that
// something refers to; Info are findings that need no action now
// (unreferenced packs, leftover temporary files, pending deletions).
type Report struct {
	Repository  string     `json:"repository"`
	StorageOnly bool       `json:"storage_only"`
	ReadData    string     `json:"read_data"` // "none", "all", "10%", "2/7"
	Stats       Stats      `json:"stats"`
	Errors      []*Problem `json:"errors"`
	Info        []*Problem `json:"info"`
}

// Damaged reports whether anything referenced is damaged or missing.
func (r *Report) Damaged() bool { return len(r.Errors) > 0 }

// Summary is a one-paragraph account of the check.
func (r *Report) Summary() string {
	var b strings.Builder
	st := r.Stats
	if r.StorageOnly {
		fmt.Fprintf(&b, "Checked the storage of %s without the password: %d packs (%s read), %d index, %d snapshot and %d key files hashed against their names.",
			r.Repository, st.Packs, formatBytes(st.BytesRead), st.IndexFiles, st.Snapshots, st.KeyFiles)
	} else {
		fmt.Fprintf(&b, "Checked %s: %d snapshots, %d index files, %d packs, %d trees, %d file-content references.",
			r.Repository, st.Snapshots, st.IndexFiles, st.Packs, st.Trees, st.DataBlobRefs)
		if st.PacksRead > 0 || r.ReadData != "none" {
			fmt.Fprintf(&b, " Read %d packs (%s, data subset %s) and opened %d blobs.", st.PacksRead, formatBytes(st.BytesRead), r.ReadData, st.BlobsOpened)
		}
	}
	fmt.Fprintf(&b, " Took %.1fs.", st.Duration)
	if r.Damaged() {
		affected := 0
		for _, p := range r.Errors {
			affected += p.AffectedTotal
		}
		fmt.Fprintf(&b, " DAMAGE FOUND: %d errors", len(r.Errors))
		if affected > 0 {
			fmt.Fprintf(&b, ", %d snapshot paths affected", affected)
		}
		b.WriteString("; restore from another copy or back up the affected sources again.")
	} else {
		b.WriteString(" No errors were found.")
	}
	if len(r.Info) > 0 {
		fmt.Fprintf(&b, " %d informational findings (no action needed).", len(r.Info))
	}
	return b.String()
}

// WriteText writes the findings and the summary for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	if len(r.Errors) > 0 {
		b.WriteString("Errors:\n")
		for _, p := range r.Errors {
			writeProblem(&b, p)
		}
		b.WriteString("\n")
	}
	if len(r.Info) > 0 {
		b.WriteString("Information:\n")
		for _, p := range r.Info {
			writeProblem(&b, p)
		}
		b.WriteString("\n")
	}
	b.WriteString(r.Summary())
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeProblem(b *strings.Builder, p *Problem) {
	b.WriteString("  ")
	if p.File != "" {
		b.WriteString(p.File + ": ")
	}
	b.WriteString(p.Message)
	b.WriteString("\n")
	if len(p.Blobs) > 0 {
		fmt.Fprintf(b, "    damaged blobs (%d):", p.BlobsTotal)
		for i, bl := range p.Blobs {
			if i == 10 {
				fmt.Fprintf(b, " ... (%d more, see --json)", p.BlobsTotal-10)
				break
			}
			fmt.Fprintf(b, " %s %s", bl.Type, bl.ID.Short())
		}
		b.WriteString("\n")
	}
	if p.AffectedTotal > 0 {
		fmt.Fprintf(b, "    affected (%d):\n", p.AffectedTotal)
		for _, a := range p.Affected {
			fmt.Fprintf(b, "      %s\n", a)
		}
		if p.AffectedTotal > len(p.Affected) {
			fmt.Fprintf(b, "      ... and %d more\n", p.AffectedTotal-len(p.Affected))
		}
	}
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
