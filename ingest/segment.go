package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
)

// Segment's HTTP tracking API (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/)
// and its e-commerce spec v2 event names, mapped onto herd's events. Segment
// messages carry many fields herd does not use (integrations, _metadata,
// traits...); those are ignored, never stored.

// segmentMessage is the part of a Segment message herd reads.
type segmentMessage struct {
	Type        string                     `json:"type"`
	MessageID   string                     `json:"messageId"`
	Event       string                     `json:"event"`
	Name        string                     `json:"name"`
	UserID      json.RawMessage            `json:"userId"`
	AnonymousID json.RawMessage            `json:"anonymousId"`
	Properties  map[string]json.RawMessage `json:"properties"`
	Context     segmentContext             `json:"context"`
	Timestamp   ClientTime                 `json:"timestamp"`
}

type segmentContext struct {
	IP        string `json:"ip"`
	UserAgent string `json:"userAgent"`
	Page      struct {
		URL      string `json:"url"`
		Referrer string `json:"referrer"`
	} `json:"page"`
	Consent *struct {
		CategoryPreferences map[string]bool `json:"categoryPreferences"`
	} `json:"consent"`
}

// segmentEvents maps Segment e-commerce v2 event names to herd's types.
var segmentEvents = map[string]EventType{
	"Product Viewed":        ProductView,
	"Product Clicked":       ProductClick,
	"Product Added":         AddToCart,
	"Product Removed":       RemoveFromCart,
	"Product List Viewed":   ProductListView,
	"Product List Filtered": ProductListView,
	"Checkout Step Viewed":  CheckoutStep,
	"Checkout Started":      CheckoutStep,
	"Order Completed":       Purchase,
	"Products Searched":     Search,
	"Promotion Viewed":      SlotImpression,
	"Promotion Clicked":     ProductClick,
}

// Drop reasons for Segment messages herd does not take.
const (
	DropUnsupportedType  = "unsupported_type"  // identify, group, alias, screen: they carry traits herd must not keep
	DropUnsupportedEvent = "unsupported_event" // a track event outside the e-commerce spec
)

// DecodeSegment reads a Segment request: a batch ({"batch": [...]}) or a
// single track or page message, as kind says ("batch", "track", "page").
// Messages herd does not take are counted in dropped by reason; malformed
// ones become problems; the rest become events for site.
func DecodeSegment(kind string, body []byte, site string) (events []Event, problems []Problem, dropped map[string]int, err error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return nil, nil, nil, Problem{Index: -1, Reason: "body must be a JSON object"}
	}
	var raws []json.RawMessage
	var shared segmentContext
	if kind == "batch" {
		var b struct {
			Batch   []json.RawMessage `json:"batch"`
			Context json.RawMessage   `json:"context"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			f, r := jsonProblem(err)
			return nil, nil, nil, Problem{Index: -1, Field: f, Reason: r}
		}
		if len(b.Context) > 0 {
			_ = json.Unmarshal(b.Context, &shared)
		}
		if len(b.Batch) == 0 {
			return nil, nil, nil, Problem{Index: -1, Field: "batch", Reason: "missing or empty: a batch request needs at least one message"}
		}
		raws = b.Batch
	} else {
		raws = []json.RawMessage{body}
	}
	if len(raws) > MaxEventsPerBatch {
		return nil, nil, nil, ErrTooManyEvents
	}
	dropped = map[string]int{}
	for i, raw := range raws {
		var m segmentMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			f, r := jsonProblem(err)
			problems = append(problems, Problem{Index: i, Field: f, Reason: r})
			continue
		}
		if m.Type == "" {
			m.Type = kind
		}
		ev, reason, p := segmentEvent(&m, &shared, i)
		switch {
		case p != nil:
			problems = append(problems, *p)
		case reason != "":
			dropped[reason]++
		default:
			ev.Site = site
			ev.Index = i
			events = append(events, ev)
		}
	}
	return events, problems, dropped, nil
}

func segmentEvent(m *segmentMessage, shared *segmentContext, i int) (Event, string, *Problem) {
	ctx := m.Context
	if ctx.IP == "" {
		ctx.IP = shared.IP
	}
	if ctx.UserAgent == "" {
		ctx.UserAgent = shared.UserAgent
	}
	props := &properties{m: m.Properties, path: "properties"}
	ev := Event{
		ID:        m.MessageID,
		TS:        m.Timestamp,
		URL:       ctx.Page.URL,
		Referrer:  ctx.Page.Referrer,
		IP:        ctx.IP,
		UserAgent: ctx.UserAgent,
		UserID:    jsonID(m.UserID),
		ClientID:  jsonID(m.AnonymousID),
	}
	if ctx.Consent != nil && ctx.Consent.CategoryPreferences != nil {
		ev.Consent = []string{}
		for purpose, ok := range ctx.Consent.CategoryPreferences {
			if ok {
				ev.Consent = append(ev.Consent, strings.ToLower(purpose))
			}
		}
	}
	switch m.Type {
	case "page":
		ev.Type = "pageview"
		if u := props.str("url"); u != "" {
			ev.URL = u
		}
		if r := props.str("referrer"); r != "" {
			ev.Referrer = r
		}
		return ev, "", props.problem(i)
	case "track":
	default:
		return ev, DropUnsupportedType, nil
	}
	t, ok := segmentEvents[m.Event]
	if !ok {
		return ev, DropUnsupportedEvent, nil
	}
	ev.Type = t.String()
	if u := props.str("url"); u != "" {
		ev.URL = u
	}
	product := func(p *properties) Product {
		return Product{
			ID:       firstNonEmpty(p.str("product_id"), p.str("sku"), p.str("id")),
			Category: p.str("category"),
			Price:    p.num("price"),
			Position: int(p.num("position")),
			List:     firstNonEmpty(p.str("list_id"), p.str("list_name")),
			Quantity: int(p.num("quantity")),
		}
	}
	switch t {
	case ProductView, AddToCart, RemoveFromCart:
		p := product(props)
		ev.Product = &p
	case ProductClick:
		if m.Event == "Promotion Clicked" {
			ev.Slot = firstNonEmpty(props.str("creative"), props.str("promotion_id"), props.str("name"))
			ev.Product = &Product{ID: props.str("promotion_id"), Position: int(props.num("position"))}
			break
		}
		p := product(props)
		ev.Product = &p
	case SlotImpression:
		ev.Slot = firstNonEmpty(props.str("creative"), props.str("promotion_id"), props.str("name"))
	case ProductListView:
		ev.Product = &Product{Category: props.str("category"), List: firstNonEmpty(props.str("list_id"), props.str("list_name"))}
		ev.Products = segmentProducts(props, product)
	case CheckoutStep:
		ev.Step = int(props.num("step"))
		if ev.Step == 0 {
			ev.Step = 1
		}
	case Purchase:
		value := props.num("revenue")
		if value == 0 {
			value = props.num("total")
		}
		ev.Products = segmentProducts(props, product)
		ev.Order = &Order{Value: value, Currency: props.str("currency"), Items: len(ev.Products)}
	case Search:
		ev.Search = &SearchAct{Term: props.str("query")}
		if props.has("results") {
			n := int(props.num("results"))
			ev.Search.Results = &n
		}
	}
	ev.Variant = props.str("variant")
	return ev, "", props.problem(i)
}

func segmentProducts(props *properties, product func(*properties) Product) []Product {
	items := props.list("products")
	out := make([]Product, 0, min(len(items), 200))
	for _, item := range items {
		out = append(out, product(item))
		if len(out) == 200 {
			break
		}
	}
	return out
}

// properties reads a Segment message's properties (or one product's),
// keeping the first value of the wrong type as a problem that names it by
// its path (properties.price, properties.products[2].price). Absent and
// null values read as empty.
type properties struct {
	m      map[string]json.RawMessage
	path   string
	field  *string // shared by a message's nested readers: the first bad value's path
	reason *string
}

func (p *properties) bad(key, reason string) {
	if p.field == nil {
		p.field, p.reason = new(string), new(string)
	}
	if *p.field == "" {
		*p.field, *p.reason = p.path+"."+key, reason
	}
}

func (p *properties) problem(i int) *Problem {
	if p.field == nil || *p.field == "" {
		return nil
	}
	return &Problem{Index: i, Field: *p.field, Reason: *p.reason}
}

func (p *properties) has(key string) bool {
	v, ok := p.m[key]
	return ok && string(v) != "null"
}

// str reads a string property; numbers are accepted as their decimal text
// (Segment senders are loose about ids).
func (p *properties) str(key string) string {
	v, ok := p.m[key]
	if !ok || len(v) == 0 {
		return ""
	}
	switch v[0] {
	case 'n':
		return ""
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			p.bad(key, "invalid string")
		}
		return s
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			p.bad(key, "number out of range")
			return ""
		}
		if f == math.Trunc(f) && math.Abs(f) < 1e15 {
			return strconv.FormatInt(int64(f), 10)
		}
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	p.bad(key, "wrong type: got JSON "+rawKind(v)+", want string")
	return ""
}

// num reads a numeric property; numeric strings are accepted.
func (p *properties) num(key string) float64 {
	v, ok := p.m[key]
	if !ok || len(v) == 0 {
		return 0
	}
	text := string(v)
	switch v[0] {
	case 'n':
		return 0
	case '"':
		if err := json.Unmarshal(v, &text); err != nil {
			p.bad(key, "invalid string")
			return 0
		}
		text = strings.TrimSpace(text)
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
	default:
		p.bad(key, "wrong type: got JSON "+rawKind(v)+", want number")
		return 0
	}
	f, err := strconv.ParseFloat(text, 64)
	switch {
	case err != nil && errors.Is(err, strconv.ErrRange):
		p.bad(key, "number out of range")
		return 0
	case err != nil || math.IsNaN(f) || math.IsInf(f, 0):
		p.bad(key, "wrong type: got a string that is not a number, want number")
		return 0
	}
	return f
}

// list reads an array of objects (products); anything else in it is a
// problem.
func (p *properties) list(key string) []*properties {
	v, ok := p.m[key]
	if !ok || string(v) == "null" {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		p.bad(key, "wrong type: got JSON "+rawKind(v)+", want array")
		return nil
	}
	if p.field == nil {
		p.field, p.reason = new(string), new(string)
	}
	out := make([]*properties, 0, len(items))
	for j, item := range items {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(item, &m); err != nil {
			p.bad(key+"["+strconv.Itoa(j)+"]", "wrong type: got JSON "+rawKind(item)+", want object")
			continue
		}
		out = append(out, &properties{m: m, path: p.path + "." + key + "[" + strconv.Itoa(j) + "]", field: p.field, reason: p.reason})
	}
	return out
}

// rawKind names a JSON value's kind by its first byte.
func rawKind(v json.RawMessage) string {
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case '"':
		return "string"
	case 'n':
		return "null"
	}
	return "number"
}

func jsonID(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw) // a number
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
