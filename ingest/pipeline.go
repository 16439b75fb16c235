package ingest

import (
	"crypto/rand"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/medama-io/go-useragent"

	"github.com/herd-analytics/herd/ingest/keyring"
	"github.com/herd-analytics/herd/ingest/scrub"
	"github.com/herd-analytics/herd/ingest/spool"
)

// Drop reasons: events refused without error, counted in the 202 answer and
// in /metrics.
const (
	DropGPC         = "gpc"
	DropDNT         = "dnt"
	DropNoConsent   = "consent"
	DropBot         = "bot"
	DropUnknownSite = "unknown_site"
)

// Request is what the HTTP layer knows about the request an event came in.
// IP and UserAgent are raw identifiers: they live in memory for the call.
type Request struct {
	IP        string
	UserAgent string
	GPC       bool
	DNT       bool
	Received  time.Time
	// Imported marks history replayed by `herd gen --import`: Received is
	// then the event's own time, which only an import-enabled site accepts.
	Imported bool

	memo *requestMemo // per-request results, shared by its events
}

// requestMemo remembers what the events of one request share (the browser,
// the pseudonym), so a 20-event request parses its user agent once. It lives
// as long as the request.
type requestMemo struct {
	uaInput string
	ua      uaClient
	pInput  [3]string // site, part0, part1
	pDay    int64     // UTC day number
	visitor uint64
	// A tracker's batch comes from one page: its events share the URL and
	// the referrer.
	urlInput, refInput, refSite string
	url                         scrub.SanitizedURL
	refHost                     string
	refSet                      bool
}

// Pipeline turns decoded events into rows (docs/ARCHITECTURE.md): consent → bot filter
// → desensitize → pseudonymize.
type Pipeline struct {
	Keys *keyring.KeyRing
	// HonorDNT drops events from browsers sending DNT: 1; GPC is always honoured.
	HonorDNT bool
	// Country maps an IP to a country code; nil stores no country.
	Country func(ip string) string
	// Slots are the declared layout slots (schemas/layout.yaml); any other
	// slot is stored as "unlisted". Nil stores every slot as scrubbed.
	Slots map[string]bool

	ua      *useragent.Parser
	uaCache uaCache
	// unlisted counts the identifiers stored as "unlisted" by field: free
	// text sent where the site's identifiers go (/metrics).
	unlisted fieldCounts
}

// Unlisted is how many identifiers were stored as "unlisted", by field.
func (p *Pipeline) Unlisted() map[string]int64 { return p.unlisted.snapshot() }

// uaCache remembers what user agents were reduced to, across requests: a
// shop's traffic comes from a few thousand distinct browsers, and parsing
// one costs microseconds. It is keyed by a seeded hash of the string; the
// string itself is not kept.
type uaCache struct {
	mu      sync.Mutex
	seed    maphash.Seed
	entries [4096]struct {
		hash uint64
		c    uaClient
	}
}

func (u *uaCache) get(ua string) (uaClient, uint64, bool) {
	h := maphash.String(u.seed, ua)
	u.mu.Lock()
	defer u.mu.Unlock()
	e := &u.entries[h%uint64(len(u.entries))]
	return e.c, h, e.hash == h && h != 0
}

func (u *uaCache) put(h uint64, c uaClient) {
	u.mu.Lock()
	defer u.mu.Unlock()
	e := &u.entries[h%uint64(len(u.entries))]
	e.hash, e.c = h, c
}

// NewPipeline builds a pipeline; keys are required.
func NewPipeline(keys *keyring.KeyRing) *Pipeline {
	p := &Pipeline{Keys: keys, HonorDNT: true, ua: useragent.NewParser()}
	p.uaCache.seed = maphash.MakeSeed()
	return p
}

// Process turns one event into a row. It returns a drop reason for an event
// that is refused by policy, a problem for one that is malformed, or an
// error when herd itself fails (the key ring cannot make or store a key).
func (p *Pipeline) Process(site *Site, req *Request, ev *Event, seq int) (spool.Row, string, *Problem, error) {
	// Consent and objection come first: nothing is derived from an event the
	// shopper did not agree to.
	if req.GPC {
		return spool.Row{}, DropGPC, nil, nil
	}
	if req.memo == nil {
		req.memo = &requestMemo{}
	}
	if req.DNT && p.HonorDNT {
		return spool.Row{}, DropDNT, nil, nil
	}
	if ev.Consent != nil && !slices.Contains(ev.Consent, keyring.PurposeAnalytics) {
		return spool.Row{}, DropNoConsent, nil, nil
	}
	if ev.Site != "" && ev.Site != site.Name {
		return spool.Row{}, DropUnknownSite, nil, nil
	}
	t, ok := ParseEventType(ev.Type)
	if !ok {
		if ev.Type == "" {
			return spool.Row{}, "", &Problem{Index: ev.Index, Field: "type", Reason: "missing"}, nil
		}
		return spool.Row{}, "", &Problem{Index: ev.Index, Field: "type", Reason: "unknown event type"}, nil
	}
	if prob := validate(t, ev); prob != nil {
		return spool.Row{}, "", prob, nil
	}

	ip, uaString := req.IP, req.UserAgent
	if ev.IP != "" {
		ip = ev.IP
	}
	if ev.UserAgent != "" {
		uaString = ev.UserAgent
	}
	client := p.parseUACached(req, uaString)
	if client.bot {
		return spool.Row{}, DropBot, nil, nil
	}

	row := spool.Row{
		Site:          site.Name,
		Received:      req.Received.UTC().Truncate(time.Second),
		Seq:           uint16(min(seq, math.MaxUint16)),
		Type:          uint8(t),
		Browser:       client.browser,
		BrowserMajor:  client.major,
		OS:            client.os,
		Device:        client.device,
		SearchResults: -1,
		Imported:      req.Imported,
	}
	if p.Country != nil && ip != "" {
		row.Country = p.Country(ip)
	}
	u := req.memo.sanitizeURL(ev.URL)
	row.Path = u.Path
	row.UTMSource = site.identifier("utm_source", u.UTMSource, &p.unlisted)
	row.UTMMedium = site.identifier("utm_medium", u.UTMMedium, &p.unlisted)
	row.UTMCampaign = site.identifier("utm_campaign", u.UTMCampaign, &p.unlisted)
	row.PageType = pageType(row.Path)
	row.ReferrerHost = req.memo.referrerHost(ev.Referrer, site)
	if ev.Product != nil {
		row.ProductID = site.identifier("product_id", scrub.Field(ev.Product.ID, scrub.MaxField), &p.unlisted)
		row.ProductCategory = site.identifier("category", scrub.Field(ev.Product.Category, scrub.MaxField), &p.unlisted)
		row.ProductPrice = cents(ev.Product.Price)
		row.Position = uint16(ev.Product.Position)
		row.List = site.identifier("list", scrub.Field(ev.Product.List, scrub.MaxField), &p.unlisted)
	}
	for _, pr := range ev.Products {
		if len(row.Products) == 200 {
			break
		}
		if id := site.identifier("product_id", scrub.Field(pr.ID, scrub.MaxField), &p.unlisted); id != "" {
			row.Products = append(row.Products, id)
		}
	}
	row.Slot = scrub.Field(ev.Slot, scrub.MaxField)
	if row.Slot != "" && p.Slots != nil && !p.Slots[row.Slot] {
		row.Slot = Unlisted // only the declared slots (schemas/layout.yaml) are the shop's
	}
	row.Variant = site.identifier("variant", scrub.Field(ev.Variant, scrub.MaxField), &p.unlisted)
	row.Step = uint8(ev.Step)
	if ev.Order != nil {
		row.OrderValue = cents(ev.Order.Value)
		row.Currency = currency(ev.Order.Currency)
		row.Items = uint16(min(max(ev.Order.Items, len(ev.Products)), math.MaxUint16))
	}
	switch {
	case ev.Search != nil:
		row.SearchTerm = scrub.Term(ev.Search.Term)
		if ev.Search.Results != nil {
			row.SearchResults = int32(*ev.Search.Results)
		}
	case u.HasSearch && t == Search:
		row.SearchTerm = u.SearchTerm
	}

	// Pseudonyms. The raw inputs (IP, user agent, client and user ids) are
	// used here and nowhere else.
	day := row.Received
	var parts []string
	switch {
	case ev.IP != "" || ev.UserAgent != "" || ev.ClientID == "":
		parts = []string{ip, uaString}
	default:
		parts = []string{"client", ev.ClientID}
	}
	visitor, err := p.visitorCached(req, day, site.Name, parts)
	if err != nil {
		return spool.Row{}, "", nil, fmt.Errorf("pseudonym: %w", err)
	}
	// No state about the visitor is kept between requests: sessions are
	// derived by the publisher from the times of a visitor-day's events,
	// so any ingest node may take any request (docs/operations.md).
	row.Visitor = visitor
	if ev.ID != "" {
		if row.EventID, err = p.Keys.EventID(day, site.Name, ev.ID); err != nil {
			return spool.Row{}, "", nil, fmt.Errorf("pseudonym: %w", err)
		}
	} else {
		_, _ = rand.Read(row.EventID[:])
		row.EventID[6] = row.EventID[6]&0x0f | 0x40 // UUID v4
		row.EventID[8] = row.EventID[8]&0x3f | 0x80
	}
	return row, "", nil, nil
}

// validate checks what each type needs and that numbers are in range.
func validate(t EventType, ev *Event) *Problem {
	bad := func(field, reason string) *Problem { return &Problem{Index: ev.Index, Field: field, Reason: reason} }
	if len(ev.URL) > 8192 {
		return bad("url", "longer than 8192 bytes")
	}
	if len(ev.Referrer) > 8192 {
		return bad("referrer", "longer than 8192 bytes")
	}
	if len(ev.ID) > 128 {
		return bad("id", "longer than 128 bytes")
	}
	if ev.Product != nil {
		switch {
		case ev.Product.Price < 0 || ev.Product.Price > 1e9:
			return bad("product.price", "out of range 0..1e9")
		case ev.Product.Position < 0 || ev.Product.Position > math.MaxUint16:
			return bad("product.position", "out of range 0..65535")
		}
	}
	if len(ev.Products) > 500 {
		return bad("products", "more than 500 products")
	}
	if ev.Step < 0 || ev.Step > 255 {
		return bad("step", "out of range 0..255")
	}
	switch t {
	case Pageview:
		if ev.URL == "" {
			return bad("url", "required for pageview")
		}
	case ProductView, ProductClick, AddToCart, RemoveFromCart:
		if ev.Product == nil || ev.Product.ID == "" {
			if t == ProductClick && ev.Slot != "" {
				return nil
			}
			return bad("product.id", "required for "+t.String())
		}
	case CheckoutStep:
		if ev.Step < 1 || ev.Step > 255 {
			return bad("step", "required for checkout_step, 1..255")
		}
	case Purchase:
		if ev.Order == nil {
			return bad("order", "required for purchase")
		}
		if ev.Order.Value < 0 || ev.Order.Value > 1e10 || math.IsNaN(ev.Order.Value) {
			return bad("order.value", "out of range 0..1e10")
		}
		if ev.Order.Items < 0 {
			return bad("order.items", "negative")
		}
	case Search:
		if (ev.Search == nil || strings.TrimSpace(ev.Search.Term) == "") && !scrub.URL(ev.URL).HasSearch {
			return bad("search.term", "required for search")
		}
		if ev.Search != nil && ev.Search.Results != nil && (*ev.Search.Results < 0 || *ev.Search.Results > math.MaxInt32) {
			return bad("search.results", "negative or too large")
		}
	case SlotImpression:
		if ev.Slot == "" {
			return bad("slot", "required for slot_impression")
		}
	}
	return nil
}

func cents(v float64) int64 {
	if math.IsNaN(v) || v <= 0 {
		return 0
	}
	return int64(math.Round(v * 100))
}

func currency(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	if len(s) != 3 {
		return ""
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return ""
		}
	}
	return s
}

// pageType classifies a path by its first segment, for slot and layout
// rollups: home, product, category, search, cart, checkout, account, other.
func pageType(path string) string {
	switch path {
	case "":
		return ""
	case "/":
		return "home"
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	switch strings.ToLower(first) {
	case "product", "products", "p", "item":
		return "product"
	case "category", "categories", "c", "collections", "shop":
		return "category"
	case "search":
		return "search"
	case "cart", "basket", "bag":
		return "cart"
	case "checkout", "order", "payment":
		return "checkout"
	case "account", "login", "register", "my":
		return "account"
	}
	return "other"
}

func (m *requestMemo) sanitizeURL(raw string) scrub.SanitizedURL {
	if raw != m.urlInput || raw == "" {
		m.urlInput, m.url = raw, scrub.URL(raw)
	}
	return m.url
}

// referrerHost memoizes per request and site (events of one request may
// name different sites, whose own domains differ).
func (m *requestMemo) referrerHost(raw string, site *Site) string {
	if !m.refSet || raw != m.refInput || site.Name != m.refSite {
		m.refInput, m.refSite, m.refHost, m.refSet = raw, site.Name, scrub.ReferrerHost(raw, site.Domains), true
	}
	return m.refHost
}

func (p *Pipeline) parseUACached(req *Request, ua string) uaClient {
	if req.memo.uaInput == ua && ua != "" {
		return req.memo.ua
	}
	c, h, ok := p.uaCache.get(ua)
	if !ok {
		c = p.parseUA(ua)
		p.uaCache.put(h, c)
	}
	req.memo.uaInput, req.memo.ua = ua, c
	return c
}

func (p *Pipeline) visitorCached(req *Request, day time.Time, site string, parts []string) (uint64, error) {
	key := [3]string{site, parts[0], parts[1]}
	dayNum := day.Unix() / 86400 // the key ring's UTC day
	if req.memo.pInput == key && req.memo.pDay == dayNum && req.memo.visitor != 0 {
		return req.memo.visitor, nil
	}
	v, err := p.Keys.Pseudonym(day, site, keyring.PurposeAnalytics, parts...)
	if err == nil {
		req.memo.pInput, req.memo.pDay, req.memo.visitor = key, dayNum, v
	}
	return v, err
}

type uaClient struct {
	browser, os, device string
	major               uint16
	bot                 bool
}

var botMarkers = []string{"bot", "spider", "crawl", "slurp", "headless", "phantomjs", "curl/", "wget/", "python-", "go-http-client", "java/", "okhttp", "lighthouse", "pingdom", "monitor", "scrapy", "httpclient", "node-fetch", "axios/"}

// parseUA reduces a user agent to browser family and major version, OS
// family and device class; the string itself is dropped.
func (p *Pipeline) parseUA(s string) uaClient {
	if strings.TrimSpace(s) == "" || len(s) > 1024 {
		return uaClient{bot: true}
	}
	lower := strings.ToLower(s)
	for _, m := range botMarkers {
		if strings.Contains(lower, m) {
			return uaClient{bot: true}
		}
	}
	ua := p.ua.Parse(s)
	if ua.IsBot() {
		return uaClient{bot: true}
	}
	c := uaClient{browser: string(ua.Browser()), os: string(ua.OS()), device: "other"}
	if c.browser == "" {
		c.browser = "Other"
	}
	if c.os == "" {
		c.os = "Other"
	}
	if v, err := strconv.ParseUint(ua.BrowserVersionMajor(), 10, 16); err == nil {
		c.major = uint16(v)
	}
	switch {
	case ua.IsTablet():
		c.device = "tablet"
	case ua.IsMobile():
		c.device = "mobile"
	case ua.IsDesktop():
		c.device = "desktop"
	}
	return c
}
