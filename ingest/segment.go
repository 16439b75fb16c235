package ingest

import (
	"bytes"
	"encoding/json"
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
	Type        string          `json:"type"`
	MessageID   string          `json:"messageId"`
	Event       string          `json:"event"`
	Name        string          `json:"name"`
	UserID      json.RawMessage `json:"userId"`
	AnonymousID json.RawMessage `json:"anonymousId"`
	Properties  map[string]any  `json:"properties"`
	Context     segmentContext  `json:"context"`
	Timestamp   ClientTime      `json:"timestamp"`
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
	props := m.Properties
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
		if u := str(props, "url"); u != "" {
			ev.URL = u
		}
		if r := str(props, "referrer"); r != "" {
			ev.Referrer = r
		}
		return ev, "", nil
	case "track":
	default:
		return ev, DropUnsupportedType, nil
	}
	t, ok := segmentEvents[m.Event]
	if !ok {
		return ev, DropUnsupportedEvent, nil
	}
	ev.Type = t.String()
	if u := str(props, "url"); u != "" {
		ev.URL = u
	}
	product := func(p map[string]any) Product {
		id := str(p, "product_id")
		if id == "" {
			id = str(p, "sku")
		}
		if id == "" {
			id = str(p, "id")
		}
		return Product{
			ID:       id,
			Category: str(p, "category"),
			Price:    num(p, "price"),
			Position: int(num(p, "position")),
			List:     firstNonEmpty(str(p, "list_id"), str(p, "list_name")),
			Quantity: int(num(p, "quantity")),
		}
	}
	switch t {
	case ProductView, AddToCart, RemoveFromCart:
		p := product(props)
		ev.Product = &p
	case ProductClick:
		if m.Event == "Promotion Clicked" {
			ev.Slot = firstNonEmpty(str(props, "creative"), str(props, "promotion_id"), str(props, "name"))
			ev.Product = &Product{ID: str(props, "promotion_id"), Position: int(num(props, "position"))}
			break
		}
		p := product(props)
		ev.Product = &p
	case SlotImpression:
		ev.Slot = firstNonEmpty(str(props, "creative"), str(props, "promotion_id"), str(props, "name"))
	case ProductListView:
		ev.Product = &Product{Category: str(props, "category"), List: firstNonEmpty(str(props, "list_id"), str(props, "list_name"))}
		ev.Products = segmentProducts(props, product)
	case CheckoutStep:
		ev.Step = int(num(props, "step"))
		if ev.Step == 0 {
			ev.Step = 1
		}
	case Purchase:
		value := num(props, "revenue")
		if value == 0 {
			value = num(props, "total")
		}
		ev.Products = segmentProducts(props, product)
		ev.Order = &Order{Value: value, Currency: str(props, "currency"), Items: len(ev.Products)}
	case Search:
		ev.Search = &SearchAct{Term: str(props, "query")}
		if _, ok := props["results"]; ok {
			n := int(num(props, "results"))
			ev.Search.Results = &n
		}
	}
	ev.Variant = str(props, "variant")
	return ev, "", nil
}

func segmentProducts(props map[string]any, product func(map[string]any) Product) []Product {
	list, _ := props["products"].([]any)
	var out []Product
	for _, item := range list {
		if m, ok := item.(map[string]any); ok {
			out = append(out, product(m))
		}
		if len(out) == 200 {
			break
		}
	}
	return out
}

// str reads a string property; numbers are accepted as their decimal text
// (Segment senders are loose about ids).
func str(m map[string]any, key string) string {
	switch v := m[key].(type) {
	case string:
		return v
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// num reads a numeric property; numeric strings are accepted, anything else is 0.
func num(m map[string]any, key string) float64 {
	switch v := m[key].(type) {
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0
		}
		return v
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f
		}
	}
	return 0
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
