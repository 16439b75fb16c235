package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// EventType is what a shopper did. The numbers are the Enum8 values of
// herd_raw.events.type.
type EventType uint8

// Event types (docs/api.md).
const (
	Pageview        EventType = 1
	ProductListView EventType = 2
	ProductView     EventType = 3
	ProductClick    EventType = 4
	AddToCart       EventType = 5
	RemoveFromCart  EventType = 6
	CheckoutStep    EventType = 7
	Purchase        EventType = 8
	Search          EventType = 9
	SlotImpression  EventType = 10
)

var eventTypeNames = map[string]EventType{
	"pageview": Pageview, "product_list_view": ProductListView, "product_view": ProductView,
	"product_click": ProductClick, "add_to_cart": AddToCart, "remove_from_cart": RemoveFromCart,
	"checkout_step": CheckoutStep, "purchase": Purchase, "search": Search, "slot_impression": SlotImpression,
}

var eventTypeStrings = func() [16]string {
	var a [16]string
	for name, v := range eventTypeNames {
		a[v] = name
	}
	return a
}()

// String is the type's wire and column name.
func (t EventType) String() string {
	if int(t) < len(eventTypeStrings) && eventTypeStrings[t] != "" {
		return eventTypeStrings[t]
	}
	return "unknown(" + strconv.Itoa(int(t)) + ")"
}

// ParseEventType reads a type name.
func ParseEventType(s string) (EventType, bool) {
	t, ok := eventTypeNames[s]
	return t, ok
}

// Event is one event as a client sent it, before anything is derived. It
// holds raw identifiers (user id, full URL) and so never leaves this package:
// Pipeline turns it into a Row and it is dropped.
type Event struct {
	// ID is the sender's id for this event, if it has one; a retried event
	// with the same ID is counted once.
	ID       string     `json:"id"`
	Site     string     `json:"site"`
	Type     string     `json:"type"`
	URL      string     `json:"url"`
	Referrer string     `json:"referrer"`
	TS       ClientTime `json:"ts"`
	Product  *Product   `json:"product"`
	Products []Product  `json:"products"`
	Slot     string     `json:"slot"`
	Variant  string     `json:"variant"`
	Step     int        `json:"step"`
	Order    *Order     `json:"order"`
	Search   *SearchAct `json:"search"`
	// Consent lists the purposes the shopper agreed to; nil means the site
	// did not say (its banner decides elsewhere), an empty list means none.
	Consent []string `json:"consent"`
	UserID  string   `json:"user_id"`

	// Set by server-side senders (Segment's context.ip / context.userAgent):
	// the shopper's, not the sending server's. Used in memory only.
	IP        string `json:"-"`
	UserAgent string `json:"-"`
	// ClientID is a sender's own pseudonymous id (Segment's anonymousId),
	// used in memory to tell shoppers apart when no IP and user agent came.
	ClientID string `json:"-"`

	// Index is the event's position in its request, for problems.
	Index int `json:"-"`
}

// Product is a product an event is about.
type Product struct {
	ID       string  `json:"id"`
	Category string  `json:"category"`
	Price    float64 `json:"price"`
	Position int     `json:"position"`
	List     string  `json:"list"`
	Quantity int     `json:"quantity"`
}

// Order is a completed purchase.
type Order struct {
	Value    float64 `json:"value"`
	Currency string  `json:"currency"`
	Items    int     `json:"items"`
}

// SearchAct is a site search.
type SearchAct struct {
	Term string `json:"term"`
	// Results is the number of results shown; nil when the site did not say.
	Results *int `json:"results"`
}

// ClientTime is the client's clock: milliseconds since the epoch or an
// RFC 3339 string. It only orders events within a batch; the server's receive
// time is what is stored.
type ClientTime struct {
	time.Time
}

// UnmarshalJSON accepts a number of milliseconds, an RFC 3339 string or null.
func (t *ClientTime) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return t.setString(s)
	}
	ms, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("not a time in milliseconds")
	}
	return t.setMillis(ms)
}

func (t *ClientTime) setString(s string) error {
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("not an RFC 3339 time")
	}
	t.Time = v
	return nil
}

func (t *ClientTime) setMillis(ms float64) error {
	if math.IsNaN(ms) || math.IsInf(ms, 0) || ms < 0 || ms > 1e14 {
		return fmt.Errorf("not a time in milliseconds")
	}
	t.Time = time.UnixMilli(int64(ms)).UTC()
	return nil
}
