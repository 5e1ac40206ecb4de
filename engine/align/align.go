// Package align discovers the Direct I/O alignment of a directory's file
// system, hands out aligned buffers, and holds the one alignment checker that
// every backend and test helper calls.
package align

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// Default is the alignment used when the file system reports none. It is also
// the smallest batch alignment dwal writes, so a directory written with it
// opens on any backend.
const Default = 4096

// ErrMisaligned is wrapped by Check's errors.
var ErrMisaligned = errors.New("dwal: misaligned I/O")

// Check reports whether an I/O of buffer p at offset off is legal for
// alignment a: the buffer's address, its length and the offset are multiples
// of a, and the length is positive.
func Check(p []byte, off int64, a int) error {
	if a <= 0 || a&(a-1) != 0 {
		return fmt.Errorf("%w: alignment %d is not a power of two", ErrMisaligned, a)
	}
	if len(p) == 0 {
		return fmt.Errorf("%w: empty buffer", ErrMisaligned)
	}
	if len(p)%a != 0 {
		return fmt.Errorf("%w: length %d is not a multiple of %d", ErrMisaligned, len(p), a)
	}
	if off < 0 || off%int64(a) != 0 {
		return fmt.Errorf("%w: offset %d is not a multiple of %d", ErrMisaligned, off, a)
	}
	if addr := uintptr(unsafe.Pointer(unsafe.SliceData(p))); addr%uintptr(a) != 0 {
		return fmt.Errorf("%w: buffer address %#x is not a multiple of %d", ErrMisaligned, addr, a)
	}
	return nil
}

// Up rounds n up to a multiple of a (a power of two).
func Up(n, a int) int { return (n + a - 1) &^ (a - 1) }

// Up64 rounds n up to a multiple of a (a power of two).
func Up64(n int64, a int) int64 { return (n + int64(a) - 1) &^ (int64(a) - 1) }

// Alloc returns a zeroed buffer of n bytes whose first byte is aligned to a.
// Go's heap does not move objects, so the address stays valid for I/O as long
// as the slice is reachable.
func Alloc(n, a int) []byte {
	if n == 0 {
		return nil
	}
	raw := make([]byte, n+a)
	shift := 0
	if r := int(uintptr(unsafe.Pointer(unsafe.SliceData(raw))) & uintptr(a-1)); r != 0 {
		shift = a - r
	}
	return raw[shift : shift+n : shift+n]
}

// Pool hands out aligned buffers in power-of-two size classes from one
// alignment up to maxClass bytes; larger requests are allocated and dropped.
// Buffers come back with stale contents: callers overwrite what they use.
type Pool struct {
	align   int
	classes []sync.Pool // class i holds buffers of align<<i bytes
}

// maxPooledShift bounds pooled buffers at align<<maxPooledShift (16 MiB for
// 4 KiB alignment); larger buffers are rare (huge entries) and not kept.
const maxPooledShift = 12

// NewPool makes a pool of buffers aligned to a.
func NewPool(a int) *Pool {
	return &Pool{align: a, classes: make([]sync.Pool, maxPooledShift+1)}
}

// Alignment is the pool's alignment.
func (p *Pool) Alignment() int { return p.align }

// Get returns a buffer of at least n bytes, len rounded up to the alignment.
// Its contents are not zeroed.
func (p *Pool) Get(n int) *[]byte {
	n = Up(n, p.align)
	c := p.class(n)
	if c < 0 {
		b := Alloc(n, p.align)
		return &b
	}
	if v := p.classes[c].Get(); v != nil {
		bp := v.(*[]byte)
		*bp = (*bp)[:n]
		return bp
	}
	b := Alloc(p.align<<c, p.align)[:n]
	return &b
}

// Put returns a buffer obtained from Get.
func (p *Pool) Put(bp *[]byte) {
	c := p.class(cap(*bp))
	if c < 0 || cap(*bp) != p.align<<c {
		return
	}
	p.classes[c].Put(bp)
}

func (p *Pool) class(n int) int {
	for c := 0; c <= maxPooledShift; c++ {
		if n <= p.align<<c {
			return c
		}
	}
	return -1
}
