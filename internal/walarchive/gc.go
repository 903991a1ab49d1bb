package walarchive

import (
	"math"
	"runtime/debug"
)

// RelaxGC turns the garbage collector off for a short-lived push, whose
// heap is a few times the segment and then exits: collecting it cost a
// tenth of a push's CPU. A memory limit of 8x the segment (at least 256
// MiB) still bounds it; a GOMEMLIMIT the user set is kept.
func RelaxGC(segment int) {
	if debug.SetMemoryLimit(-1) == math.MaxInt64 {
		debug.SetMemoryLimit(max(int64(segment)*8, 256<<20))
	}
	debug.SetGCPercent(-1)
}
