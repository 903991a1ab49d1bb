package corpus

import (
	"encoding/base64"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
)

// Stream identifiers keep the random sequences of different purposes apart,
// so that adding a field to one kind of output never shifts another.
const (
	streamPlan uint64 = iota + 1
	streamInvoice
	streamPDF
	streamBuyer
	streamCert
	streamDump
	streamMutSelect
	streamMutXML
	streamMutPDF
	streamMutAdd
	streamMutDump
)

// splitmix64 is a bijective mixer used to derive independent seeds.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// rng is a small deterministic generator. Only PCG's Uint64 output is
// used (documented as stable), and every derived value is computed here,
// so output never depends on math/rand's helper algorithms.
type rng struct{ p rand.PCG }

func newRNG(seed int64, stream, idx uint64) *rng {
	a := splitmix64(uint64(seed) ^ splitmix64(stream))
	b := splitmix64(a ^ splitmix64(idx+0x632be59bd9b4e019))
	r := &rng{}
	r.p.Seed(a, b)
	return r
}

func (r *rng) u64() uint64 { return r.p.Uint64() }

// intn returns a value in [0, n). n must be > 0.
func (r *rng) intn(n int) int {
	hi, _ := bits.Mul64(r.p.Uint64(), uint64(n))
	return int(hi)
}

// between returns a value in [lo, hi].
func (r *rng) between(lo, hi int) int { return lo + r.intn(hi-lo+1) }

func (r *rng) float() float64 { return float64(r.p.Uint64()>>11) / (1 << 53) }

func (r *rng) chance(p float64) bool { return r.float() < p }

func pick[T any](r *rng, s []T) T { return s[r.intn(len(s))] }

// fill writes pseudo-random bytes into b.
func (r *rng) fill(b []byte) {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.p.Uint64())
	}
	if i < len(b) {
		var t [8]byte
		binary.LittleEndian.PutUint64(t[:], r.p.Uint64())
		copy(b[i:], t[:])
	}
}

func (r *rng) b64(n int) string {
	b := make([]byte, n)
	r.fill(b)
	return base64.StdEncoding.EncodeToString(b)
}

const hexUpper = "0123456789ABCDEF"

func (r *rng) hex(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = hexUpper[r.intn(16)]
	}
	return string(b)
}

func (r *rng) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + r.intn(10))
	}
	return string(b)
}

// hashString is FNV-1a, used to derive per-path seeds.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func hashBytes(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}
