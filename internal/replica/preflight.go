package replica

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/einvault/einvault/internal/backend"
)

// PreflightOptions tune a pre-flight probe.
type PreflightOptions struct {
	// Timeout bounds the probe of one copy (default 20s).
	Timeout time.Duration
	// Write probes writability by saving and removing a probe file.
	Write bool
	// Need is the number of bytes the operation expects to write; the
	// copy must have Need plus Margin free (when it can tell).
	Need int64
	// Margin is added to Need (default 64 MiB plus 10% of Need).
	Margin int64
	// MaxSkew is the largest clock difference accepted (default 5 min).
	MaxSkew time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Probe is the outcome of a pre-flight check of one copy.
type Probe struct {
	Copy      string  `json:"copy"`
	Location  string  `json:"location"`
	Reachable bool    `json:"reachable"`
	LatencyMS float64 `json:"latency_ms"`
	Writable  *bool   `json:"writable,omitempty"`
	// FreeBytes is nil when the copy cannot tell.
	FreeBytes *int64 `json:"free_bytes,omitempty"`
	// SkewSeconds is the server clock minus ours, when known.
	SkewSeconds *float64 `json:"clock_skew_seconds,omitempty"`
	// Error is empty when the copy passed.
	Error string `json:"error,omitempty"`
}

// OK reports whether the copy passed.
func (p Probe) OK() bool { return p.Error == "" }

// ErrNoSpace is matched by pre-flight failures for lack of space.
var ErrNoSpace = errors.New("not enough free space")

// Preflight probes one copy: reachable (a config lookup, which also
// measures latency), writable (save and remove a probe file), free space
// and clock skew. It never returns an error: the failure is in Probe.Error,
// one line naming the copy.
func Preflight(ctx context.Context, m Member, o PreflightOptions) Probe {
	if o.Timeout <= 0 {
		o.Timeout = 20 * time.Second
	}
	if o.MaxSkew <= 0 {
		o.MaxSkew = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Margin == 0 {
		o.Margin = 64<<20 + o.Need/10
	}
	p := Probe{Copy: m.Name, Location: m.Location}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	fail := func(format string, args ...any) Probe {
		p.Error = fmt.Sprintf("copy %q (%s): ", m.Name, m.Location) + fmt.Sprintf(format, args...)
		if ctx.Err() == context.DeadlineExceeded {
			p.Error += fmt.Sprintf(" (no answer within %s: check the network and the server)", o.Timeout)
		}
		return p
	}
	start := o.Now()
	_, err := m.Backend.Stat(ctx, backend.Handle{Type: backend.ConfigFile, Name: "config"})
	p.LatencyMS = float64(o.Now().Sub(start).Microseconds()) / 1000
	if err != nil && !errors.Is(err, backend.ErrNotExist) {
		return fail("unreachable: %s", oneLine(err))
	}
	p.Reachable = true
	if o.Write {
		ok := false
		p.Writable = &ok
		var rnd [8]byte
		_, _ = rand.Read(rnd[:])
		h := backend.Handle{Type: backend.LockFile, Name: "preflight-" + hex.EncodeToString(rnd[:])}
		data := "einvault pre-flight probe\n"
		if err := m.Backend.Save(ctx, h, strings.NewReader(data), int64(len(data))); err != nil {
			return fail("not writable: %s", oneLine(err))
		}
		if err := m.Backend.Remove(ctx, h); err != nil {
			return fail("cannot remove a probe file: %s", oneLine(err))
		}
		ok = true
	}
	if sr, ok := find[backend.SpaceReporter](m.Backend); ok {
		free, err := sr.FreeSpace(ctx)
		switch {
		case err == nil:
			p.FreeBytes = &free
			if need := o.Need + o.Margin; o.Need > 0 && free < need {
				return fail("%v: %s free, %s needed (estimated upload plus margin): free space there or move the copy", ErrNoSpace, FormatBytes(free), FormatBytes(need))
			}
		case ctx.Err() != nil:
			return fail("free space: %s", oneLine(err))
		default:
			// Unknown (an S3 bucket without quota, an SFTP server without
			// the statvfs extension): not a failure.
		}
	}
	if cs, ok := find[ClockSkewer](m.Backend); ok {
		skew, err := cs.ClockSkew(ctx)
		if err == nil {
			s := skew.Seconds()
			p.SkewSeconds = &s
			if skew > o.MaxSkew || skew < -o.MaxSkew {
				return fail("clock skew of %s against the server (more than %s): synchronise this machine's clock (NTP)", skew.Round(time.Second), o.MaxSkew)
			}
		}
	}
	return p
}

// PreflightAll probes every member in parallel; the result is in the
// order of ms.
func PreflightAll(ctx context.Context, ms []Member, o PreflightOptions) []Probe {
	out := make([]Probe, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = Preflight(ctx, m, o)
		}()
	}
	wg.Wait()
	return out
}

// FormatBytes formats n with a binary unit.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
