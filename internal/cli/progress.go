package cli

import (
	"fmt"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// byteBar is a progress bar over bytes with a file count in its
// description; it draws only when stderr is a terminal.
type byteBar struct {
	mu  sync.Mutex
	bar *progressbar.ProgressBar
	max int64
}

func (g *Globals) newByteBar(desc string) *byteBar {
	if !g.ShowProgress() {
		return nil
	}
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(g.Stderr),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetDescription(desc),
	)
	return &byteBar{bar: bar, max: -1}
}

// set updates the bar; total < 0 means unknown yet.
func (b *byteBar) set(done, total int64, desc string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if total > 0 && total != b.max {
		b.max = total
		b.bar.ChangeMax64(total)
	}
	b.bar.Describe(desc)
	_ = b.bar.Set64(done)
}

func (b *byteBar) finish() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.bar.Finish()
	_ = b.bar.Clear()
}

// formatBytes prints a byte count in binary units.
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// formatDuration prints seconds as 1h2m3s / 4.5s.
func formatDuration(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}
