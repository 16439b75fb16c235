package clickhouse

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Quote renders s as a ClickHouse string literal. It is the only way a value
// that came from outside the program may enter SQL text: every byte of s comes
// back unchanged when ClickHouse parses the literal, on 18.16 and current
// releases alike.
//
// Backslash and quote are escaped, control bytes and bytes that are not part of
// valid UTF-8 become \xHH, so the SQL text itself is always valid UTF-8.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\'':
			b.WriteString(`\'`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20 || c == 0x7f:
			writeHexByte(&b, c)
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size <= 1 {
				writeHexByte(&b, c)
				i++
				continue
			}
			b.WriteString(s[i : i+size])
			i += size
			continue
		default:
			b.WriteByte(c)
		}
		i++
	}
	b.WriteByte('\'')
	return b.String()
}

func writeHexByte(b *strings.Builder, c byte) {
	const hex = "0123456789ABCDEF"
	b.WriteString(`\x`)
	b.WriteByte(hex[c>>4])
	b.WriteByte(hex[c&0x0f])
}

// QuoteInt renders an integer literal.
func QuoteInt[T ~int | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64](v T) string {
	if v < 0 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatUint(uint64(v), 10)
}

// ErrIdent is returned for a name that may not be used as an identifier.
var ErrIdent = errors.New("not an allowed identifier")

// Ident checks that name is a plain identifier (letters, digits and
// underscores, not starting with a digit, at most 128 bytes) and returns it.
// Identifiers never come from users; this catches programming and
// configuration mistakes (a database name from a flag, say).
func Ident(name string) (string, error) {
	if !validIdent(name) {
		return "", fmt.Errorf("%q: %w", name, ErrIdent)
	}
	return name, nil
}

// Allow returns name if it is one of allowed, for identifiers picked at run
// time (a dimension, a sort column) from a fixed list.
func Allow(name string, allowed ...string) (string, error) {
	if !slices.Contains(allowed, name) || !validIdent(name) {
		return "", fmt.Errorf("%q: %w", name, ErrIdent)
	}
	return name, nil
}

func validIdent(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
