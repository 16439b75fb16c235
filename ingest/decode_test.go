package ingest

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeManyKeepsGoodEvents(t *testing.T) {
	body := `[
		{"type":"pageview","url":"/a"},
		{"type":"pageview","url":"/b","colour":"red"},
		{"type":"product_view","product":{"id":"p1","price":"12"}},
		{"type":"pageview","url":"/c","ts":"yesterday"},
		{"type":"add_to_cart","product":{"id":"p2","price":9.5,"position":3}}
	]`
	events, problems, err := DecodeMany([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].URL != "/a" || events[1].Index != 4 || events[1].Product.Price != 9.5 {
		t.Fatalf("events: %+v", events)
	}
	want := []Problem{
		{Index: 1, Field: "colour", Reason: "unknown field"},
		{Index: 2, Field: "product.price", Reason: "wrong type: got JSON string, want number"},
		{Index: 3, Field: "ts", Reason: "want milliseconds since the epoch or an RFC 3339 string"},
	}
	if len(problems) != len(want) {
		t.Fatalf("problems: %+v", problems)
	}
	for i := range want {
		if problems[i] != want[i] {
			t.Errorf("problem %d = %+v, want %+v", i, problems[i], want[i])
		}
	}
}

func TestDecodeManyNDJSON(t *testing.T) {
	body := "{\"type\":\"pageview\",\"url\":\"/a\",\"ts\":1732500000000}\n\n{\"type\":\"search\",\"search\":{\"term\":\"boots\",\"results\":0}}\n{broken\n"
	events, problems, err := DecodeMany([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].TS.UnixMilli() != 1732500000000 || *events[1].Search.Results != 0 {
		t.Fatalf("events: %+v", events)
	}
	if len(problems) != 1 || problems[0].Index != 2 || !strings.HasPrefix(problems[0].Reason, "malformed JSON") {
		t.Fatalf("problems: %+v", problems)
	}
}

func TestDecodeBodyErrors(t *testing.T) {
	for _, body := range []string{"", "null", "42", `"x"`, "[1,2", "[{]", "<xml/>"} {
		if _, _, err := DecodeMany([]byte(body)); err == nil {
			t.Errorf("DecodeMany(%q) accepted", body)
		}
	}
	for _, body := range []string{"", "[]", "null"} {
		if _, _, err := DecodeOne([]byte(body)); err == nil {
			t.Errorf("DecodeOne(%q) accepted", body)
		}
	}
	many := "[" + strings.Repeat(`{"type":"pageview","url":"/"},`, MaxEventsPerBatch) + `{"type":"pageview","url":"/"}]`
	if _, _, err := DecodeMany([]byte(many)); !errors.Is(err, ErrTooManyEvents) {
		t.Errorf("501 events: %v", err)
	}
}

func TestDecodeSegmentBatch(t *testing.T) {
	body := `{"batch":[
		{"type":"track","event":"Product Viewed","messageId":"m1","anonymousId":"anon-1","properties":{"product_id":"p9","category":"shoes","price":59.9,"position":2},"context":{"ip":"203.0.113.9","userAgent":"Mozilla/5.0","page":{"url":"https://shop.example/product/p9"}}},
		{"type":"identify","userId":"u1","traits":{"email":"a@b.c"}},
		{"type":"track","event":"Signed Up"},
		{"type":"track","event":"Order Completed","userId":42,"properties":{"revenue":"120.50","currency":"eur","products":[{"product_id":"p9"},{"sku":"s-2"}]}},
		{"type":"page","name":"Home","properties":{"url":"https://shop.example/","referrer":"https://www.google.com/"}},
		"nonsense"
	],"sentAt":"2026-11-25T10:00:00Z","writeKey":"x"}`
	events, problems, dropped, err := DecodeSegment("batch", []byte(body), "demo")
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("events: %+v", events)
	}
	pv := events[0]
	if pv.Type != "product_view" || pv.Product.ID != "p9" || pv.Product.Price != 59.9 || pv.IP != "203.0.113.9" || pv.ClientID != "anon-1" || pv.ID != "m1" || pv.Site != "demo" {
		t.Fatalf("product view: %+v", pv)
	}
	oc := events[1]
	if oc.Type != "purchase" || oc.Order.Value != 120.5 || oc.Order.Currency != "eur" || len(oc.Products) != 2 || oc.Products[1].ID != "s-2" || oc.UserID != "42" {
		t.Fatalf("order: %+v %+v", oc, oc.Order)
	}
	if events[2].Type != "pageview" || events[2].Referrer != "https://www.google.com/" {
		t.Fatalf("page: %+v", events[2])
	}
	if dropped[DropUnsupportedType] != 1 || dropped[DropUnsupportedEvent] != 1 {
		t.Fatalf("dropped: %v", dropped)
	}
	if len(problems) != 1 || problems[0].Index != 5 {
		t.Fatalf("problems: %+v", problems)
	}
}

func FuzzDecodeMany(f *testing.F) {
	f.Add(`[{"type":"pageview","url":"/a"}]`)
	f.Add("{\"type\":\"search\",\"search\":{\"term\":\"x\"}}\n{\"x\":1}")
	f.Add(`[{"product":{"price":1e400}}]`)
	f.Fuzz(func(t *testing.T, body string) {
		events, problems, err := DecodeMany([]byte(body))
		if err != nil {
			return
		}
		if len(events)+len(problems) > MaxEventsPerBatch {
			t.Fatalf("%d events and problems", len(events)+len(problems))
		}
		for _, p := range problems {
			if p.Index < 0 || p.Reason == "" {
				t.Fatalf("bad problem %+v", p)
			}
		}
	})
}

func FuzzDecodeOne(f *testing.F) {
	f.Add(`{"type":"pageview","url":"/a","ts":"2026-11-25T10:00:00Z"}`)
	f.Add(`{"type":"purchase","order":{"value":-1}}`)
	f.Fuzz(func(t *testing.T, body string) {
		events, problems, err := DecodeOne([]byte(body))
		if err == nil && len(events)+len(problems) != 1 {
			t.Fatalf("%q: %d events, %d problems", body, len(events), len(problems))
		}
	})
}

func FuzzDecodeSegment(f *testing.F) {
	f.Add("batch", `{"batch":[{"type":"track","event":"Product Viewed","properties":{"price":"x","products":[1,{"sku":2}]}}]}`)
	f.Add("track", `{"event":"Order Completed","properties":{"revenue":1e308,"products":"no"}}`)
	f.Add("page", `{"properties":{"url":null},"context":{"consent":{"categoryPreferences":{"Analytics":true}}}}`)
	f.Fuzz(func(t *testing.T, kind, body string) {
		events, problems, dropped, err := DecodeSegment(kind, []byte(body), "demo")
		if err != nil {
			return
		}
		n := len(events) + len(problems)
		for _, c := range dropped {
			n += c
		}
		if n > MaxEventsPerBatch {
			t.Fatalf("%d results", n)
		}
	})
}

func TestDecodeNamesNestedFields(t *testing.T) {
	body := `[
		{"type":"purchase","order":{"value":10,"coupon":"x"}},
		{"type":"purchase","order":{"value":10},"products":[{"id":"a"},{"id":"b","price":"9"}]},
		{"type":"search","search":{"term":"x","results":1.5}},
		{"type":"pageview","url":"/","consent":["analytics",7]},
		{"type":"pageview","url":"/","product":[]},
		{"type":"pageview","url":"/","ts":true},
		{"type":"add_to_cart","product":{"id":"p","price":NaN}},
		7,
		{"type":"pageview","url":"/ok","product":null,"products":null,"order":null,"search":null,"consent":null,"site":null}
	]`
	events, problems, err := DecodeMany([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []Problem{
		{Index: 0, Field: "order.coupon", Reason: "unknown field"},
		{Index: 1, Field: "products[1].price", Reason: "wrong type: got JSON string, want number"},
		{Index: 2, Field: "search.results", Reason: "want a whole number in range"},
		{Index: 3, Field: "consent[1]", Reason: "wrong type: got JSON number, want string"},
		{Index: 4, Field: "product", Reason: "wrong type: got JSON array, want object"},
		{Index: 5, Field: "ts", Reason: "want milliseconds since the epoch or an RFC 3339 string"},
		{Index: 6, Field: "product.price", Reason: "not a finite JSON number"},
		{Index: 7, Reason: "wrong type: got JSON number, want object"},
	}
	if len(problems) != len(want) {
		t.Fatalf("problems: %+v", problems)
	}
	for i := range want {
		if problems[i] != want[i] {
			t.Errorf("problem %d = %+v, want %+v", i, problems[i], want[i])
		}
	}
	if len(events) != 1 || events[0].Index != 8 || events[0].Product != nil || events[0].Consent != nil || events[0].URL != "/ok" {
		t.Fatalf("events: %+v", events)
	}
}

func FuzzDecodePlausible(f *testing.F) {
	for _, s := range []string{
		`{"n":"pageview","v":36,"u":"https://shop.example/","d":"shop.example","r":null}`,
		`{"n":"Purchase","u":"/x","d":"shop.example","$":{"amount":"99.80","currency":"EUR"},"p":{"product_id":"P1"}}`,
		`{"n":"Search","d":"a","p":{"query":"red shoes"}}`, `{"n":1}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	sites := DefaultSites()
	f.Fuzz(func(t *testing.T, body []byte) {
		events, _, _, err := DecodePlausible(body, sites)
		if err == nil && len(events) > 1 {
			t.Fatalf("%d events from one body", len(events))
		}
	})
}
