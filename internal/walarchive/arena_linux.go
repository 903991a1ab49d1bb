package walarchive

import (
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on x86-64 and arm64
// with 4 KiB base pages.
const hugePage = 2 << 20

// reserve maps size bytes of anonymous memory, aligned to a huge page,
// and asks for huge pages (MADV_HUGEPAGE; a kernel with them disabled
// keeps using small pages). When the mapping fails it returns Go memory.
func reserve(size int) ([]byte, func()) {
	if size <= 0 {
		return nil, nil
	}
	n := (size + hugePage - 1) &^ (hugePage - 1)
	m, err := syscall.Mmap(-1, 0, n+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return make([]byte, size), nil
	}
	off := 0
	if a := addr(m) % hugePage; a != 0 {
		off = int(hugePage - a)
	}
	mem := m[off : off+n : off+n]
	_ = syscall.Madvise(mem, syscall.MADV_HUGEPAGE)
	return mem, func() { _ = syscall.Munmap(m) }
}

// addr is the address of the first byte of m.
func addr(m []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(m))) }
