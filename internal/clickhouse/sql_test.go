package clickhouse

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// unquote is a reference reader for the literals Quote writes, following
// ClickHouse's escape rules.
func unquote(t testing.TB, lit string) string {
	t.Helper()
	if len(lit) < 2 || lit[0] != '\'' || lit[len(lit)-1] != '\'' {
		t.Fatalf("not a quoted literal: %q", lit)
	}
	body := lit[1 : len(lit)-1]
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '\'' {
			t.Fatalf("unescaped quote at %d in %q", i, lit)
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(body) {
			t.Fatalf("dangling backslash in %q", lit)
		}
		switch body[i] {
		case '\\', '\'':
			b.WriteByte(body[i])
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'x':
			if i+2 >= len(body) {
				t.Fatalf("short \\x in %q", lit)
			}
			var v byte
			for _, h := range body[i+1 : i+3] {
				v <<= 4
				switch {
				case '0' <= h && h <= '9':
					v |= byte(h - '0')
				case 'A' <= h && h <= 'F':
					v |= byte(h - 'A' + 10)
				default:
					t.Fatalf("bad hex %q in %q", h, lit)
				}
			}
			b.WriteByte(v)
			i += 2
		default:
			t.Fatalf("unknown escape \\%c in %q", body[i], lit)
		}
	}
	return b.String()
}

func TestQuote(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := Quote(in); got != want {
			t.Fatalf("Quote(%q) = %s, want %s", in, got, want)
		}
		if back := unquote(t, Quote(in)); back != in {
			t.Fatalf("round trip of %q gave %q", in, back)
		}
	}
	f("", `''`)
	f("plain", `'plain'`)
	f("it's", `'it\'s'`)
	f(`back\slash`, `'back\\slash'`)
	f(`\'`, `'\\\''`)
	f("nul\x00byte", `'nul\x00byte'`)
	f("new\nline\ttab\rcr", `'new\nline\ttab\rcr'`)
	f("\x7f\x01", `'\x7F\x01'`)
	f("bad \xff\xfe utf8", `'bad \xFF\xFE utf8'`)
	f("truncated \xc3", `'truncated \xC3'`)
	f("héllo 😀", `'héllo 😀'`)
	f("'; DROP TABLE x; --", `'\'; DROP TABLE x; --'`)
	long := strings.Repeat("a'\\", 100_000)
	if back := unquote(t, Quote(long)); back != long {
		t.Fatal("long string does not round trip")
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "'", `\`, "\x00", "\xff", "é", "a\nb", `\x41`, "''\\''"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := Quote(s)
		if !utf8.ValidString(q) {
			t.Fatalf("Quote(%q) is not valid UTF-8", s)
		}
		if strings.ContainsAny(q, "\x00\n\r") {
			t.Fatalf("Quote(%q) has a raw control byte", s)
		}
		if back := unquote(t, q); back != s {
			t.Fatalf("Quote(%q) reads back as %q", s, back)
		}
	})
}

func TestIdent(t *testing.T) {
	for _, ok := range []string{"a", "herd_raw", "_x1", "T9", strings.Repeat("a", 128)} {
		if _, err := Ident(ok); err != nil {
			t.Errorf("Ident(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1a", "a-b", "a.b", "a b", "a`b", "a'b", "ä", "a\x00", "a;DROP", strings.Repeat("a", 129)} {
		if _, err := Ident(bad); !errors.Is(err, ErrIdent) {
			t.Errorf("Ident(%q) = %v, want ErrIdent", bad, err)
		}
	}
	if _, err := Allow("views", "views", "adds"); err != nil {
		t.Error(err)
	}
	if _, err := Allow("revenue", "views", "adds"); !errors.Is(err, ErrIdent) {
		t.Errorf("Allow outside the list: %v", err)
	}
}

func TestValidTableName(t *testing.T) {
	for _, ok := range []string{"t", "db.t"} {
		if err := validTableName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "db.", ".t", "a.b.c", "t; DROP", "db.t x"} {
		if err := validTableName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
