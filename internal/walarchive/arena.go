package walarchive

// Arena hands out the memory a push seals a WAL file in: the output and
// the compressors' scratch buffers, carved in order from one reservation.
// On Linux the reservation is an anonymous mapping that asks for
// transparent huge pages, so touching a few MiB costs a few page faults
// instead of thousands (each one tens of microseconds on a virtual
// machine); elsewhere it is ordinary memory. Only the touched part is
// ever backed by memory. An Arena is not safe for concurrent Alloc; the
// memory must not be used after Release.
type Arena struct {
	mem     []byte
	off     int
	release func()
}

// arenaAlign keeps the buffers carved from an arena cache-line aligned.
const arenaAlign = 64

// NewArena reserves size bytes. Alloc falls back to the Go heap beyond
// them.
func NewArena(size int) *Arena {
	mem, release := reserve(size)
	return &Arena{mem: mem, release: release}
}

// SealArenaSize is the reservation that sealing content of n bytes takes
// from an arena: the output (at most n plus S2's and the AEAD's overhead,
// under a quarter) and per worker a block to read into and one to
// compress into (under 2.25 MiB together).
func SealArenaSize(n, workers int) int {
	return n + n/4 + max(workers, 1)*(5<<19) + 1<<20
}

// Alloc returns n bytes of undefined content.
func (a *Arena) Alloc(n int) []byte {
	if a == nil || n > len(a.mem)-a.off {
		return make([]byte, n)
	}
	b := a.mem[a.off : a.off+n : a.off+n]
	a.off += (n + arenaAlign - 1) &^ (arenaAlign - 1)
	a.off = min(a.off, len(a.mem))
	return b
}

// Release returns the reservation to the system.
func (a *Arena) Release() {
	if a != nil && a.release != nil {
		a.release()
		a.mem, a.release = nil, nil
	}
}
