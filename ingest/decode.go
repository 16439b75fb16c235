package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fastjson"
)

// Limits on what one request may carry (docs/api.md).
const (
	MaxBodyBytes      = 1 << 20
	MaxEventsPerBatch = 500
)

// Problem says what is wrong with one event, or with the whole body when
// Index is -1. It is what a 400 answer lists.
type Problem struct {
	Index  int    `json:"index"`
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

func (p Problem) Error() string {
	if p.Index < 0 {
		return p.Reason
	}
	if p.Field == "" {
		return fmt.Sprintf("event %d: %s", p.Index, p.Reason)
	}
	return fmt.Sprintf("event %d: %s: %s", p.Index, p.Field, p.Reason)
}

// ErrTooManyEvents is returned for a batch over MaxEventsPerBatch.
var ErrTooManyEvents = errors.New("too many events in one request")

// The own-format decoder is hand-written over fastjson's parser: one pass
// builds a tree of the body in a pooled parser, a second walks it into
// Events without reflection. Field names are matched exactly; a wrong type,
// a bad number or an unknown field spoils only its own event, and the
// problem names the field by its path (product.price, products[2].id).
var parsers fastjson.ParserPool

// decoder holds the strings of one request's events: their bytes are
// copied into one slab instead of a string each. The slab is the
// request's; a handler may reuse it for a later request only once nothing
// of this one is referenced (see server.ownJSON).
//
// Measured against a string per value (2026-12-02, the real herd ingest
// process, two interleaved rounds each): herd CPU 11.7–12.7 vs 13.2–13.6 µs
// per event at 20-event requests, 88–93 vs 95–96 µs at 1-event requests;
// BenchmarkPipeline alone shows no difference (5.3 vs 5.25 µs), the gain is
// the collector's (6.5 fewer allocations per event). See
// docs/benchmarks.md, "Memory tricks".
type decoder struct {
	slab []byte
}

// keep copies b into the slab and returns it as a string. Strings handed
// out are never written again: when the slab must grow, a new one is
// started and the old stays where its strings point.
func (d *decoder) keep(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(d.slab)-len(d.slab) < len(b) {
		d.slab = make([]byte, 0, max(len(b), 2*cap(d.slab), 4096))
	}
	start := len(d.slab)
	d.slab = append(d.slab, b...)
	return unsafe.String(&d.slab[start], len(b))
}

// DecodeOne reads a single own-format JSON event (POST /api/event).
func DecodeOne(body []byte) ([]Event, []Problem, error) {
	return new(decoder).decodeOne(nil, body)
}

// decodeOne is DecodeOne appending to events (a recycled slice).
func (d *decoder) decodeOne(events []Event, body []byte) ([]Event, []Problem, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, nil, Problem{Index: -1, Reason: "body must be one JSON object"}
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil {
		return nil, []Problem{{Index: 0, Reason: syntaxReason(body)}}, nil
	}
	ev, prob := d.decodeEvent(v, 0)
	if prob != nil {
		return nil, []Problem{*prob}, nil
	}
	return append(events[:0], ev), nil, nil
}

// DecodeMany reads own-format events as a JSON array or as NDJSON, one
// object per line (POST /api/events). A malformed event is reported and
// skipped; the others are kept. A body that is not an array or NDJSON at all
// is an error, and so is broken JSON in an array (its events cannot be told
// apart).
func DecodeMany(body []byte) ([]Event, []Problem, error) {
	return new(decoder).decodeMany(nil, body)
}

// decodeMany is DecodeMany appending to events (a recycled slice).
func (d *decoder) decodeMany(events []Event, body []byte) ([]Event, []Problem, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil, Problem{Index: -1, Reason: "empty body"}
	}
	p := parsers.Get()
	defer parsers.Put(p)
	switch body[0] {
	case '[':
		v, err := p.ParseBytes(body)
		if err != nil {
			return nil, nil, Problem{Index: -1, Reason: "body is not a JSON array of events: " + syntaxReason(body)}
		}
		items, _ := v.Array()
		if len(items) > MaxEventsPerBatch {
			return nil, nil, ErrTooManyEvents
		}
		events = slices.Grow(events[:0], len(items))
		var problems []Problem
		for i, item := range items {
			ev, prob := d.decodeEvent(item, i)
			if prob != nil {
				problems = append(problems, *prob)
				continue
			}
			events = append(events, ev)
		}
		return events, problems, nil
	case '{':
		events = events[:0]
		var problems []Problem
		i := 0
		for rest := body; len(rest) > 0; {
			line := rest
			if n := bytes.IndexByte(rest, '\n'); n >= 0 {
				line, rest = rest[:n], rest[n+1:]
			} else {
				rest = nil
			}
			if line = bytes.TrimSpace(line); len(line) == 0 {
				continue
			}
			if i == MaxEventsPerBatch {
				return nil, nil, ErrTooManyEvents
			}
			v, err := p.ParseBytes(line)
			if err != nil {
				problems = append(problems, Problem{Index: i, Reason: syntaxReason(line)})
			} else if ev, prob := d.decodeEvent(v, i); prob != nil {
				problems = append(problems, *prob)
			} else {
				events = append(events, ev)
			}
			i++
		}
		return events, problems, nil
	}
	return nil, nil, Problem{Index: -1, Reason: "body must be a JSON array or NDJSON events"}
}

// syntaxReason says where JSON that failed to parse is broken, without
// quoting it. Only the error path pays for the second, standard parse that
// finds the offset.
func syntaxReason(b []byte) string {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return jsonReason(err)
	}
	return "JSON nested too deeply or not strict"
}

// decodeEvent reads one event object.
func (d *decoder) decodeEvent(v *fastjson.Value, index int) (Event, *Problem) {
	ev := Event{Index: index}
	field, reason := visitFields(v, "", func(k []byte, v *fastjson.Value) (string, string) {
		switch string(k) {
		case "id":
			return "", d.getString(v, &ev.ID)
		case "site":
			return "", d.getString(v, &ev.Site)
		case "type":
			return "", d.getString(v, &ev.Type)
		case "url":
			return "", d.getString(v, &ev.URL)
		case "referrer":
			return "", d.getString(v, &ev.Referrer)
		case "slot":
			return "", d.getString(v, &ev.Slot)
		case "variant":
			return "", d.getString(v, &ev.Variant)
		case "user_id":
			return "", d.getString(v, &ev.UserID)
		case "step":
			return "", getInt(v, &ev.Step)
		case "ts":
			return "", getTime(v, &ev.TS)
		case "product":
			ev.Product = nil
			if v.Type() == fastjson.TypeNull {
				return "", ""
			}
			ev.Product = new(Product)
			return d.decodeProduct(v, ev.Product, "product")
		case "products":
			return d.decodeProducts(v, &ev.Products)
		case "order":
			ev.Order = nil
			if v.Type() == fastjson.TypeNull {
				return "", ""
			}
			ev.Order = new(Order)
			return d.decodeOrder(v, ev.Order)
		case "search":
			ev.Search = nil
			if v.Type() == fastjson.TypeNull {
				return "", ""
			}
			ev.Search = new(SearchAct)
			return d.decodeSearch(v, ev.Search)
		case "consent":
			return d.decodeConsent(v, &ev.Consent)
		}
		return "", "unknown field"
	})
	if reason != "" {
		return ev, &Problem{Index: index, Field: field, Reason: reason}
	}
	return ev, nil
}

// visitFields walks an object's fields with set until one has a problem.
// set returns the problem's reason, and its field path when the problem is
// deeper than the key itself; the key's own path is built only then.
func visitFields(v *fastjson.Value, path string, set func(key []byte, v *fastjson.Value) (field, reason string)) (field, reason string) {
	obj, err := v.Object()
	if err != nil {
		return path, "wrong type: got JSON " + jsonType(v) + ", want object"
	}
	obj.Visit(func(k []byte, v *fastjson.Value) {
		if reason != "" {
			return
		}
		if field, reason = set(k, v); reason != "" && field == "" {
			field = truncate(string(k), 64)
			if path != "" {
				field = path + "." + field
			}
		}
	})
	return field, reason
}

func (d *decoder) decodeProduct(v *fastjson.Value, p *Product, path string) (field, reason string) {
	return visitFields(v, path, func(k []byte, v *fastjson.Value) (string, string) {
		switch string(k) {
		case "id":
			return "", d.getString(v, &p.ID)
		case "category":
			return "", d.getString(v, &p.Category)
		case "price":
			return "", getFloat(v, &p.Price)
		case "position":
			return "", getInt(v, &p.Position)
		case "list":
			return "", d.getString(v, &p.List)
		case "quantity":
			return "", getInt(v, &p.Quantity)
		}
		return "", "unknown field"
	})
}

func (d *decoder) decodeProducts(v *fastjson.Value, dst *[]Product) (field, reason string) {
	return decodeList(v, "products", dst, func(item *fastjson.Value, p *Product) (string, string) {
		if item.Type() == fastjson.TypeNull {
			return "", ""
		}
		return d.decodeProduct(item, p, "")
	})
}

// decodeList reads a JSON array (null leaves dst nil) with each; a
// problem's field is named below name[i], built only then.
func decodeList[T any](v *fastjson.Value, name string, dst *[]T, each func(*fastjson.Value, *T) (field, reason string)) (field, reason string) {
	*dst = nil
	if v.Type() == fastjson.TypeNull {
		return "", ""
	}
	items, err := v.Array()
	if err != nil {
		return name, "wrong type: got JSON " + jsonType(v) + ", want array"
	}
	*dst = make([]T, len(items))
	for i, item := range items {
		if field, reason = each(item, &(*dst)[i]); reason != "" {
			path := name + "[" + strconv.Itoa(i) + "]"
			if field != "" {
				path += "." + field
			}
			return path, reason
		}
	}
	return "", ""
}

func (d *decoder) decodeOrder(v *fastjson.Value, o *Order) (field, reason string) {
	return visitFields(v, "order", func(k []byte, v *fastjson.Value) (string, string) {
		switch string(k) {
		case "value":
			return "", getFloat(v, &o.Value)
		case "currency":
			return "", d.getString(v, &o.Currency)
		case "items":
			return "", getInt(v, &o.Items)
		}
		return "", "unknown field"
	})
}

func (d *decoder) decodeSearch(v *fastjson.Value, s *SearchAct) (field, reason string) {
	return visitFields(v, "search", func(k []byte, v *fastjson.Value) (string, string) {
		switch string(k) {
		case "term":
			return "", d.getString(v, &s.Term)
		case "results":
			s.Results = nil
			if v.Type() == fastjson.TypeNull {
				return "", ""
			}
			var n int
			reason := getInt(v, &n)
			if reason == "" {
				s.Results = &n
			}
			return "", reason
		}
		return "", "unknown field"
	})
}

func (d *decoder) decodeConsent(v *fastjson.Value, dst *[]string) (field, reason string) {
	return decodeList(v, "consent", dst, func(item *fastjson.Value, c *string) (string, string) {
		return "", d.getString(item, c)
	})
}

// getString sets dst from a JSON string; null leaves it empty. Invalid
// UTF-8 becomes U+FFFD, as encoding/json does.
func (d *decoder) getString(v *fastjson.Value, dst *string) string {
	switch v.Type() {
	case fastjson.TypeNull:
		*dst = ""
		return ""
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		if utf8.Valid(b) {
			*dst = d.keep(b)
		} else {
			*dst = strings.ToValidUTF8(string(b), "\uFFFD")
		}
		return ""
	}
	return "wrong type: got JSON " + jsonType(v) + ", want string"
}

func getFloat(v *fastjson.Value, dst *float64) string {
	return getNumber(v, dst, func(v *fastjson.Value) (float64, bool) {
		f, err := v.Float64()
		return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
	}, "not a finite JSON number")
}

func getInt(v *fastjson.Value, dst *int) string {
	return getNumber(v, dst, func(v *fastjson.Value) (int, bool) {
		n, err := v.Int()
		return n, err == nil
	}, "want a whole number in range")
}

// getNumber reads a JSON number (null is zero) through read, which says
// whether the number fits; bad is the reason when it does not.
func getNumber[T float64 | int](v *fastjson.Value, dst *T, read func(*fastjson.Value) (T, bool), bad string) string {
	switch v.Type() {
	case fastjson.TypeNull:
		*dst = 0
		return ""
	case fastjson.TypeNumber:
		n, ok := read(v)
		if !ok {
			return bad
		}
		*dst = n
		return ""
	}
	return "wrong type: got JSON " + jsonType(v) + ", want number"
}

func getTime(v *fastjson.Value, dst *ClientTime) string {
	var err error
	switch v.Type() {
	case fastjson.TypeNull:
		*dst = ClientTime{}
		return ""
	case fastjson.TypeNumber:
		var ms float64
		if ms, err = v.Float64(); err == nil {
			err = dst.setMillis(ms)
		}
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		err = dst.setString(string(b))
	default:
		err = errors.New("wrong type")
	}
	if err != nil {
		return "want milliseconds since the epoch or an RFC 3339 string"
	}
	return ""
}

func jsonType(v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeString:
		return "string"
	case fastjson.TypeNumber:
		return "number"
	case fastjson.TypeObject:
		return "object"
	case fastjson.TypeArray:
		return "array"
	case fastjson.TypeTrue, fastjson.TypeFalse:
		return "bool"
	}
	return "null"
}

// jsonProblem turns a decoding error into a field name and a reason that
// quotes no client data beyond the field's name.
func jsonProblem(err error) (field, reason string) {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		return typeErr.Field, "wrong type: got JSON " + typeErr.Value + ", want " + jsonKind(typeErr.Type.Kind().String())
	case errors.As(err, &syntaxErr):
		return "", "malformed JSON at byte " + strconv.FormatInt(syntaxErr.Offset, 10)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return truncate(name, 64), "unknown field"
	case strings.Contains(err.Error(), "ClientTime"), strings.Contains(err.Error(), "time in milliseconds"), strings.Contains(err.Error(), "RFC 3339"):
		return "ts", "want milliseconds since the epoch or an RFC 3339 string"
	}
	return "", jsonReason(err)
}

func jsonKind(k string) string {
	switch k {
	case "float64", "int", "int64", "uint8", "uint16":
		return "number"
	case "ptr":
		return "object"
	case "slice":
		return "array"
	}
	return k
}

func jsonReason(err error) string {
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		if strings.Contains(err.Error(), "unexpected end") {
			return "truncated JSON"
		}
		return "malformed JSON at byte " + strconv.FormatInt(syntaxErr.Offset, 10)
	}
	return "invalid JSON"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
