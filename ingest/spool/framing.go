package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// errCorrupt marks a segment whose bytes are not what the spool writes: not
// a torn tail (a crash cuts a segment short, never garbles it) but damage.
// Such a segment is moved to quarantine/ instead of being read further.
var errCorrupt = errors.New("corrupt segment")

// Arrow IPC message header types (Message.header_type in Message.fbs).
const (
	headerSchema      = 1
	headerRecordBatch = 3
)

// maxSegmentRows bounds one record batch's declared row count: a group
// commit is at most a few tens of thousands of rows.
const maxSegmentRows = 1 << 24

// A layout is what one release's segments look like: the exact bytes of
// their schema message, and how many field nodes and buffers each record
// batch carries, taken from an Arrow writer of that schema itself.
type layout struct {
	schemaMeta []byte
	shape      [2]int
}

// layouts are the segment layouts this release reads: its own first, then
// every earlier release's (columns matched by name and upgraded on
// insert). A release that changes a column adds the layout it replaces.
var layouts = sync.OnceValue(func() []layout {
	fields := spoolSchema.Fields()
	// Format 0 (the releases before formats were numbered): today's
	// columns, no format in the metadata.
	unnumbered := arrow.NewSchema(fields, nil)
	// Before the hashed account id was dropped: user_hash after session.
	i := slices.IndexFunc(fields, func(f arrow.Field) bool { return f.Name == "session" }) + 1
	withUserHash := arrow.NewSchema(slices.Insert(slices.Clone(fields), i, arrow.Field{Name: "user_hash", Type: arrow.PrimitiveTypes.Uint64}), nil)
	var out []layout
	for _, schema := range []*arrow.Schema{spoolSchema, unnumbered, withUserHash} {
		out = append(out, layoutOf(schema))
	}
	return out
})

// layoutOf writes an empty segment of schema and reads its layout back.
func layoutOf(schema *arrow.Schema) layout {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	rec := b.NewRecord()
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		panic("spool: reference segment: " + err.Error())
	}
	if err := w.Close(); err != nil {
		panic("spool: reference segment: " + err.Error())
	}
	data := buf.Bytes()
	metaLen := int(binary.LittleEndian.Uint32(data[4:]))
	next := data[8+metaLen:]
	batchMeta := next[8 : 8+int(binary.LittleEndian.Uint32(next[4:]))]
	msg, _ := fbRoot(batchMeta)
	batch, _ := msg.table(2)
	_, nodes, _ := batch.vector(1)
	_, buffers, _ := batch.vector(2)
	return layout{schemaMeta: data[8 : 8+metaLen], shape: [2]int{nodes, buffers}}
}

// checkFraming walks a segment of size bytes before any Arrow reader sees
// it, and returns how many leading bytes hold whole, well-formed messages.
// Arrow's reader trusts every length and count it reads (a damaged one
// made it ask for 248 GB), so everything it would trust is checked here
// against the file: the schema must be the spool's own, byte for byte, and
// every record batch must have the spool's shape, no compression, and
// buffers inside its body. A message cut short by the end of the file is a
// torn tail: the bytes before it are valid. Anything else is errCorrupt,
// with the valid prefix still returned.
func checkFraming(r io.ReaderAt, size int64) (valid int64, err error) {
	var known *layout // the segment's, once its schema message is read
	var head [8]byte
	for off := int64(0); ; {
		if size-off < 8 {
			return off, nil // torn (or exactly at the end)
		}
		if _, err := r.ReadAt(head[:], off); err != nil {
			return off, fmt.Errorf("spool: read segment: %w", err)
		}
		if binary.LittleEndian.Uint32(head[:4]) != 0xFFFFFFFF {
			return off, fmt.Errorf("%w: no message marker at byte %d", errCorrupt, off)
		}
		metaLen := int64(int32(binary.LittleEndian.Uint32(head[4:])))
		switch {
		case metaLen == 0:
			return off + 8, nil // end-of-stream marker
		case metaLen < 0 || metaLen%8 != 0 || metaLen > 1<<20:
			return off, fmt.Errorf("%w: message length %d at byte %d", errCorrupt, metaLen, off)
		case off+8+metaLen > size:
			return off, nil // torn
		}
		meta := make([]byte, metaLen)
		if _, err := r.ReadAt(meta, off+8); err != nil {
			return off, fmt.Errorf("spool: read segment: %w", err)
		}
		if off == 0 {
			for i, l := range layouts() {
				if bytes.Equal(meta, l.schemaMeta) {
					known = &layouts()[i]
				}
			}
			if known == nil {
				return off, fmt.Errorf("%w: not a schema any herd release's spool writes", errCorrupt)
			}
			off += 8 + metaLen
			continue
		}
		bodyLen, err := checkMessage(meta, known.shape)
		if err != nil {
			return off, fmt.Errorf("%w: message at byte %d: %v", errCorrupt, off, err)
		}
		if off+8+metaLen+bodyLen > size {
			return off, nil // torn
		}
		off += 8 + metaLen + bodyLen
	}
}

// checkMessage checks one record batch message's metadata against the
// shape of its segment's layout and returns its body length.
func checkMessage(meta []byte, shape [2]int) (int64, error) {
	msg, ok := fbRoot(meta)
	if !ok {
		return 0, errors.New("unreadable metadata")
	}
	if kind, ok := msg.u8(1); !ok || kind != headerRecordBatch {
		return 0, errors.New("not a record batch")
	}
	bodyLen, ok := msg.i64(3)
	if !ok || bodyLen < 0 {
		return 0, errors.New("bad body length")
	}
	batch, ok := msg.table(2)
	if !ok {
		return 0, errors.New("no record batch header")
	}
	// Every row holds at least its 16-byte event id in the body: a count
	// beyond that is damage, and work stays proportional to the file.
	rows, ok := batch.i64(0)
	if !ok || rows < 0 || rows > maxSegmentRows || rows > bodyLen/16 {
		return 0, fmt.Errorf("%d rows in a body of %d bytes", rows, bodyLen)
	}
	if pos, _ := batch.field(3); pos != 0 {
		return 0, errors.New("compressed: the spool never compresses")
	}
	at, nodes, ok := batch.vector(1)
	if !ok || nodes != shape[0] {
		return 0, fmt.Errorf("%d field nodes, want %d", nodes, shape[0])
	}
	for i := range nodes { // FieldNode: length, null_count (int64 each)
		n := int64(binary.LittleEndian.Uint64(meta[at+16*i:]))
		nulls := int64(binary.LittleEndian.Uint64(meta[at+16*i+8:]))
		if n != rows && i == 0 || n < 0 || n > 200*rows || nulls < 0 || nulls > n {
			return 0, fmt.Errorf("field node %d: length %d, nulls %d", i, n, nulls)
		}
	}
	at, buffers, ok := batch.vector(2)
	if !ok || buffers != shape[1] {
		return 0, fmt.Errorf("%d buffers, want %d", buffers, shape[1])
	}
	for i := range buffers { // Buffer: offset, length (int64 each)
		o := int64(binary.LittleEndian.Uint64(meta[at+16*i:]))
		n := int64(binary.LittleEndian.Uint64(meta[at+16*i+8:]))
		if o < 0 || n < 0 || o > bodyLen || n > bodyLen-o {
			return 0, fmt.Errorf("buffer %d outside the body", i)
		}
	}
	return bodyLen, nil
}

// fbTable is a flatbuffer table read with every offset bounds-checked
// (the generated accessors check nothing).
type fbTable struct {
	b      []byte
	pos    int // the table's start
	vtable int
	vsize  int
}

func fbRoot(b []byte) (fbTable, bool) {
	if len(b) < 4 {
		return fbTable{}, false
	}
	return fbAt(b, int(binary.LittleEndian.Uint32(b)))
}

func fbAt(b []byte, pos int) (fbTable, bool) {
	if pos < 0 || pos+4 > len(b) {
		return fbTable{}, false
	}
	vt := pos - int(int32(binary.LittleEndian.Uint32(b[pos:])))
	if vt < 0 || vt+4 > len(b) {
		return fbTable{}, false
	}
	vsize := int(binary.LittleEndian.Uint16(b[vt:]))
	if vsize < 4 || vt+vsize > len(b) {
		return fbTable{}, false
	}
	return fbTable{b: b, pos: pos, vtable: vt, vsize: vsize}, true
}

// field is the absolute position of field n, 0 when absent.
func (t fbTable) field(n int) (int, bool) {
	at := t.vtable + 4 + 2*n
	if at+2 > t.vtable+t.vsize {
		return 0, true
	}
	o := int(binary.LittleEndian.Uint16(t.b[at:]))
	if o == 0 {
		return 0, true
	}
	return t.pos + o, t.pos+o < len(t.b)
}

func (t fbTable) u8(n int) (byte, bool) {
	p, ok := t.field(n)
	if !ok || p == 0 {
		return 0, ok
	}
	return t.b[p], true
}

func (t fbTable) i64(n int) (int64, bool) {
	p, ok := t.field(n)
	if !ok || p == 0 {
		return 0, ok
	}
	if p+8 > len(t.b) {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(t.b[p:])), true
}

func (t fbTable) table(n int) (fbTable, bool) {
	p, ok := t.field(n)
	if !ok || p == 0 || p+4 > len(t.b) {
		return fbTable{}, false
	}
	return fbAt(t.b, p+int(binary.LittleEndian.Uint32(t.b[p:])))
}

// vector returns where a vector of 16-byte structs starts and its length.
func (t fbTable) vector(n int) (start, count int, ok bool) {
	p, ok := t.field(n)
	if !ok || p == 0 || p+4 > len(t.b) {
		return 0, 0, false
	}
	v := p + int(binary.LittleEndian.Uint32(t.b[p:]))
	if v < 0 || v+4 > len(t.b) {
		return 0, 0, false
	}
	count = int(binary.LittleEndian.Uint32(t.b[v:]))
	if count < 0 || count > (len(t.b)-v-4)/16 {
		return 0, 0, false
	}
	return v + 4, count, true
}
