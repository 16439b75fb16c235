package ingest

import (
	"math/bits"
	"sync"
	"unsafe"

	"github.com/apache/arrow/go/v15/arrow/memory"
)

// recordAlloc gives spool records recycled buffers. A record lives from a
// group commit until its rows are inserted (about a second) and is then
// released; without recycling, every commit's buffers are fresh,
// zeroed allocations the garbage collector must then find. Buffers come in
// power-of-two classes, 64-byte aligned as Arrow wants, zeroed as Go's
// allocator would give them. A record never released is simply collected.
var recordAlloc memory.Allocator = &classAllocator{}

const (
	minClass   = 6  // 64 B
	maxClass   = 26 // 64 MiB; larger buffers are not recycled
	numClasses = maxClass - minClass + 1
)

type classAllocator struct {
	pools [numClasses]sync.Pool
}

func class(size int) int {
	if size <= 1<<minClass {
		return 0
	}
	return bits.Len(uint(size-1)) - minClass
}

func (a *classAllocator) Allocate(size int) []byte {
	c := class(size)
	if c >= numClasses {
		return memory.DefaultAllocator.Allocate(size)
	}
	if v := a.pools[c].Get(); v != nil {
		b := (*v.(*[]byte))[:size]
		clear(b)
		return b
	}
	n := 1 << (c + minClass)
	raw := make([]byte, n+64)
	shift := 0
	if r := uintptr(unsafe.Pointer(unsafe.SliceData(raw))) % 64; r != 0 {
		shift = int(64 - r)
	}
	return raw[shift : shift+size : shift+n]
}

func (a *classAllocator) Reallocate(size int, b []byte) []byte {
	if cap(b) >= size {
		old := len(b)
		b = b[:size]
		if size > old {
			clear(b[old:]) // may hold an earlier record's bytes
		}
		return b
	}
	nb := a.Allocate(size)
	copy(nb, b)
	a.Free(b)
	return nb
}

func (a *classAllocator) Free(b []byte) {
	n := cap(b)
	if n < 1<<minClass || n&(n-1) != 0 {
		return // not one of ours (or too large to keep)
	}
	c := bits.TrailingZeros(uint(n)) - minClass
	if c >= numClasses {
		return
	}
	b = b[:0]
	a.pools[c].Put(&b)
}
