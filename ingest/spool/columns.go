package spool

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/google/uuid"
)

// A row's way to ClickHouse is columnar from the writer on: the rows of one
// writer batch become one Arrow record (the spool's unit, fsync'd before the
// 202), and the spool turns its records column by column into one Native
// block per insert. rawColumns is the single description of both formats:
// herd_raw.events' columns, in order.
var rawColumns = []rawColumn{
	{name: "event_id", ch: "UUID", arrow: &arrow.FixedSizeBinaryType{ByteWidth: 16},
		put: func(b array.Builder, rows []Row) {
			fb := b.(*array.FixedSizeBinaryBuilder)
			for i := range rows {
				fb.Append(rows[i].EventID[:])
			}
		},
		get: func(a arrow.Array, rows []Row) {
			fa := a.(*array.FixedSizeBinary)
			for i := range rows {
				copy(rows[i].EventID[:], fa.Value(i))
			}
		},
		native: nativeOf(func() chproto.ColumnOf[uuid.UUID] { return new(chproto.ColUUID) }, func(a arrow.Array) func(int) uuid.UUID {
			fa := a.(*array.FixedSizeBinary)
			return func(i int) uuid.UUID { return uuid.UUID(fa.Value(i)) }
		})},
	stringColumn("site", func(r *Row) *string { return &r.Site }),
	{name: "received", ch: "DateTime", arrow: arrow.PrimitiveTypes.Int64,
		put: func(b array.Builder, rows []Row) {
			ib := b.(*array.Int64Builder)
			for i := range rows {
				ib.Append(rows[i].Received.Unix())
			}
		},
		get: func(a arrow.Array, rows []Row) {
			ia := a.(*array.Int64)
			for i := range rows {
				rows[i].Received = unixUTC(ia.Value(i))
			}
		},
		native: nativeOf(func() chproto.ColumnOf[chproto.DateTime] { return new(rawDateTime) }, func(a arrow.Array) func(int) chproto.DateTime {
			ia := a.(*array.Int64)
			return func(i int) chproto.DateTime { return chproto.DateTime(uint32(ia.Value(i))) }
		})},
	numberColumn("seq", "UInt16", arrow.PrimitiveTypes.Uint16, func(r *Row) *uint16 { return &r.Seq }, func() chproto.ColumnOf[uint16] { return new(chproto.ColUInt16) }),
	withNative(numberColumn("type", "UInt8", arrow.PrimitiveTypes.Uint8, func(r *Row) *uint8 { return &r.Type }, func() chproto.ColumnOf[uint8] { return new(chproto.ColUInt8) }),
		"Enum8('pageview' = 1, 'product_list_view' = 2, 'product_view' = 3, 'product_click' = 4, 'add_to_cart' = 5, 'remove_from_cart' = 6, 'checkout_step' = 7, 'purchase' = 8, 'search' = 9, 'slot_impression' = 10)",
		nativeOf(func() chproto.ColumnOf[chproto.Enum8] { return new(chproto.ColEnum8) }, func(a arrow.Array) func(int) chproto.Enum8 {
			ua := a.(*array.Uint8)
			return func(i int) chproto.Enum8 { return chproto.Enum8(ua.Value(i)) }
		})),
	numberColumn("visitor", "UInt64", arrow.PrimitiveTypes.Uint64, func(r *Row) *uint64 { return &r.Visitor }, func() chproto.ColumnOf[uint64] { return new(chproto.ColUInt64) }),
	numberColumn("session", "UInt64", arrow.PrimitiveTypes.Uint64, func(r *Row) *uint64 { return &r.Session }, func() chproto.ColumnOf[uint64] { return new(chproto.ColUInt64) }),
	stringColumn("path", func(r *Row) *string { return &r.Path }),
	stringColumn("page_type", func(r *Row) *string { return &r.PageType }),
	stringColumn("utm_source", func(r *Row) *string { return &r.UTMSource }),
	stringColumn("utm_medium", func(r *Row) *string { return &r.UTMMedium }),
	stringColumn("utm_campaign", func(r *Row) *string { return &r.UTMCampaign }),
	stringColumn("referrer_host", func(r *Row) *string { return &r.ReferrerHost }),
	stringColumn("browser", func(r *Row) *string { return &r.Browser }),
	numberColumn("browser_major", "UInt16", arrow.PrimitiveTypes.Uint16, func(r *Row) *uint16 { return &r.BrowserMajor }, func() chproto.ColumnOf[uint16] { return new(chproto.ColUInt16) }),
	stringColumn("os", func(r *Row) *string { return &r.OS }),
	withNative(stringColumn("device", func(r *Row) *string { return &r.Device }),
		"Enum8('desktop' = 1, 'mobile' = 2, 'tablet' = 3, 'other' = 4)",
		nativeOf(func() chproto.ColumnOf[chproto.Enum8] { return new(chproto.ColEnum8) }, func(a arrow.Array) func(int) chproto.Enum8 {
			sa := a.(*array.String)
			return func(i int) chproto.Enum8 { return deviceEnum(sa.Value(i)) }
		})),
	withNative(stringColumn("country", func(r *Row) *string { return &r.Country }), "FixedString(2)", fixedString(2)),
	stringColumn("product_id", func(r *Row) *string { return &r.ProductID }),
	stringColumn("product_category", func(r *Row) *string { return &r.ProductCategory }),
	centsColumn("product_price", func(r *Row) *int64 { return &r.ProductPrice }),
	numberColumn("position", "UInt16", arrow.PrimitiveTypes.Uint16, func(r *Row) *uint16 { return &r.Position }, func() chproto.ColumnOf[uint16] { return new(chproto.ColUInt16) }),
	stringColumn("list", func(r *Row) *string { return &r.List }),
	stringColumn("slot", func(r *Row) *string { return &r.Slot }),
	stringColumn("variant", func(r *Row) *string { return &r.Variant }),
	numberColumn("step", "UInt8", arrow.PrimitiveTypes.Uint8, func(r *Row) *uint8 { return &r.Step }, func() chproto.ColumnOf[uint8] { return new(chproto.ColUInt8) }),
	centsColumn("order_value", func(r *Row) *int64 { return &r.OrderValue }),
	withNative(stringColumn("currency", func(r *Row) *string { return &r.Currency }), "FixedString(3)", fixedString(3)),
	numberColumn("items", "UInt16", arrow.PrimitiveTypes.Uint16, func(r *Row) *uint16 { return &r.Items }, func() chproto.ColumnOf[uint16] { return new(chproto.ColUInt16) }),
	{name: "products", ch: "Array(String)", arrow: arrow.ListOf(arrow.BinaryTypes.String),
		put: func(b array.Builder, rows []Row) {
			lb := b.(*array.ListBuilder)
			vb := lb.ValueBuilder().(*array.StringBuilder)
			for i := range rows {
				lb.Append(true)
				for _, p := range rows[i].Products {
					vb.Append(p)
				}
			}
		},
		get: func(a arrow.Array, rows []Row) {
			la := a.(*array.List)
			vals := la.ListValues().(*array.String)
			for i := range rows {
				start, end := la.ValueOffsets(i)
				rows[i].Products = nil
				for j := start; j < end; j++ {
					rows[i].Products = append(rows[i].Products, vals.Value(int(j)))
				}
			}
		},
		native: func() nativeColumn {
			arr := chproto.NewArray[string](new(chproto.ColStr))
			return &productsColumn{chColumn: chColumn[[]string]{col: arr}, arr: arr}
		}},
	stringColumn("search_term", func(r *Row) *string { return &r.SearchTerm }),
	numberColumn("search_results", "Int32", arrow.PrimitiveTypes.Int32, func(r *Row) *int32 { return &r.SearchResults }, func() chproto.ColumnOf[int32] { return new(chproto.ColInt32) }),
	withNative(numberColumn("imported", "UInt8", arrow.FixedWidthTypes.Boolean, func(r *Row) *bool { return &r.Imported }, nil),
		"UInt8", nativeOf(func() chproto.ColumnOf[uint8] { return new(chproto.ColUInt8) }, func(a arrow.Array) func(int) uint8 {
			ba := a.(*array.Boolean)
			return func(i int) uint8 {
				if ba.Value(i) {
					return 1
				}
				return 0
			}
		})),
}

// rawColumn is one column of herd_raw.events in both of its formats.
type rawColumn struct {
	name  string
	ch    column.Type    // the ClickHouse type
	arrow arrow.DataType // the spool's type
	// put appends the column's values of rows to an Arrow builder; get sets
	// them back from an Arrow column (tests, and nothing on the hot path).
	put func(array.Builder, []Row)
	get func(arrow.Array, []Row)
	// native makes an empty ClickHouse column that fills from this Arrow column.
	native func() nativeColumn
}

// formatKey names the schema metadata that says which format of the spool
// a segment holds. Segments without it are format 0: every release before
// the formats were numbered, whose columns the reader matches by name.
const formatKey = "herd.spool.format"

// format is the spool format this release writes. A release that changes
// a column adds to upgrade what turns the old one into the new, and
// reads every format before it.
const format = 1

var spoolSchema = func() *arrow.Schema {
	fields := make([]arrow.Field, len(rawColumns))
	for i, c := range rawColumns {
		fields[i] = arrow.Field{Name: c.name, Type: c.arrow}
	}
	md := arrow.NewMetadata([]string{formatKey}, []string{strconv.Itoa(format)})
	return arrow.NewSchema(fields, &md)
}()

// segmentFormat is the spool format a segment's schema says it holds.
func segmentFormat(s *arrow.Schema) (int, error) {
	i := s.Metadata().FindKey(formatKey)
	if i < 0 {
		return 0, nil
	}
	f, err := strconv.Atoi(s.Metadata().Values()[i])
	if err != nil || f < 0 {
		return 0, fmt.Errorf("spool format %q", s.Metadata().Values()[i])
	}
	return f, nil
}

// upgrade returns rec, written in an earlier spool format (or an unnumbered
// release's layout), in this release's: columns matched by name, a column
// the segment lacks (added since) filled with its zero value, one herd no
// longer stores (dropped since) left out. A column whose type changed would
// need its conversion here; none has. The caller releases the result.
func upgrade(rec arrow.Record) (arrow.Record, error) {
	n := int(rec.NumRows())
	cols := make([]arrow.Array, len(rawColumns))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, c := range rawColumns {
		idx := rec.Schema().FieldIndices(c.name)
		if len(idx) == 0 {
			b := array.NewBuilder(recordAlloc, c.arrow)
			b.AppendEmptyValues(n)
			cols[i] = b.NewArray()
			b.Release()
			continue
		}
		old := rec.Column(idx[0])
		if !arrow.TypeEqual(old.DataType(), c.arrow) {
			return nil, fmt.Errorf("spool column %s: %s in the segment, %s now, and no conversion", c.name, old.DataType(), c.arrow)
		}
		old.Retain()
		cols[i] = old
	}
	return array.NewRecord(spoolSchema, cols, int64(n)), nil
}

// recordBuilders are reused: a builder is 34 column builders, and a small
// group commit would otherwise make them all anew for a few rows.
var recordBuilders = sync.Pool{New: func() any { return array.NewRecordBuilder(recordAlloc, spoolSchema) }}

// rowsToRecord makes one Arrow record of batches of rows.
func rowsToRecord(batches ...[]Row) arrow.Record {
	b := recordBuilders.Get().(*array.RecordBuilder)
	defer recordBuilders.Put(b) // NewRecord has emptied it
	n := 0
	for _, rows := range batches {
		n += len(rows)
	}
	b.Reserve(n)
	for j, c := range rawColumns {
		for _, rows := range batches {
			c.put(b.Field(j), rows)
		}
	}
	return b.NewRecord()
}

// recordToRows reads rows back from a record.
func recordToRows(rec arrow.Record) []Row {
	rows := make([]Row, rec.NumRows())
	for j, c := range rawColumns {
		c.get(rec.Column(j), rows)
	}
	return rows
}

// EncodeRows builds the Native block of rows for herd_raw.events, the way
// the spool does: through one Arrow record.
func EncodeRows(rows []Row) (*proto.Block, error) {
	return new(Encoder).Encode(rows)
}

// Encoder builds Native blocks of rows the way the spool does, reusing its
// block's memory from one call to the next. The zero value is ready.
type Encoder struct{ b *rawBlock }

// Encode returns the block of rows; it is valid until the next call.
func (e *Encoder) Encode(rows []Row) (*proto.Block, error) {
	if e.b == nil {
		e.b = newRawBlock()
	}
	rec := rowsToRecord(rows)
	defer rec.Release()
	e.b.reset()
	return e.b.block, e.b.add(rec)
}

// rawBlock is a Native block of herd_raw.events that records are appended to.
type rawBlock struct {
	block *proto.Block
	cols  []nativeColumn
}

func newRawBlock() *rawBlock {
	b := &rawBlock{block: proto.NewBlock(), cols: make([]nativeColumn, len(rawColumns))}
	for i, c := range rawColumns {
		col := c.native()
		col.setName(c.name, c.ch)
		b.cols[i] = col
		b.block.Columns = append(b.block.Columns, col)
	}
	return b
}

// reset empties the block, keeping its columns' memory for the next rows.
func (b *rawBlock) reset() {
	for _, c := range b.cols {
		c.Reset()
	}
}

// add appends every row of a spool record.
func (b *rawBlock) add(rec arrow.Record) error {
	if !rec.Schema().Equal(spoolSchema) {
		return errors.New("spool record: schema differs from herd_raw.events")
	}
	for i, c := range b.cols {
		c.fill(rec.Column(i))
	}
	return nil
}

func (b *rawBlock) rows() int {
	if b == nil {
		return 0
	}
	return b.block.Rows()
}

// nativeColumn is a ClickHouse column that fills from an Arrow column.
type nativeColumn interface {
	column.Interface
	setName(name string, typ column.Type)
	fill(arrow.Array)
}

// chColumn adapts a typed ch-go column (the codec under clickhouse-go) to
// clickhouse-go's column.Interface, so a Block carries columns filled with
// plain appends rather than clickhouse-go's reflective AppendRow. Only the
// encoding side is used.
type chColumn[T any] struct {
	name string
	typ  column.Type
	col  chproto.ColumnOf[T]
	from func(arrow.Array) func(int) T
}

func nativeOf[T any](newCol func() chproto.ColumnOf[T], from func(arrow.Array) func(int) T) func() nativeColumn {
	return func() nativeColumn { return &chColumn[T]{col: newCol(), from: from} }
}

func (c *chColumn[T]) setName(name string, typ column.Type) { c.name, c.typ = name, typ }
func (c *chColumn[T]) fill(a arrow.Array) {
	get := c.from(a)
	for i, n := 0, a.Len(); i < n; i++ {
		c.col.Append(get(i))
	}
}
func (c *chColumn[T]) Name() string                { return c.name }
func (c *chColumn[T]) Type() column.Type           { return c.typ }
func (c *chColumn[T]) Rows() int                   { return c.col.Rows() }
func (c *chColumn[T]) Row(i int, _ bool) any       { return c.col.Row(i) }
func (c *chColumn[T]) ScanType() reflect.Type      { return reflect.TypeFor[T]() }
func (c *chColumn[T]) Reset()                      { c.col.Reset() }
func (c *chColumn[T]) Encode(b *chproto.Buffer)    { c.col.EncodeColumn(b) }
func (c *chColumn[T]) ScanRow(any, int) error      { return errWriteOnly }
func (c *chColumn[T]) Append(any) ([]uint8, error) { return nil, errWriteOnly }
func (c *chColumn[T]) AppendRow(any) error         { return errWriteOnly }
func (c *chColumn[T]) Decode(r *chproto.Reader, rows int) error {
	return c.col.DecodeColumn(r, rows)
}

var errWriteOnly = errors.New("herd_raw.events columns are filled from spool records only")

// productsColumn is Array(String), filled from an Arrow list of strings.
type productsColumn struct {
	chColumn[[]string]
	arr *chproto.ColArr[string]
}

func (c *productsColumn) fill(a arrow.Array) {
	la := a.(*array.List)
	vals := la.ListValues().(*array.String)
	data := c.arr.Data.(*chproto.ColStr)
	for i, n := 0, la.Len(); i < n; i++ {
		start, end := la.ValueOffsets(i)
		for j := start; j < end; j++ {
			data.Append(vals.Value(int(j)))
		}
		c.arr.Offsets.Append(uint64(data.Rows()))
	}
}

// fixedString makes a FixedString(n) column from an Arrow string column; a
// value of another length (only "" is expected) is stored as n zero bytes.
func fixedString(n int) func() nativeColumn {
	return nativeOf(func() chproto.ColumnOf[[]byte] { return &chproto.ColFixedStr{Size: n} }, func(a arrow.Array) func(int) []byte {
		sa := a.(*array.String)
		zero := make([]byte, n)
		return func(i int) []byte {
			if v := sa.Value(i); len(v) == n {
				return []byte(v)
			}
			return zero
		}
	})
}

func stringColumn(name string, f func(*Row) *string) rawColumn {
	return rawColumn{name: name, ch: "String", arrow: arrow.BinaryTypes.String,
		put: func(b array.Builder, rows []Row) {
			sb := b.(*array.StringBuilder)
			n := 0
			for i := range rows {
				n += len(*f(&rows[i]))
			}
			sb.ReserveData(n) // one allocation instead of doubling
			for i := range rows {
				sb.Append(*f(&rows[i]))
			}
		},
		get: func(a arrow.Array, rows []Row) {
			sa := a.(*array.String)
			for i := range rows {
				*f(&rows[i]) = sa.Value(i)
			}
		},
		native: nativeOf(func() chproto.ColumnOf[string] { return new(chproto.ColStr) }, func(a arrow.Array) func(int) string {
			return a.(*array.String).Value
		}),
	}
}

// arrowBuilder and arrowValues are what Arrow's typed builders and arrays of
// T have in common.
type (
	arrowBuilder[T any] interface{ Append(T) }
	arrowValues[T any]  interface{ Value(int) T }
)

// numberColumn is a field stored as it is in an Arrow primitive column
// (and in the ClickHouse column newCol makes; nil: withNative gives
// another).
func numberColumn[T uint8 | uint16 | uint64 | int32 | int64 | bool](name string, ch column.Type, dt arrow.DataType, f func(*Row) *T, newCol func() chproto.ColumnOf[T]) rawColumn {
	var native func() nativeColumn
	if newCol != nil {
		native = nativeOf(newCol, func(a arrow.Array) func(int) T { return a.(arrowValues[T]).Value })
	}
	return rawColumn{name: name, ch: ch, arrow: dt, native: native,
		put: func(b array.Builder, rows []Row) {
			tb := b.(arrowBuilder[T])
			for i := range rows {
				tb.Append(*f(&rows[i]))
			}
		},
		get: func(a arrow.Array, rows []Row) {
			ta := a.(arrowValues[T])
			for i := range rows {
				*f(&rows[i]) = ta.Value(i)
			}
		},
	}
}

// centsColumn is a money amount: int64 cents in the spool, Decimal(18, 2)
// in ClickHouse (whose Decimal64 is the same integer of cents).
func centsColumn(name string, f func(*Row) *int64) rawColumn {
	return withNative(numberColumn(name, "Int64", arrow.PrimitiveTypes.Int64, f, nil),
		"Decimal(18, 2)", nativeOf(func() chproto.ColumnOf[chproto.Decimal64] { return new(chproto.ColDecimal64) }, func(a arrow.Array) func(int) chproto.Decimal64 {
			ia := a.(*array.Int64)
			return func(i int) chproto.Decimal64 { return chproto.Decimal64(ia.Value(i)) }
		}))
}

func withNative(c rawColumn, ch column.Type, native func() nativeColumn) rawColumn {
	c.ch, c.native = ch, native
	return c
}

func deviceEnum(d string) chproto.Enum8 {
	switch d {
	case "desktop":
		return 1
	case "mobile":
		return 2
	case "tablet":
		return 3
	}
	return 4
}

// rawDateTime is DateTime appended as seconds, without a time.Time.
type rawDateTime struct{ chproto.ColDateTime }

func (c *rawDateTime) Append(v chproto.DateTime)      { c.AppendRaw(v) }
func (c *rawDateTime) AppendArr(v []chproto.DateTime) { c.Data = append(c.Data, v...) }
func (c *rawDateTime) Row(i int) chproto.DateTime     { return c.Data[i] }

func unixUTC(sec int64) time.Time { return time.Unix(sec, 0).UTC() }
