package ingest

import (
	"testing"
	"time"

	"github.com/herd-analytics/herd/ingest/keyring"
	"github.com/herd-analytics/herd/ingest/scrub"
)

// What one request's events share is worked out once, but only where it
// is really shared: the same URL, referrer and user agent, for the same site.
func TestRequestMemoKeepsEventsApart(t *testing.T) {
	keys, err := keyring.Open("", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPipeline(keys)
	shoes := &Site{Name: "shoes", Domains: []string{"shoes.example"}}
	hats := &Site{Name: "hats", Domains: []string{"hats.example"}}
	req := &Request{IP: "198.51.100.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", Received: time.Now()}
	events := []struct {
		site          *Site
		url, referrer string
		wantPath      string
		wantReferrer  string
	}{
		{shoes, "https://shoes.example/p/1?utm_source=news", "https://www.shoes.example/", "/p/1", scrub.ReferrerInternal},
		{hats, "https://shoes.example/p/1?utm_source=news", "https://www.shoes.example/", "/p/1", "shoes.example"},
		{hats, "https://hats.example/c/felt", "https://www.shoes.example/", "/c/felt", "shoes.example"},
		{shoes, "https://hats.example/c/felt", "", "/c/felt", ""},
	}
	var visitors []uint64
	for i, e := range events {
		ev := &Event{Type: "pageview", URL: e.url, Referrer: e.referrer, Index: i}
		row, reason, prob, err := p.Process(e.site, req, ev, i)
		if reason != "" || prob != nil || err != nil {
			t.Fatalf("event %d: %q %v %v", i, reason, prob, err)
		}
		if row.Path != e.wantPath || row.ReferrerHost != e.wantReferrer {
			t.Errorf("event %d: path %q referrer %q, want %q %q", i, row.Path, row.ReferrerHost, e.wantPath, e.wantReferrer)
		}
		visitors = append(visitors, row.Visitor)
	}
	// Pseudonyms are per site: the memo must not carry one across sites.
	if visitors[0] == visitors[1] || visitors[0] != visitors[3] || visitors[1] != visitors[2] {
		t.Errorf("visitors %v: want one per site", visitors)
	}
}
