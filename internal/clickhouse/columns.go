package clickhouse

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"unsafe"
)

// Column is one typed column of a Native answer, filled by SelectColumns.
type Column interface {
	// Type is the ClickHouse type the query must give the column.
	Type() string
	reset()
	decode(r *nativeReader, rows int) error
}

// Number is a column of fixed-width numbers.
type Number[T uint8 | uint16 | uint32 | uint64 | int8 | int32 | int64 | float64] struct {
	typ  string
	Data []T
}

// NewNumber is a column of ClickHouse type typ (UInt8, …, Float64) read as T;
// the two must have the same width.
func NewNumber[T uint8 | uint16 | uint32 | uint64 | int8 | int32 | int64 | float64](typ string) *Number[T] {
	return &Number[T]{typ: typ}
}

func (c *Number[T]) Type() string { return c.typ }
func (c *Number[T]) reset()       { c.Data = c.Data[:0] }

// decode reads the values as they are on the wire: little-endian, which is
// what every platform herd builds for is.
func (c *Number[T]) decode(r *nativeReader, rows int) error {
	var zero T
	size := int(unsafe.Sizeof(zero))
	c.Data = c.Data[:0]
	// Grown as the values arrive: a row count no data follows costs
	// nothing.
	for len(c.Data) < rows {
		from := len(c.Data)
		c.Data = append(c.Data, make([]T, min(rows-from, decodeChunk))...)
		tail := c.Data[from:]
		if err := r.read(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(tail))), len(tail)*size)); err != nil {
			return err
		}
	}
	return nil
}

// decodeChunk is how many values a column grows by at a time.
const decodeChunk = 1 << 16

// Strings is a String column: every value in one buffer, as it arrived
// (length prefixes included, so the bytes of many values are copied at
// once), each value's place in it. BenchmarkDecodeStrings: 0.97 ms a block
// against 2.18 ms with a copy per value (docs/benchmarks.md).
type Strings struct {
	buf   []byte
	spans []span
}

type span struct{ start, end uint32 }

func (c *Strings) Type() string { return "String" }
func (c *Strings) reset()       { c.buf, c.spans = c.buf[:0], c.spans[:0] }

// Len is the number of values.
func (c *Strings) Len() int { return len(c.spans) }

// Row is value i. It shares the column's buffer: it stays valid as long as
// the column is not reset or decoded into again.
func (c *Strings) Row(i int) string {
	s := c.spans[i]
	if s.start == s.end {
		return ""
	}
	return unsafe.String(&c.buf[s.start], int(s.end-s.start))
}

// maxColumnBytes bounds one decoded String column of one block.
const maxColumnBytes = 1 << 31

func (c *Strings) decode(r *nativeReader, rows int) error {
	c.spans = slices.Grow(c.spans, min(rows, decodeChunk))
	for done := 0; done < rows; {
		// The values wholly in the read buffer: their places, then their
		// bytes in one copy.
		from, p := r.r, r.r
		base := len(c.buf)
		for done < rows && p < r.w {
			n, w := uint64(r.buf[p]), 1
			if n >= 0x80 {
				if n, w = binary.Uvarint(r.buf[p:r.w]); w <= 0 {
					break // cut by the buffer's end (or malformed: the slow path says)
				}
			}
			if n > uint64(r.w-p-w) {
				break
			}
			start := uint64(base + p - from + w)
			if start+n > maxColumnBytes {
				return fmt.Errorf("string column over %d bytes", maxColumnBytes)
			}
			c.spans = append(c.spans, span{uint32(start), uint32(start + n)})
			p += w + int(n)
			done++
		}
		c.buf = append(c.buf, r.buf[from:p]...)
		r.r = p
		if done == rows {
			break
		}
		// A value the buffer holds only part of: its length, then its
		// bytes as they arrive.
		n, err := r.uvarint()
		if err != nil {
			return err
		}
		if n > maxColumnBytes-uint64(len(c.buf)) {
			return fmt.Errorf("string column over %d bytes", maxColumnBytes)
		}
		start := len(c.buf)
		for left := int(n); left > 0; {
			at := len(c.buf)
			c.buf = append(c.buf, make([]byte, min(left, 1<<20))...)
			if err := r.read(c.buf[at:]); err != nil {
				return err
			}
			left -= len(c.buf) - at
		}
		c.spans = append(c.spans, span{uint32(start), uint32(len(c.buf))})
		done++
	}
	return nil
}

// StringArrays is an Array(String) column.
type StringArrays struct {
	ends   []uint64
	Values Strings
}

func (c *StringArrays) Type() string { return "Array(String)" }
func (c *StringArrays) reset()       { c.ends = c.ends[:0]; c.Values.reset() }

// Row is the values of array i, appended to dst (see Strings.Row).
func (c *StringArrays) Row(i int, dst []string) []string {
	start := uint64(0)
	if i > 0 {
		start = c.ends[i-1]
	}
	for j := start; j < c.ends[i]; j++ {
		dst = append(dst, c.Values.Row(int(j)))
	}
	return dst
}

func (c *StringArrays) decode(r *nativeReader, rows int) error {
	ends := NewNumber[uint64]("")
	if err := ends.decode(r, rows); err != nil {
		return err
	}
	c.ends = append(c.ends[:0], ends.Data...)
	var prev uint64
	for _, e := range c.ends {
		if e < prev || e > maxColumnBytes {
			return fmt.Errorf("array offsets out of order or beyond %d values", maxColumnBytes)
		}
		prev = e
	}
	return c.Values.decode(r, int(prev))
}

// SelectColumns runs query and decodes its answer straight into typed
// columns, block by block: before each block, cols returns the columns to
// fill (in the query's order; fresh ones when the caller keeps earlier
// blocks, which then stay valid), and fn is called with the block's row
// count once they are filled. It is the path for answers of millions of
// rows: nothing is boxed and a column's strings share one buffer. A column
// whose type differs from the answer's is a *ResultTypeError.
func (c *Client) SelectColumns(ctx context.Context, query string, cols func() []Column, fn func(rows int) error, opts ...Option) error {
	r := c.newRequest(query+"\nFORMAT Native", nil, append([]Option{Idempotent()}, opts...))
	return c.do(ctx, r, func(resp *http.Response) error {
		return decodeColumns(resp.Body, cols, fn)
	})
}

func decodeColumns(body io.Reader, cols func() []Column, fn func(rows int) error) error {
	tail := &tailReader{r: body}
	rd := &nativeReader{src: tail, buf: make([]byte, 256<<10)}
	fail := func(err error) error {
		_, _ = io.Copy(io.Discard, io.LimitReader(tail, tailSize))
		if e := exceptionIn(tail.last()); e != nil {
			return e
		}
		return fmt.Errorf("clickhouse: decode result block: %w", err)
	}
	for {
		if err := rd.fill(1); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("clickhouse: read result: %w", err)
		}
		n, err := rd.uvarint()
		if err != nil {
			return fail(err)
		}
		rows, err := rd.uvarint()
		if err != nil {
			return fail(err)
		}
		if rows > 1<<30 {
			return fail(fmt.Errorf("block of %d rows", rows))
		}
		dst := cols()
		if int(n) != len(dst) {
			return fail(fmt.Errorf("%d columns in the answer, %d expected", n, len(dst)))
		}
		for _, col := range dst {
			name, err := rd.str()
			if err != nil {
				return fail(err)
			}
			typ, err := rd.str()
			if err != nil {
				return fail(err)
			}
			if typ != col.Type() {
				return &ResultTypeError{Column: name, Want: col.Type(), Got: typ}
			}
			col.reset()
			if err := col.decode(rd, int(rows)); err != nil {
				return fail(fmt.Errorf("column %s: %w", name, err))
			}
		}
		if rows == 0 {
			continue
		}
		if err := fn(int(rows)); err != nil {
			return err
		}
	}
}

// nativeReader reads the Native format from its own buffer: varints and
// short strings without a call per byte.
type nativeReader struct {
	src  io.Reader
	buf  []byte
	r, w int
}

// fill makes at least min bytes readable (min ≤ len(buf)); io.EOF when the
// answer ends first.
func (n *nativeReader) fill(min int) error {
	if n.w-n.r >= min {
		return nil
	}
	n.w = copy(n.buf, n.buf[n.r:n.w])
	n.r = 0
	for n.w < min {
		k, err := n.src.Read(n.buf[n.w:])
		n.w += k
		if err != nil {
			if n.w >= min {
				return nil
			}
			if errors.Is(err, io.EOF) && n.w > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

func (n *nativeReader) uvarint() (uint64, error) {
	if n.w-n.r >= 1 && n.buf[n.r] < 0x80 { // one byte: most lengths
		n.r++
		return uint64(n.buf[n.r-1]), nil
	}
	if n.w-n.r < 10 {
		if err := n.fill(10); err != nil && n.w == n.r {
			return 0, err
		}
	}
	var x uint64
	var s uint
	for i := 0; i < 10 && n.r < n.w; i++ {
		b := n.buf[n.r]
		n.r++
		if b < 0x80 {
			return x | uint64(b)<<s, nil
		}
		x |= uint64(b&0x7f) << s
		s += 7
	}
	return 0, errors.New("bad varint")
}

// read fills dst.
func (n *nativeReader) read(dst []byte) error {
	k := copy(dst, n.buf[n.r:n.w])
	n.r += k
	if k == len(dst) {
		return nil
	}
	_, err := io.ReadFull(n.src, dst[k:])
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (n *nativeReader) str() (string, error) {
	l, err := n.uvarint()
	if err != nil {
		return "", err
	}
	if l > 1<<16 {
		return "", fmt.Errorf("name of %d bytes", l)
	}
	b := make([]byte, l)
	if err := n.read(b); err != nil {
		return "", err
	}
	return string(b), nil
}
