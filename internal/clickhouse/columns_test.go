package clickhouse_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
)

// SelectColumns decodes what the server sends, value for value, across
// blocks and across its read buffer: empty strings, strings longer than a
// one-byte length, arrays of every length, numbers at their edges.
func TestSelectColumnsDecodesEveryValue(t *testing.T) {
	db := chtest.New(t)
	const rows = 300_000 // several blocks and many refills of the read buffer
	q := fmt.Sprintf(`SELECT toUInt64(number * 1000003) AS u64, toUInt32(number) AS u32, toUInt16(number %% 65536) AS u16,
	toUInt8(number %% 256) AS u8, toInt32(toInt32(number %% 7) - 3) AS i32, number / 8 AS f64,
	if(number %% 3 = 0, '', arrayStringConcat(arrayMap(i -> 'x', range(toUInt64(number %% 300))))) AS s,
	arrayMap(i -> toString(i), range(toUInt64(number %% 5))) AS a
FROM system.numbers LIMIT %d`, rows)
	var (
		u64 = clickhouse.NewNumber[uint64]("UInt64")
		u32 = clickhouse.NewNumber[uint32]("UInt32")
		u16 = clickhouse.NewNumber[uint16]("UInt16")
		u8  = clickhouse.NewNumber[uint8]("UInt8")
		i32 = clickhouse.NewNumber[int32]("Int32")
		f64 = clickhouse.NewNumber[float64]("Float64")
		s   = new(clickhouse.Strings)
		a   = new(clickhouse.StringArrays)
	)
	n, blocks := uint64(0), 0
	var arr []string
	err := db.Writer.SelectColumns(context.Background(), q, func() []clickhouse.Column {
		return []clickhouse.Column{u64, u32, u16, u8, i32, f64, s, a}
	}, func(got int) error {
		blocks++
		for i := range got {
			want := ""
			if n%3 != 0 {
				want = strings.Repeat("x", int(n%300))
			}
			arr = a.Row(i, arr[:0])
			switch {
			case u64.Data[i] != n*1000003, u32.Data[i] != uint32(n), u16.Data[i] != uint16(n%65536), u8.Data[i] != uint8(n%256),
				i32.Data[i] != int32(n%7)-3, f64.Data[i] != float64(n)/8:
				return fmt.Errorf("row %d: numbers %d %d %d %d %d %g", n, u64.Data[i], u32.Data[i], u16.Data[i], u8.Data[i], i32.Data[i], f64.Data[i])
			case s.Row(i) != want:
				return fmt.Errorf("row %d: string of %d bytes, want %d", n, len(s.Row(i)), len(want))
			case len(arr) != int(n%5):
				return fmt.Errorf("row %d: array %v", n, arr)
			}
			for j, v := range arr {
				if v != fmt.Sprint(j) {
					return fmt.Errorf("row %d: array %v", n, arr)
				}
			}
			n++
		}
		return nil
	}, clickhouse.WithSetting("max_block_size", "65536"))
	if err != nil {
		t.Fatal(err)
	}
	if n != rows || blocks < 2 {
		t.Fatalf("%d rows in %d blocks, want %d in several", n, blocks, rows)
	}
}

// A column of another type than the answer's is an error, not garbage.
func TestSelectColumnsRefusesAnotherType(t *testing.T) {
	db := chtest.New(t)
	err := db.Writer.SelectColumns(context.Background(), "SELECT toUInt32(1)", func() []clickhouse.Column {
		return []clickhouse.Column{clickhouse.NewNumber[uint64]("UInt64")}
	}, func(int) error { return nil })
	var te *clickhouse.ResultTypeError
	if !errors.As(err, &te) {
		t.Fatalf("got %v, want a *ResultTypeError", err)
	}
	err = db.Writer.SelectColumns(context.Background(), "SELECT 1, 2", func() []clickhouse.Column {
		return []clickhouse.Column{clickhouse.NewNumber[uint8]("UInt8")}
	}, func(int) error { return nil })
	if err == nil {
		t.Fatal("two columns decoded into one")
	}
}

// An error after the server has started streaming comes back typed.
func TestSelectColumnsMidStreamError(t *testing.T) {
	db := chtest.New(t)
	rows := 0
	col := clickhouse.NewNumber[uint64]("UInt64")
	flag := clickhouse.NewNumber[uint8]("UInt8")
	err := db.Writer.SelectColumns(context.Background(),
		"SELECT number, throwIf(number = 3000000) FROM system.numbers LIMIT 5000000",
		func() []clickhouse.Column { return []clickhouse.Column{col, flag} },
		func(n int) error { rows += n; return nil },
		clickhouse.WithSetting("max_block_size", "10000"))
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || ex.Code != 395 {
		t.Fatalf("got %v after %d rows, want the mid-stream exception 395", err, rows)
	}
	if rows == 0 {
		t.Fatal("no block arrived before the error")
	}
}

// Whatever bytes arrive, decoding returns an error or values, never a
// panic; columns grow only as their bytes arrive (a block header that
// promises 2^30 rows and sends none costs nothing).
func FuzzDecodeColumns(f *testing.F) {
	f.Add([]byte{3, 2, 1, 'a', 6, 'U', 'I', 'n', 't', '6', '4', 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
		1, 'b', 6, 'S', 't', 'r', 'i', 'n', 'g', 1, 'x', 0,
		1, 'c', 13, 'A', 'r', 'r', 'a', 'y', '(', 'S', 't', 'r', 'i', 'n', 'g', ')', 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 'h', 'i'})
	f.Add([]byte{3, 0xff, 0xff, 0xff, 0x03})                        // a block of 2^30 rows and no data
	f.Add([]byte{3, 1, 1, 'a', 6, 'U', 'I', 'n', 't', '6', '4', 0}) // cut short
	f.Fuzz(func(t *testing.T, data []byte) {
		cols := []clickhouse.Column{clickhouse.NewNumber[uint64]("UInt64"), new(clickhouse.Strings), new(clickhouse.StringArrays)}
		var got []string // every value of the string columns, as decoded
		err := clickhouse.DecodeColumns(bytes.NewReader(data), func() []clickhouse.Column { return cols }, func(n int) error {
			strs, arrays := cols[1].(*clickhouse.Strings), cols[2].(*clickhouse.StringArrays)
			if strs.Len() != n {
				return fmt.Errorf("%d strings in a block of %d rows", strs.Len(), n)
			}
			for i := range n {
				got = append(got, strings.Clone(strs.Row(i)), fmt.Sprint(arrays.Row(i, nil)))
			}
			return nil
		})
		if err != nil && strings.Contains(err.Error(), "strings in a block") {
			t.Fatal(err)
		}
		if err != nil || len(data) > 1<<16 {
			return
		}
		// What decodes is what clickhouse-go's own codec reads.
		var want []string
		ref := clickhouse.DecodeBlocks(bytes.NewReader(data), func(b *proto.Block) error {
			if len(b.Columns) != 3 {
				return fmt.Errorf("%d columns", len(b.Columns))
			}
			for i := range b.Rows() {
				want = append(want, clickhouse.Get[string](b, 1, i), fmt.Sprint(clickhouse.Get[[]string](b, 2, i)))
			}
			return nil
		})
		if ref == nil && !slices.Equal(got, want) {
			t.Fatalf("decoded %q, clickhouse-go reads %q", got, want)
		}
	})
}

// BenchmarkDecodeStrings: one block of 65,536 short strings (a day's
// paths, products and lists are 0 to 20 bytes), decoded as the publisher's
// range reads decode them.
func BenchmarkDecodeStrings(b *testing.B) {
	const rows = 1 << 16
	str := func(b []byte, s string) []byte { return append(binary.AppendUvarint(b, uint64(len(s))), s...) }
	block := binary.AppendUvarint(binary.AppendUvarint(nil, 1), rows) // one column, its rows
	block = str(str(block, "s"), "String")
	for i := range rows {
		block = str(block, []string{"", "/product/p" + strconv.Itoa(i%997), "category:c" + strconv.Itoa(i%12), "P" + strconv.Itoa(i)}[i%4])
	}
	strs := new(clickhouse.Strings)
	cols := func() []clickhouse.Column { return []clickhouse.Column{strs} }
	b.SetBytes(int64(len(block)))
	for b.Loop() {
		if err := clickhouse.DecodeColumns(bytes.NewReader(block), cols, func(int) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	if strs.Len() != 1<<16 || strs.Row(5) != "/product/p5" {
		b.Fatalf("decoded %d strings, row 5 %q", strs.Len(), strs.Row(5))
	}
}
