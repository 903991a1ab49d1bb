package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/einvault/einvault/internal/invoice"
)

// Problem kinds of a verification.
const (
	ProblemMissing     = "missing"         // the file is not where the catalog puts it
	ProblemContent     = "content-differs" // bytes differ from the catalog (content ID)
	ProblemUnreadable  = "unreadable"      // the file or its stored data cannot be read
	ProblemStatusWorse = "signature-worse" // signature status worse than at backup
	ProblemNotInvoice  = "not-recognised"  // bytes match but the parser finds the invoice no more
	FindingSignature   = "signature"       // signature not valid (as at backup): reported only
)

// Finding is one line of a verification report.
type Finding struct {
	Path   string `json:"path"`
	Key    string `json:"key,omitempty"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
	// Fatal findings make 'invoices verify' exit with code 5.
	Fatal bool `json:"fatal"`
}

// VerifyReport is the result of Verify.
type VerifyReport struct {
	Snapshot       string         `json:"snapshot"`
	Source         string         `json:"source"` // "repository" or the directory checked
	Invoices       int            `json:"invoices"`
	Files          int            `json:"files"`
	OK             int            `json:"ok"`
	Missing        int            `json:"missing"`
	ContentDiffers int            `json:"content_differs"`
	StatusWorse    int            `json:"signature_worse"`
	Unreadable     int            `json:"unreadable"`
	SigFindings    int            `json:"signature_findings"`
	ByStatus       map[string]int `json:"by_signature_status"`
	Findings       []Finding      `json:"findings"`
	SigCheckTime   time.Duration  `json:"signature_check_ns"`
}

// Failed reports whether any finding is fatal.
func (r *VerifyReport) Failed() bool {
	for _, f := range r.Findings {
		if f.Fatal {
			return true
		}
	}
	return false
}

// FileSource gives the bytes of a cataloged file, from a directory or the
// repository; os.ErrNotExist (wrapped) when it is absent.
type FileSource func(ctx context.Context, l *Located) ([]byte, error)

// VerifyOptions configure Verify.
type VerifyOptions struct {
	// Recheck parses the bytes again and checks their signatures.
	Recheck Recognizer
	// SkipMissing leaves out files that are absent (a partial restore).
	SkipMissing bool
	// CachedSignatures takes signature verdicts only from the cache
	// (bytes identical to checked bytes have the same verdict); invoices
	// never checked are counted as pending instead of being parsed.
	CachedSignatures bool
	// ReuseVerdicts re-checks only bytes whose signatures were never
	// checked; bytes identical (same content ID) to checked bytes take
	// the cached verdict, which a re-check would repeat. Restore uses it
	// so that restoring many invoices does not cost a signature check
	// each; 'invoices verify' checks everything again.
	ReuseVerdicts bool
	known         map[[2]string]bool
	Source        string
	// Workers read and re-check files in parallel (at least 1).
	Workers int
}

// Verify compares every invoice of a snapshot with what read returns:
// content ID first, then the signature statuses against those recorded
// at backup. Files are read and re-checked by opts.Workers goroutines;
// results are applied in path order, and signature check results are
// kept in the cache by content ID.
func (c *Cache) Verify(ctx context.Context, snapshot string, read FileSource, opts VerifyOptions) (*VerifyReport, error) {
	snap, err := c.ResolveSnapshot(ctx, snapshot)
	if err != nil {
		return nil, err
	}
	entries, err := c.Entries(ctx, snap.ID)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{Snapshot: snap.ID, Source: opts.Source, ByStatus: map[string]int{}}
	if opts.ReuseVerdicts && opts.Recheck != nil && !opts.CachedSignatures {
		if opts.known, err = c.checkedContent(ctx); err != nil {
			return nil, err
		}
	}
	// entries are sorted by path: one read per file
	var groups [][]Located
	for i := 0; i < len(entries); {
		j := i
		for j < len(entries) && entries[j].Path == entries[i].Path {
			j++
		}
		groups = append(groups, entries[i:j])
		i = j
	}
	workers := max(opts.Workers, 1)
	// Batches bound the memory held by results waiting to be applied.
	const batch = 256
	res := make([]fileCheck, 0, batch)
	for start := 0; start < len(groups); start += batch {
		part := groups[start:min(start+batch, len(groups))]
		res = res[:len(part)]
		var wg sync.WaitGroup
		next := make(chan int)
		for w := 0; w < min(workers, len(part)); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					res[i] = prepareCheck(ctx, part[i], read, opts)
				}
			}()
		}
		for i := range part {
			next <- i
		}
		close(next)
		wg.Wait()
		for i := range part {
			if err := c.applyCheck(ctx, part[i], &res[i], opts, rep); err != nil {
				return nil, err
			}
			res[i] = fileCheck{}
		}
	}
	return rep, nil
}

// fileCheck is what a worker found about one file.
type fileCheck struct {
	readErr  error
	cid      string
	invs     []invoice.Invoice
	parseErr error
	took     time.Duration
	reused   bool // signatures taken from the cache (ReuseVerdicts)
}

// checkedContent lists the (content ID, inner path) pairs that have a
// cached signature verdict.
func (c *Cache) checkedContent(ctx context.Context) (map[[2]string]bool, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT content, inner FROM sigcheck`)
	if err != nil {
		return nil, fmt.Errorf("read cached signature verdicts: %w", err)
	}
	defer rows.Close()
	out := map[[2]string]bool{}
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			return nil, err
		}
		out[k] = true
	}
	return out, rows.Err()
}

// prepareCheck reads one file and, when its bytes match the catalog and
// signatures are to be re-checked, parses and verifies it. It touches no
// shared state.
func prepareCheck(ctx context.Context, group []Located, read FileSource, opts VerifyOptions) fileCheck {
	l := &group[0]
	data, err := read(ctx, l)
	if err != nil {
		return fileCheck{readErr: err}
	}
	fc := fileCheck{cid: ContentID(data)}
	if fc.cid != l.Entry.ContentID || opts.Recheck == nil || opts.CachedSignatures {
		return fc
	}
	if opts.known != nil {
		all := true
		for gi := range group {
			all = all && opts.known[[2]string{group[gi].Entry.ContentID, group[gi].Entry.Inner}]
		}
		if all {
			fc.reused = true
			return fc
		}
	}
	start := time.Now()
	fc.invs, fc.parseErr = opts.Recheck(ctx, path.Base(l.Path), data)
	fc.took = time.Since(start)
	return fc
}

func (c *Cache) applyCheck(ctx context.Context, group []Located, fc *fileCheck, opts VerifyOptions, rep *VerifyReport) error {
	l := &group[0]
	if err := fc.readErr; err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, fs.ErrNotExist) {
			if opts.SkipMissing {
				return nil
			}
			rep.Files++
			rep.Invoices += len(group)
			rep.Missing++
			rep.Findings = append(rep.Findings, Finding{Path: l.Path, Key: l.Entry.Key(), Kind: ProblemMissing, Detail: "not found", Fatal: true})
			return nil
		}
		rep.Files++
		rep.Invoices += len(group)
		rep.Unreadable++
		rep.Findings = append(rep.Findings, Finding{Path: l.Path, Key: l.Entry.Key(), Kind: ProblemUnreadable, Detail: err.Error(), Fatal: true})
		return nil
	}
	rep.Files++
	rep.Invoices += len(group)
	if cid := fc.cid; cid != l.Entry.ContentID {
		rep.ContentDiffers++
		rep.Findings = append(rep.Findings, Finding{Path: l.Path, Key: l.Entry.Key(), Kind: ProblemContent,
			Detail: fmt.Sprintf("SHA-256 %s, the catalog recorded %s", cid[:16], l.Entry.ContentID[:16]), Fatal: true})
		return nil
	}
	if opts.Recheck == nil {
		rep.OK += len(group)
		return nil
	}
	if opts.CachedSignatures || fc.reused {
		for gi := range group {
			st, err := c.cachedSig(ctx, &group[gi].Entry)
			if err != nil {
				return err
			}
			if st == "" {
				st = invoice.SigPending
			}
			rep.ByStatus[string(st)]++
			rep.OK++
			if st != invoice.SigValid && st != invoice.SigPending {
				rep.SigFindings++
				rep.Findings = append(rep.Findings, Finding{Path: l.Path, Key: group[gi].Entry.Key(), Kind: FindingSignature,
					Detail: fmt.Sprintf("signature status %s (checked earlier for these bytes)", st)})
			}
		}
		return nil
	}
	rep.SigCheckTime += fc.took
	invs := fc.invs
	if err := fc.parseErr; err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rep.Findings = append(rep.Findings, Finding{Path: l.Path, Key: l.Entry.Key(), Kind: ProblemNotInvoice, Detail: err.Error(), Fatal: true})
		return nil
	}
	for gi := range group {
		e := &group[gi].Entry
		var now *invoice.Invoice
		for k := range invs {
			if invs[k].Key() == e.Key() && invs[k].Inner == e.Inner {
				now = &invs[k]
				break
			}
		}
		if now == nil {
			rep.Findings = append(rep.Findings, Finding{Path: l.Path, Key: e.Key(), Kind: ProblemNotInvoice, Detail: "the parser no longer finds this invoice in the file", Fatal: true})
			continue
		}
		was := e.SigStatus()
		is := now.SigStatus()
		rep.ByStatus[string(is)]++
		first, err := c.recordSigCheck(ctx, e, now)
		if err != nil {
			return err
		}
		if was == invoice.SigPending && first != "" {
			was = first // the first check after the backup
		}
		switch {
		case Worse(is, was):
			rep.StatusWorse++
			rep.Findings = append(rep.Findings, Finding{Path: l.Path, Key: e.Key(), Kind: ProblemStatusWorse,
				Detail: fmt.Sprintf("signature status %s, it was %s at backup%s", is, was, sigDetail(now)), Fatal: true})
		case is != invoice.SigValid:
			rep.SigFindings++
			rep.Findings = append(rep.Findings, Finding{Path: l.Path, Key: e.Key(), Kind: FindingSignature,
				Detail: fmt.Sprintf("signature status %s%s", is, sigDetail(now))})
			rep.OK++
		default:
			rep.OK++
		}
	}
	return nil
}

func sigDetail(inv *invoice.Invoice) string {
	var parts []string
	for _, s := range inv.Signatures {
		if s.Status != invoice.SigValid && s.Detail != "" {
			parts = append(parts, s.Role+": "+s.Detail)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// cachedSig returns the latest verdict checked for an entry's bytes.
func (c *Cache) cachedSig(ctx context.Context, e *Entry) (invoice.SigStatus, error) {
	var st string
	err := c.db.QueryRowContext(ctx, `SELECT status FROM sigcheck WHERE content=? AND inner=?`, e.ContentID, e.Inner).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return invoice.SigStatus(st), err
}

// recordSigCheck keeps the result of a signature check by content ID and
// returns the first status ever recorded for these bytes ("" if none).
func (c *Cache) recordSigCheck(ctx context.Context, e *Entry, now *invoice.Invoice) (invoice.SigStatus, error) {
	sigs, err := jsonString(now.Signatures)
	if err != nil {
		return "", err
	}
	var first string
	err = c.db.QueryRowContext(ctx, `SELECT first_status FROM sigcheck WHERE content=? AND inner=?`, e.ContentID, e.Inner).Scan(&first)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", err
	}
	st := string(now.SigStatus())
	if first == "" {
		first = st
	}
	_, err = c.db.ExecContext(ctx, `INSERT OR REPLACE INTO sigcheck(content, inner, status, first_status, sigs, checked) VALUES(?,?,?,?,?,?)`,
		e.ContentID, e.Inner, st, first, sigs, c.now().UTC().Format(time.RFC3339))
	return invoice.SigStatus(first), err
}

// DirSource reads cataloged files from a restored directory: a file at
// snapshot path P is looked for at DIR/P (a full restore), at DIR/REL
// with REL relative to a backed-up path or its parent (a restore of a
// sub-path), taking the first that exists.
func DirSource(dir string, sources []string) FileSource {
	return func(ctx context.Context, l *Located) ([]byte, error) {
		for _, p := range DirCandidates(dir, sources, l.Path) {
			data, err := os.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return data, err
		}
		return nil, fmt.Errorf("%s: %w", l.Path, fs.ErrNotExist)
	}
}

// DirCandidates lists where a snapshot path may be in a restored
// directory, most specific first.
func DirCandidates(dir string, sources []string, p string) []string {
	out := []string{filepath.Join(dir, filepath.FromSlash(p))}
	srcs := append([]string(nil), sources...)
	sort.Slice(srcs, func(i, j int) bool { return len(srcs[i]) > len(srcs[j]) })
	for _, s := range srcs {
		if rel, ok := strings.CutPrefix(p, strings.TrimSuffix(s, "/")+"/"); ok {
			out = append(out, filepath.Join(dir, filepath.FromSlash(rel)))
			out = append(out, filepath.Join(dir, path.Base(s), filepath.FromSlash(rel)))
		}
	}
	return out
}

// RepoSource reads cataloged files from the repository.
func RepoSource(fe *Fetcher) FileSource {
	return func(ctx context.Context, l *Located) ([]byte, error) {
		return fe.ReadFile(ctx, l.Entry.File, l.Packs)
	}
}
