package clickhouse

import (
	"errors"
	"fmt"
	"testing"
)

func TestParseException(t *testing.T) {
	f := func(status int, header, body string, code int, name, msg string) {
		t.Helper()
		ex := parseException(status, header, []byte(body))
		if ex.Code != code || ex.Name != name || ex.Message != msg || ex.Status != status {
			t.Fatalf("parseException(%q) = %+v, want code %d name %q message %q", body, ex, code, name, msg)
		}
	}
	// 18.16
	f(400, "", "Code: 62, e.displayText() = DB::Exception: Syntax error: failed at position 1: SELEC 1, e.what() = DB::Exception\n",
		62, "", "Syntax error: failed at position 1: SELEC 1")
	f(404, "", "Code: 60, e.displayText() = DB::Exception: Table default.x doesn't exist., e.what() = DB::Exception",
		60, "", "Table default.x doesn't exist.")
	// current releases
	f(404, "60", "Code: 60. DB::Exception: Unknown table expression identifier 'x' in scope SELECT * FROM x. (UNKNOWN_TABLE) (version 24.8.4.13 (official build))\n",
		60, "UNKNOWN_TABLE", "Unknown table expression identifier 'x' in scope SELECT * FROM x.")
	f(500, "241", "Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)",
		241, "MEMORY_LIMIT_EXCEEDED", "Memory limit (total) exceeded.")
	// mid-stream: the text follows partial data
	f(200, "", "\x01\x02garbageCode: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non zero, e.what() = DB::Exception\n",
		395, "", "Value passed to 'throwIf' function is non zero")
	// not ClickHouse at all: a proxy's page
	f(502, "", "<html>Bad Gateway</html>", 0, "", "<html>Bad Gateway</html>")
	f(503, "", "", 0, "", "empty answer with HTTP status 503")
}

func TestIsCodeThroughWrapping(t *testing.T) {
	err := fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", &Exception{Code: 60}))
	if !IsCode(err, 81, 60) || IsCode(err, 81) || IsCode(errors.New("x"), 60) {
		t.Fatal("IsCode")
	}
}

func FuzzParseException(f *testing.F) {
	f.Add(400, "", "Code: 62, e.displayText() = DB::Exception: x, e.what() = DB::Exception")
	f.Add(404, "60", "Code: 60. DB::Exception: y. (UNKNOWN_TABLE) (version 24.1)")
	f.Add(200, "", "Code: ")
	f.Fuzz(func(t *testing.T, status int, header, body string) {
		ex := parseException(status, header, []byte(body))
		if ex == nil || ex.Message == "" || ex.Error() == "" {
			t.Fatalf("parseException(%d, %q, %q) = %+v", status, header, body, ex)
		}
	})
}

// Cause names the part to look at, and says nothing it cannot tell.
func TestCauseNamesThePart(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&Exception{Code: CodeKeeper, Message: "Cannot allocate block number in ZooKeeper: Coordination::Exception: Connection loss"}, "ZooKeeper unavailable"},
		{fmt.Errorf("insert: %w", &Exception{Code: CodeTableReadOnly, Message: "Table is in readonly mode"}), "replicated tables read-only: their ZooKeeper session is lost"},
		{&Exception{Code: CodeUnknownTable, Message: "Table herd.schema_migrations doesn't exist."}, "herd's tables are missing: run herd migrate"},
		{&transportError{err: errors.New("dial tcp 127.0.0.1:8123: connect: connection refused")}, "ClickHouse unreachable"},
		{&Exception{Code: CodeSyntaxError}, ""},
		{nil, ""},
	} {
		if got := Cause(c.err); got != c.want {
			t.Errorf("Cause(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
