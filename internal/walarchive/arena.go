package walarchive

// arena hands out the memory a push seals a WAL file in: the output and
// the compressors' scratch buffers, carved in order from one reservation.
// On Linux the reservation is an anonymous mapping that asks for
// transparent huge pages, so touching a few MiB costs a few page faults
// instead of thousands (each one tens of microseconds on a virtual
// machine); elsewhere it is ordinary memory. Only the touched part is
// ever backed by memory. An arena is not safe for concurrent alloc; the
// memory must not be used after release.
type arena struct {
	mem   []byte
	off   int
	unmap func()
}

// arenaAlign keeps the buffers carved from an arena cache-line aligned.
const arenaAlign = 64

// newArena reserves size bytes. alloc falls back to the Go heap beyond
// them.
func newArena(size int) *arena {
	mem, unmap := reserve(size)
	return &arena{mem: mem, unmap: unmap}
}

// sealArenaSize is the reservation that sealing content of n bytes takes
// from an arena: the output (at most n plus S2's and the AEAD's overhead,
// under a quarter) and per worker a block to read into and one to
// compress into (under 2.25 MiB together).
func sealArenaSize(n, workers int) int {
	return n + n/4 + max(workers, 1)*(5<<19) + 1<<20
}

// alloc returns n bytes of undefined content.
func (a *arena) alloc(n int) []byte {
	if a == nil || n > len(a.mem)-a.off {
		return make([]byte, n)
	}
	b := a.mem[a.off : a.off+n : a.off+n]
	a.off += (n + arenaAlign - 1) &^ (arenaAlign - 1)
	a.off = min(a.off, len(a.mem))
	return b
}

// release returns the reservation to the system.
func (a *arena) release() {
	if a != nil && a.unmap != nil {
		a.unmap()
		a.mem, a.unmap = nil, nil
	}
}
