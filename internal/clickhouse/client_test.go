package clickhouse_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/shopspring/decimal"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
)

func TestMain(m *testing.M) {
	if helperMain() {
		return
	}
	os.Exit(chtest.Run(m))
}

// roundTripColumns is every column type herd stores, with a generator of
// values that exercise its edges.
var roundTripColumns = []struct {
	name string
	typ  column.Type
	gen  func(r *rand.Rand, i int) any
}{
	{"s", "String", func(r *rand.Rand, i int) any { return randomBytes(r, i) }},
	{"u8", "UInt8", func(r *rand.Rand, i int) any { return uint8(r.Uint32()) }},
	{"u16", "UInt16", func(r *rand.Rand, i int) any { return uint16(r.Uint32()) }},
	{"u32", "UInt32", func(r *rand.Rand, i int) any { return r.Uint32() }},
	{"u64", "UInt64", func(r *rand.Rand, i int) any {
		if i%97 == 0 {
			return uint64(math.MaxUint64)
		}
		return r.Uint64()
	}},
	{"i64", "Int64", func(r *rand.Rand, i int) any {
		if i%89 == 0 {
			return int64(math.MinInt64)
		}
		return r.Int64() - r.Int64()
	}},
	{"f64", "Float64", func(r *rand.Rand, i int) any {
		switch i % 101 {
		case 0:
			return math.Inf(-1)
		case 1:
			return math.SmallestNonzeroFloat64
		}
		return r.NormFloat64() * 1e6
	}},
	{"dec", "Decimal(18, 2)", func(r *rand.Rand, i int) any {
		return decimal.New(r.Int64N(2e17)-1e17, -2)
	}},
	{"d", "Date", func(r *rand.Rand, i int) any {
		return time.Date(1970+r.IntN(130), 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r.IntN(365))
	}},
	{"dt", "DateTime", func(r *rand.Rand, i int) any {
		return time.Unix(r.Int64N(math.MaxUint32), 0).UTC()
	}},
	{"e", "Enum8('pageview' = 1, 'purchase' = 8, 'other' = -3)", func(r *rand.Rand, i int) any {
		return []string{"pageview", "purchase", "other"}[i%3]
	}},
	{"fs", "FixedString(2)", func(r *rand.Rand, i int) any {
		return string([]byte{byte(r.Uint32()), byte(r.Uint32())})
	}},
	{"arr", "Array(String)", func(r *rand.Rand, i int) any {
		out := make([]string, r.IntN(4))
		for j := range out {
			out[j] = randomBytes(r, i+j)
		}
		return out
	}},
	{"ns", "Nullable(String)", func(r *rand.Rand, i int) any {
		if i%3 == 0 {
			return (*string)(nil)
		}
		s := randomBytes(r, i)
		return &s
	}},
	{"nu32", "Nullable(UInt32)", func(r *rand.Rand, i int) any {
		if i%4 == 0 {
			return (*uint32)(nil)
		}
		v := r.Uint32()
		return &v
	}},
	{"ndt", "Nullable(DateTime)", func(r *rand.Rand, i int) any {
		if i%5 == 0 {
			return (*time.Time)(nil)
		}
		v := time.Unix(r.Int64N(math.MaxUint32), 0).UTC()
		return &v
	}},
}

// randomBytes returns strings with every byte value, invalid UTF-8, NULs and
// now and then a long one.
func randomBytes(r *rand.Rand, i int) string {
	n := r.IntN(24)
	if i%1000 == 0 {
		n = 70_000
	}
	b := make([]byte, n)
	for j := range b {
		b[j] = byte(r.Uint32())
	}
	return string(b)
}

func TestRoundTripEveryType(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	var defs []string
	for _, c := range roundTripColumns {
		defs = append(defs, c.name+" "+string(c.typ))
	}
	if err := db.Writer.Exec(ctx, "CREATE TABLE rt (id UInt32, "+strings.Join(defs, ", ")+") ENGINE = MergeTree() ORDER BY id"); err != nil {
		t.Fatal(err)
	}
	const rows = 100_000
	r := rand.New(rand.NewPCG(1, 2))
	want := make([][]any, rows)
	block := proto.NewBlock()
	if err := block.AddColumn("id", "UInt32"); err != nil {
		t.Fatal(err)
	}
	for _, c := range roundTripColumns {
		if err := block.AddColumn(c.name, c.typ); err != nil {
			t.Fatal(err)
		}
	}
	for i := range rows {
		row := []any{uint32(i)}
		for _, c := range roundTripColumns {
			row = append(row, c.gen(r, i))
		}
		want[i] = row
		if err := block.Append(row...); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
	}
	if err := db.Writer.Insert(ctx, "rt", block); err != nil {
		t.Fatal(err)
	}

	got := 0
	err := db.Writer.Select(ctx, "SELECT * FROM rt ORDER BY id", func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			id := b.Columns[0].Row(i, false).(uint32)
			if int(id) != got {
				return fmt.Errorf("row %d has id %d", got, id)
			}
			for j, c := range roundTripColumns {
				nullable := strings.HasPrefix(string(c.typ), "Nullable")
				gotV := b.Columns[j+1].Row(i, nullable)
				if !equalValue(want[got][j+1], gotV) {
					return fmt.Errorf("row %d column %s: sent %#v, got %#v", got, c.name, want[got][j+1], gotV)
				}
			}
			got++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != rows {
		t.Fatalf("read %d rows, want %d", got, rows)
	}
}

func equalValue(want, got any) bool {
	if v := reflect.ValueOf(want); v.Kind() == reflect.Pointer && v.IsNil() {
		return got == nil // a NULL comes back as an untyped nil
	}
	switch w := want.(type) {
	case decimal.Decimal:
		g, ok := got.(decimal.Decimal)
		return ok && w.Equal(g)
	case time.Time:
		g, ok := got.(time.Time)
		return ok && w.Equal(g)
	case *time.Time:
		g, ok := got.(*time.Time)
		return ok && g != nil && w.Equal(*g)
	case float64:
		g, ok := got.(float64)
		return ok && (w == g || math.IsNaN(w) && math.IsNaN(g))
	}
	return reflect.DeepEqual(want, got)
}

func TestQuoteSurvivesTheServer(t *testing.T) {
	db := chtest.New(t)
	r := rand.New(rand.NewPCG(3, 4))
	cases := []string{
		"", "'", "''", `\`, `\'`, `'\`, "a\x00b", "\n\r\t", "\xff\xfe", "\xc3\x28", "😀",
		"'; DROP TABLE x; --", `\x41`, `\\\'`, strings.Repeat("é'\\", 30_000),
	}
	for range 200 {
		cases = append(cases, randomBytes(r, 1))
	}
	for i, s := range cases {
		var got string
		err := db.Writer.Select(context.Background(), "SELECT "+clickhouse.Quote(s), func(b *proto.Block) error {
			got = b.Columns[0].Row(0, false).(string)
			return nil
		})
		if err != nil {
			t.Fatalf("case %d %q: %v", i, s, err)
		}
		if got != s {
			t.Fatalf("case %d: sent %q, got %q", i, s, got)
		}
	}
}

func TestServerErrorsAreTyped(t *testing.T) {
	db := chtest.New(t)
	ctx := context.Background()
	cases := []struct {
		query  string
		code   int
		status int
	}{
		{"SELEC 1", clickhouse.CodeSyntaxError, 400},
		{"SELECT * FROM no_such_table", clickhouse.CodeUnknownTable, 404},
		{"SELECT * FROM no_such_db.t", clickhouse.CodeUnknownDatabase, 404},
	}
	for _, c := range cases {
		err := db.Writer.Exec(ctx, c.query)
		var ex *clickhouse.Exception
		if !errors.As(err, &ex) {
			t.Fatalf("%s: got %v, want *Exception", c.query, err)
		}
		if ex.Code != c.code || ex.Status != c.status || ex.Message == "" || strings.Contains(ex.Message, "e.what()") {
			t.Fatalf("%s: got code %d status %d message %q", c.query, ex.Code, ex.Status, ex.Message)
		}
		if !clickhouse.IsCode(fmt.Errorf("wrapped: %w", err), c.code) {
			t.Fatalf("%s: IsCode does not see through wrapping", c.query)
		}
	}
}

// An error after the server has started streaming arrives with status 200 in
// the middle of the body; it must still come back as a typed error.
func TestMidStreamErrorIsTyped(t *testing.T) {
	db := chtest.New(t)
	rows := 0
	err := db.Writer.Select(context.Background(),
		"SELECT number, throwIf(number = 3000000) FROM system.numbers LIMIT 5000000",
		func(b *proto.Block) error { rows += b.Rows(); return nil },
		clickhouse.WithSetting("max_block_size", "10000"))
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		t.Fatalf("got %v after %d rows, want *Exception", err, rows)
	}
	if ex.Status != 200 || ex.Code != 395 {
		t.Fatalf("got status %d code %d (%s), want a mid-stream 395", ex.Status, ex.Code, ex.Message)
	}
	if rows == 0 {
		t.Fatal("no block arrived before the error, so this did not test a mid-stream error")
	}
}

func TestCancelStopsServerQuery(t *testing.T) {
	db := chtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	const id = "herd-test-cancel"
	done := make(chan error, 1)
	go func() {
		// 20 blocks of one row, each sleeping 3 s: a minute of work.
		done <- db.Writer.Exec(ctx, "SELECT sleep(3) FROM system.numbers LIMIT 20 FORMAT Null",
			clickhouse.WithQueryID(id), clickhouse.WithSetting("max_block_size", "1"))
	}()
	chtest.WaitFor(t, 10*time.Second, func() bool { return processCount(t, db, id) == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Exec returned %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Exec did not return after cancel")
	}
	// The server notices a KILL between blocks, so within one 3 s sleep.
	chtest.WaitFor(t, 10*time.Second, func() bool { return processCount(t, db, id) == 0 })
}

func TestTimeoutStopsServerQuery(t *testing.T) {
	db := chtest.New(t)
	cfg := db.Writer.Config()
	cfg.Timeout = 500 * time.Millisecond
	c, err := clickhouse.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	const id = "herd-test-timeout"
	err = c.Exec(context.Background(), "SELECT sleep(3) FROM system.numbers LIMIT 20 FORMAT Null",
		clickhouse.WithQueryID(id), clickhouse.WithSetting("max_block_size", "1"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	chtest.WaitFor(t, 10*time.Second, func() bool { return processCount(t, db, id) == 0 })
}

func processCount(t *testing.T, db *chtest.DB, id string) uint64 {
	t.Helper()
	var n uint64
	err := db.Writer.Select(context.Background(), "SELECT count() FROM system.processes WHERE query_id = "+clickhouse.Quote(id),
		func(b *proto.Block) error { n = b.Columns[0].Row(0, false).(uint64); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestGzipBothWays(t *testing.T) {
	db := chtest.New(t)
	cfg := db.Writer.Config()
	cfg.Compress = true
	c, err := clickhouse.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Exec(ctx, "CREATE TABLE z (s String) ENGINE = MergeTree() ORDER BY s"); err != nil {
		t.Fatal(err)
	}
	b := proto.NewBlock()
	if err := b.AddColumn("s", "String"); err != nil {
		t.Fatal(err)
	}
	for i := range 50_000 {
		if err := b.Append(fmt.Sprintf("row-%06d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Insert(ctx, "z", b); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := c.Raw(ctx, "SELECT count(), min(s), max(s) FROM z", &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "50000\trow-000000\trow-049999\n" {
		t.Fatalf("got %q", got)
	}
}

func TestReaderIsRefusedRawDatabase(t *testing.T) {
	db := chtest.Migrated(t)
	ctx := context.Background()
	err := db.Reader.Exec(ctx, "SELECT count() FROM "+db.Names.Raw+".events")
	if !clickhouse.IsCode(err, clickhouse.CodeAccessDenied) {
		t.Fatalf("reader on raw database: got %v, want access denied (291)", err)
	}
	if err := db.Reader.Exec(ctx, "SELECT count() FROM "+db.Names.Pub+".schema_migrations"); err != nil {
		t.Fatalf("reader on published database: %v", err)
	}
	err = db.Reader.Exec(ctx, "INSERT INTO "+db.Names.Pub+".schema_migrations (version) VALUES (999)")
	if !clickhouse.IsCode(err, clickhouse.CodeReadonly) {
		t.Fatalf("reader insert: got %v, want readonly (164)", err)
	}
	err = db.Reader.Exec(ctx, "SELECT 1", clickhouse.WithSetting("readonly", "0"))
	if !clickhouse.IsCode(err, clickhouse.CodeReadonly) {
		t.Fatalf("reader lifting readonly: got %v, want refused (164)", err)
	}
}

// A result read with the wrong Go type (a schema that drifted from the code)
// comes back from Select as an error naming the column, not as a panic.
func TestGetOfTheWrongTypeIsAnError(t *testing.T) {
	db := chtest.New(t)
	var n uint64
	err := db.Writer.Select(context.Background(), "SELECT toUInt32(7) AS n", func(b *proto.Block) error {
		n = clickhouse.Get[uint64](b, 0, 0)
		return nil
	})
	var te *clickhouse.ResultTypeError
	if !errors.As(err, &te) || te.Column != "n" || te.Want != "uint64" || te.Got != "uint32" {
		t.Fatalf("got %v (n = %d), want a ResultTypeError for column n", err, n)
	}
	err = db.Writer.Select(context.Background(), "SELECT toUInt32(7) AS n", func(b *proto.Block) error {
		if got := clickhouse.Get[uint32](b, 0, 0); got != 7 {
			t.Errorf("Get = %d", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The dashboard's user reads and does nothing else: no writes, no table
// functions (url() would make the server open connections on its behalf),
// no lifting its own limits.
func TestReaderIsReadOnly(t *testing.T) {
	db := chtest.Migrated(t)
	ctx := context.Background()
	if err := db.Reader.Exec(ctx, "SELECT count() FROM "+db.Names.Pub+".kpis"); err != nil {
		t.Fatalf("the reader cannot read its database: %v", err)
	}
	for _, q := range []string{
		"SELECT * FROM url('http://127.0.0.1:1/', CSV, 'x String')",
		"SELECT * FROM numbers(3)",
		"INSERT INTO " + db.Names.Pub + ".kpis (site) VALUES ('x')",
		"CREATE TEMPORARY TABLE t (x UInt8)",
	} {
		if err := db.Reader.Exec(ctx, q); err == nil {
			t.Errorf("the reader may: %s", q)
		}
	}
	if err := db.Reader.Exec(ctx, "SELECT 1", clickhouse.WithSetting("max_memory_usage", "99999999999")); err == nil {
		t.Error("the reader lifted its memory limit")
	}
}
