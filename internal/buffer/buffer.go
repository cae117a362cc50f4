// Package buffer is the module's one pool of byte buffers, for entries,
// lines and a record's scratch space. A buffer that grew past MaxPooled
// (a huge record) is left to the garbage collector rather than kept alive
// by the pool.
package buffer

import "sync"

// MaxPooled is the largest buffer the pool keeps.
const MaxPooled = 64 << 10

var pool = sync.Pool{New: func() any {
	b := make([]byte, 0, 2048)
	return &b
}}

// Get returns an empty buffer with room for at least size bytes.
func Get(size int) *[]byte {
	if size > MaxPooled {
		b := make([]byte, 0, size)
		return &b
	}
	b := pool.Get().(*[]byte)
	if cap(*b) < size {
		*b = make([]byte, 0, size)
	}
	*b = (*b)[:0]
	return b
}

// Put gives b back to the pool, unless it is too large to keep.
func Put(b *[]byte) {
	if cap(*b) <= MaxPooled {
		pool.Put(b)
	}
}
