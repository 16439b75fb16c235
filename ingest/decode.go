package ingest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits on what one request may carry (DESIGN §8).
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

// DecodeOne reads a single own-format JSON event (POST /api/event).
func DecodeOne(body []byte) ([]Event, []Problem, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, nil, Problem{Index: -1, Reason: "body must be one JSON object"}
	}
	var ev Event
	if p := decodeStrict(body, &ev, 0); p != nil {
		return nil, []Problem{*p}, nil
	}
	return []Event{ev}, nil, nil
}

// DecodeMany reads own-format events as a JSON array or as NDJSON, one
// object per line (POST /api/events). A malformed event is reported and
// skipped; the others are kept. A body that is not an array or NDJSON at all
// is an error.
func DecodeMany(body []byte) ([]Event, []Problem, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil, Problem{Index: -1, Reason: "empty body"}
	}
	var raws []json.RawMessage
	switch body[0] {
	case '[':
		return decodeArray(body)
	case '{':
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 0, 64<<10), MaxBodyBytes)
		for sc.Scan() {
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 {
				continue
			}
			raws = append(raws, json.RawMessage(bytes.Clone(line)))
			if len(raws) > MaxEventsPerBatch {
				return nil, nil, ErrTooManyEvents
			}
		}
		if err := sc.Err(); err != nil {
			return nil, nil, Problem{Index: -1, Reason: "NDJSON: " + err.Error()}
		}
	default:
		return nil, nil, Problem{Index: -1, Reason: "body must be a JSON array or NDJSON events"}
	}
	if len(raws) > MaxEventsPerBatch {
		return nil, nil, ErrTooManyEvents
	}
	events := make([]Event, 0, len(raws))
	var problems []Problem
	for i, raw := range raws {
		var ev Event
		if p := decodeStrict(raw, &ev, i); p != nil {
			problems = append(problems, *p)
			continue
		}
		ev.Index = i
		events = append(events, ev)
	}
	return events, problems, nil
}

// decodeArray reads a JSON array of events in one pass. A wrong type or an
// unknown field spoils only its own event (the decoder still consumes the
// whole element); broken JSON spoils the body.
func decodeArray(body []byte) ([]Event, []Problem, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	bad := func(err error) error {
		return Problem{Index: -1, Reason: "body is not a JSON array of events: " + jsonReason(err)}
	}
	if _, err := dec.Token(); err != nil { // '['
		return nil, nil, bad(err)
	}
	var events []Event
	var problems []Problem
	for i := 0; dec.More(); i++ {
		if i == MaxEventsPerBatch {
			return nil, nil, ErrTooManyEvents
		}
		var ev Event
		err := dec.Decode(&ev)
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			return nil, nil, bad(err)
		case err != nil:
			field, reason := jsonProblem(err)
			problems = append(problems, Problem{Index: i, Field: field, Reason: reason})
		default:
			ev.Index = i
			events = append(events, ev)
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		return nil, nil, Problem{Index: -1, Reason: "body is not a JSON array of events: unterminated array"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, Problem{Index: -1, Reason: "trailing data after the array"}
	}
	return events, problems, nil
}

// decodeStrict decodes one object, refusing unknown fields and wrong types,
// and says which field was wrong.
func decodeStrict(raw []byte, v any, index int) *Problem {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		field, reason := jsonProblem(err)
		return &Problem{Index: index, Field: field, Reason: reason}
	}
	if dec.More() {
		return &Problem{Index: index, Reason: "trailing data after the event object"}
	}
	return nil
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
