package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Plausible's event API (its official tracker, @plausible-analytics/tracker,
// and its script post this; the endpoint is configurable, so pointing it at
// herd's /api/event is the one change a shop makes):
//
//	{"n":"pageview","v":36,"u":"https://shop.example/p/1","d":"shop.example","r":null,
//	 "p":{"product_id":"P1"},"$":{"amount":99.8,"currency":"EUR"}}
//
// n is the event name, u the page, d the site's domain, r the referrer, p
// custom properties and $ revenue. Fields herd has no use for (v, h, i) are
// ignored; nothing else is read.
type plausibleEvent struct {
	Name     string                     `json:"n"`
	URL      string                     `json:"u"`
	Domain   string                     `json:"d"`
	Referrer *string                    `json:"r"`
	Props    map[string]json.RawMessage `json:"p"`
	Revenue  *struct {
		Amount   json.RawMessage `json:"amount"`
		Currency string          `json:"currency"`
	} `json:"$"`
}

// plausibleNames maps Plausible event names (goals) onto herd's types: the
// common e-commerce goal names by default, a site's own through its
// plausible_events setting.
var plausibleNames = map[string]EventType{
	"pageview":     Pageview,
	"Product View": ProductView, "Product Viewed": ProductView, "product_view": ProductView,
	"Add to Cart": AddToCart, "Add to cart": AddToCart, "add_to_cart": AddToCart,
	"Remove from Cart": RemoveFromCart, "remove_from_cart": RemoveFromCart,
	"Checkout": CheckoutStep, "Begin Checkout": CheckoutStep, "checkout": CheckoutStep,
	"Purchase": Purchase, "purchase": Purchase, "Order Completed": Purchase,
	"Search": Search, "search": Search,
}

// isPlausible reports whether an /api/event body is Plausible's: an object
// with "n" and no "type".
func isPlausible(body []byte) bool {
	body = bytes.TrimSpace(body)
	// A Plausible body always has an "n" key; herd's own events (herd.js
	// posts every event here) almost never hold that string: no parse for
	// them.
	if len(body) == 0 || body[0] != '{' || !bytes.Contains(body, []byte(`"n"`)) {
		return false
	}
	var probe struct {
		N    *json.RawMessage `json:"n"`
		Type *json.RawMessage `json:"type"`
	}
	return json.Unmarshal(body, &probe) == nil && probe.N != nil && probe.Type == nil
}

// DecodePlausible reads one Plausible event for the site its domain names.
// A name the site does not map is dropped as unsupported_event, a domain no
// site lists as unknown_site.
func DecodePlausible(body []byte, sites *Sites) (events []Event, site *Site, dropped map[string]int, err error) {
	var m plausibleEvent
	if err := json.Unmarshal(bytes.TrimSpace(body), &m); err != nil {
		f, r := jsonProblem(err)
		return nil, nil, nil, Problem{Index: 0, Field: f, Reason: r}
	}
	if strings.TrimSpace(m.Domain) == "" {
		return nil, nil, nil, Problem{Index: 0, Field: "d", Reason: "missing: the site's domain"}
	}
	if m.Name == "" {
		return nil, nil, nil, Problem{Index: 0, Field: "n", Reason: "missing: the event name"}
	}
	dropped = map[string]int{}
	site, err = sites.ByDomain(m.Domain)
	if err != nil {
		dropped[DropUnknownSite]++
		return nil, nil, dropped, nil
	}
	t, ok := site.plausibleType(m.Name)
	if !ok {
		dropped[DropUnsupportedEvent]++
		return nil, site, dropped, nil
	}
	props := &properties{m: m.Props, path: "p", field: new(string), reason: new(string)}
	ev := Event{Site: site.Name, Type: t.String(), URL: m.URL}
	if m.Referrer != nil {
		ev.Referrer = *m.Referrer
	}
	switch t {
	case ProductView, AddToCart, RemoveFromCart:
		ev.Product = &Product{ID: firstNonEmpty(props.str("product_id"), props.str("sku"), props.str("id")),
			Category: props.str("category"), Price: props.num("price"), List: props.str("list")}
	case CheckoutStep:
		ev.Step = max(int(props.num("step")), 1)
	case Purchase:
		ev.Order = &Order{Value: props.num("revenue")}
		if m.Revenue != nil {
			rev := &properties{m: map[string]json.RawMessage{"amount": m.Revenue.Amount}, path: "$", field: props.field, reason: props.reason}
			ev.Order.Value = rev.num("amount")
			ev.Order.Currency = m.Revenue.Currency
		}
	case Search:
		ev.Search = &SearchAct{Term: firstNonEmpty(props.str("query"), props.str("term"), props.str("q"))}
	}
	ev.Variant = props.str("variant")
	if p := props.problem(0); p != nil {
		return nil, site, nil, *p
	}
	return []Event{ev}, site, dropped, nil
}

// plausibleType is the herd type of a Plausible event name for this site.
func (site *Site) plausibleType(name string) (EventType, bool) {
	if t, ok := site.PlausibleEvents[name]; ok {
		return ParseEventType(t)
	}
	t, ok := plausibleNames[name]
	return t, ok
}
