// Package shopsim is a synthetic online shop whose shoppers browse, search,
// click, add to cart and buy, for `herd gen`, the demo and load tests.
//
// Its numbers have structure a dashboard should reveal: Zipf product
// popularity within categories, a day and week rhythm, funnel drop-off that
// depends on the device, slot and list-position click-through that decays
// with position, a layout variant B that really does better on the home
// hero, search terms some of which find nothing, a few bots and a few
// shoppers who object (Global Privacy Control). The same seed gives the same
// shop and the same shoppers.
package shopsim

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Config sizes the shop.
type Config struct {
	Site       string
	Seed       uint64
	Products   int // default 2,000
	Categories int // default 12 (at most len(categoryNames))
	BaseURL    string
}

// Product is one catalog item.
type Product struct {
	ID       string
	Name     string
	Category string
	Price    float64
}

// Shop is the catalog and the shoppers' behaviour model.
type Shop struct {
	cfg        Config
	Products   []Product
	byCategory map[string][]int // product indexes, most popular first
	Categories []string
	catZipf    []float64 // cumulative category weights
}

var categoryNames = []string{"shoes", "jackets", "shirts", "trousers", "dresses", "bags", "hats", "socks", "watches", "sunglasses", "scarves", "belts", "knitwear", "sportswear", "swimwear", "underwear"}

var adjectives = []string{"classic", "slim", "urban", "trail", "cosy", "linen", "merino", "vintage", "summer", "winter", "everyday", "premium", "organic", "waterproof", "lightweight", "oversized"}
var colours = []string{"black", "navy", "red", "olive", "sand", "white", "grey", "blue", "green", "brown"}

// New builds the catalog for cfg.
func New(cfg Config) *Shop {
	if cfg.Products == 0 {
		cfg.Products = 2000
	}
	if cfg.Categories == 0 || cfg.Categories > len(categoryNames) {
		cfg.Categories = 12
	}
	if cfg.Site == "" {
		cfg.Site = "demo"
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "https://shop.example"
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	s := &Shop{cfg: cfg, byCategory: map[string][]int{}, Categories: categoryNames[:cfg.Categories]}
	// Category popularity is Zipf too: shoes outsell belts.
	sum := 0.0
	for i := range s.Categories {
		sum += 1 / math.Pow(float64(i+1), 0.8)
		s.catZipf = append(s.catZipf, sum)
	}
	for i := range s.catZipf {
		s.catZipf[i] /= sum
	}
	for i := range cfg.Products {
		cat := s.Categories[i%len(s.Categories)]
		base := 15 + 10*float64(i%len(s.Categories))
		price := math.Round(base*math.Exp(r.NormFloat64()*0.5)*100) / 100
		p := Product{
			ID:       fmt.Sprintf("P%05d", i+1),
			Name:     adjectives[r.IntN(len(adjectives))] + " " + colours[r.IntN(len(colours))] + " " + singular(cat),
			Category: cat,
			Price:    price,
		}
		s.Products = append(s.Products, p)
		s.byCategory[cat] = append(s.byCategory[cat], i)
	}
	return s
}

// Event is what a tracker would send, in herd's own JSON format.
type Event struct {
	ID       string         `json:"id"`
	Site     string         `json:"site"`
	Type     string         `json:"type"`
	URL      string         `json:"url,omitempty"`
	Referrer string         `json:"referrer,omitempty"`
	TS       int64          `json:"ts"`
	Product  *EventProduct  `json:"product,omitempty"`
	Products []EventProduct `json:"products,omitempty"`
	Slot     string         `json:"slot,omitempty"`
	Variant  string         `json:"variant,omitempty"`
	Step     int            `json:"step,omitempty"`
	Order    *EventOrder    `json:"order,omitempty"`
	Search   *EventSearch   `json:"search,omitempty"`
}

// EventProduct is the product part of an event.
type EventProduct struct {
	ID       string  `json:"id"`
	Category string  `json:"category,omitempty"`
	Price    float64 `json:"price,omitempty"`
	Position int     `json:"position,omitempty"`
	List     string  `json:"list,omitempty"`
}

// EventOrder is a purchase.
type EventOrder struct {
	Value    float64 `json:"value"`
	Currency string  `json:"currency"`
	Items    int     `json:"items"`
}

// EventSearch is a site search.
type EventSearch struct {
	Term    string `json:"term"`
	Results int    `json:"results"`
}

// Session is one visit: who (as the HTTP layer sees them) and what they did.
type Session struct {
	IP        string
	UserAgent string
	GPC       bool
	Bot       bool
	Device    string
	Start     time.Time
	Events    []Event
}

// Shopper is a returning visitor: same address and browser across sessions.
type Shopper struct {
	IP        string
	UserAgent string
	Device    string
	Variant   string
	GPC       bool
	Bot       bool
}

var userAgents = map[string][]string{
	"desktop": {
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.%d Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:%d.0) Gecko/20100101 Firefox/%d.0",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36 Edg/%d.0.0.0",
	},
	"mobile": {
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Mobile Safari/537.36",
		"Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/%d.0 Chrome/115.0.0.0 Mobile Safari/537.36",
	},
	"tablet": {
		"Mozilla/5.0 (iPad; CPU OS 17_%d like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%d.0.0.0 Safari/537.36",
	},
}

var botAgents = []string{
	"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
	"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
	"python-requests/2.31.0",
}

// NewShopper draws a visitor.
func (s *Shop) NewShopper(r *rand.Rand) Shopper {
	sh := Shopper{IP: fmt.Sprintf("%d.%d.%d.%d", 1+r.IntN(222), r.IntN(256), r.IntN(256), 1+r.IntN(254))}
	switch x := r.Float64(); {
	case x < 0.45:
		sh.Device = "desktop"
	case x < 0.9:
		sh.Device = "mobile"
	default:
		sh.Device = "tablet"
	}
	uas := userAgents[sh.Device]
	tmpl := uas[r.IntN(len(uas))]
	v := 118 + r.IntN(12)
	if strings.Count(tmpl, "%d") == 2 {
		sh.UserAgent = fmt.Sprintf(tmpl, v, v)
	} else {
		sh.UserAgent = fmt.Sprintf(tmpl, v%10)
		if strings.Contains(tmpl, "Chrome/%d") || strings.Contains(tmpl, "SamsungBrowser/%d") {
			sh.UserAgent = fmt.Sprintf(tmpl, v)
		}
	}
	sh.Variant = "A"
	if r.IntN(2) == 1 {
		sh.Variant = "B"
	}
	sh.GPC = r.Float64() < 0.03
	if r.Float64() < 0.01 {
		sh.Bot = true
		sh.UserAgent = botAgents[r.IntN(len(botAgents))]
	}
	return sh
}

// hourWeight is the shop's daily rhythm (UTC): quiet nights, a lunch bump
// and an evening peak; weekends are busier.
func hourWeight(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	w := 0.15 + 0.5*gauss(h, 12.5, 1.5) + 1.0*gauss(h, 20.5, 2.2) + 0.3*gauss(h, 9, 1.5)
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		w *= 1.3
	}
	return w
}

func gauss(x, mu, sigma float64) float64 {
	return math.Exp(-(x - mu) * (x - mu) / (2 * sigma * sigma))
}

// SessionStart draws a start time within [from, to) following the rhythm.
func SessionStart(r *rand.Rand, from, to time.Time) time.Time {
	span := to.Sub(from)
	for {
		t := from.Add(time.Duration(r.Int64N(int64(span))))
		if r.Float64()*1.7 < hourWeight(t) {
			return t
		}
	}
}

// funnel conversion by device: view → cart, cart → checkout, each checkout
// step, → purchase. Mobile drops more at checkout (forms on small screens).
var cartRate = map[string]float64{"desktop": 0.12, "mobile": 0.08, "tablet": 0.10}
var checkoutStepKeep = map[string][]float64{
	"desktop": {0.7, 0.85, 0.8, 0.9},
	"mobile":  {0.6, 0.7, 0.65, 0.85},
	"tablet":  {0.65, 0.8, 0.75, 0.88},
}

// Session simulates one visit of sh starting at start.
func (s *Shop) Session(r *rand.Rand, sh Shopper, start time.Time) Session {
	ss := Session{IP: sh.IP, UserAgent: sh.UserAgent, GPC: sh.GPC, Bot: sh.Bot, Device: sh.Device, Start: start}
	t := start
	var cart []Product
	page := func(path, referrer string) string {
		u := s.cfg.BaseURL + path
		ss.add(s, r, &t, Event{Type: "pageview", URL: u, Referrer: referrer, Variant: sh.Variant})
		return u
	}
	// Entry: how they arrived.
	referrer := ""
	entryQuery := ""
	switch x := r.Float64(); {
	case x < 0.35:
		referrer = "https://www.google.com/"
	case x < 0.5:
		referrer = "https://www.instagram.com/"
	case x < 0.6:
		entryQuery = "?utm_source=newsletter&utm_medium=email&utm_campaign=week" + fmt.Sprint(start.YearDay()/7)
	case x < 0.65:
		referrer = "https://www.bing.com/"
	}
	pages := 1 + int(r.ExpFloat64()*4)
	cur := page("/"+entryQuery, referrer)
	for i := 0; i < pages; i++ {
		switch x := r.Float64(); {
		case x < 0.35: // home page: hero and row slots
			cur = page("/", cur)
			if p, ok := s.homeSlots(r, &ss, &t, sh); ok {
				cur = s.browse(r, &ss, &t, sh, p, cur, &cart)
			}
		case x < 0.75: // a category listing
			cat := s.pickCategory(r)
			cur = page("/category/"+cat, cur)
			if p, ok := s.listing(r, &ss, &t, sh, cat, "category:"+cat); ok {
				cur = s.browse(r, &ss, &t, sh, p, cur, &cart)
			}
		default: // search
			term, results := s.searchTerm(r)
			cur = page("/search?q="+strings.ReplaceAll(term, " ", "+"), cur)
			ss.add(s, r, &t, Event{Type: "search", URL: cur, Search: &EventSearch{Term: term, Results: results}, Variant: sh.Variant})
			if results > 0 {
				cat := s.Products[s.pickProduct(r, "")].Category
				if p, ok := s.listing(r, &ss, &t, sh, cat, "search"); ok {
					cur = s.browse(r, &ss, &t, sh, p, cur, &cart)
				}
			}
		}
		if len(cart) > 0 && r.Float64() < 0.5 {
			break
		}
	}
	if len(cart) > 0 {
		s.checkout(r, &ss, &t, sh, cart, cur)
	}
	return ss
}

func (ss *Session) add(s *Shop, r *rand.Rand, t *time.Time, ev Event) {
	*t = t.Add(time.Duration(3+r.ExpFloat64()*25) * time.Second)
	ev.ID = fmt.Sprintf("%016x", r.Uint64())
	ev.Site = s.cfg.Site
	ev.TS = t.UnixMilli()
	ss.Events = append(ss.Events, ev)
}

func (s *Shop) pickCategory(r *rand.Rand) string {
	x := r.Float64()
	for i, c := range s.catZipf {
		if x <= c {
			return s.Categories[i]
		}
	}
	return s.Categories[len(s.Categories)-1]
}

// pickProduct draws a product by Zipf popularity, within cat if given.
func (s *Shop) pickProduct(r *rand.Rand, cat string) int {
	if cat == "" {
		cat = s.pickCategory(r)
	}
	idx := s.byCategory[cat]
	z := rand.NewZipf(r, 1.15, 2, uint64(len(idx)-1))
	return idx[z.Uint64()]
}

// positionCTR is click-through at a 1-based list position: decays with
// position, with a small bump at the start of the second row.
func positionCTR(pos int) float64 {
	ctr := 0.12 / math.Pow(float64(pos), 0.7)
	if pos == 5 {
		ctr *= 1.15
	}
	return ctr
}

func (s *Shop) homeSlots(r *rand.Rand, ss *Session, t *time.Time, sh Shopper) (int, bool) {
	slots := []string{"home-hero-1", "home-hero-2", "home-hero-3", "home-row-1", "home-row-2", "home-row-3", "home-row-4"}
	for _, slot := range slots {
		ss.add(s, r, t, Event{Type: "slot_impression", URL: s.cfg.BaseURL + "/", Slot: slot, Variant: sh.Variant})
	}
	for i, slot := range slots {
		ctr := positionCTR(i+1) * 0.8
		if strings.HasPrefix(slot, "home-hero") && sh.Variant == "B" {
			ctr *= 1.35 // the redesigned hero really works better
		}
		if r.Float64() < ctr {
			p := s.pickProduct(r, "")
			ss.add(s, r, t, Event{Type: "product_click", URL: s.cfg.BaseURL + "/", Slot: slot, Variant: sh.Variant,
				Product: &EventProduct{ID: s.Products[p].ID, Category: s.Products[p].Category, Position: i + 1, List: "home"}})
			return p, true
		}
	}
	return 0, false
}

func (s *Shop) listing(r *rand.Rand, ss *Session, t *time.Time, sh Shopper, cat, list string) (int, bool) {
	n := min(24, len(s.byCategory[cat]))
	shown := make([]EventProduct, 0, n)
	ids := make([]int, 0, n)
	seen := map[int]bool{}
	for len(ids) < n {
		p := s.pickProduct(r, cat)
		if seen[p] && len(seen) < len(s.byCategory[cat]) {
			continue
		}
		seen[p] = true
		ids = append(ids, p)
		shown = append(shown, EventProduct{ID: s.Products[p].ID, Position: len(ids)})
	}
	ss.add(s, r, t, Event{Type: "product_list_view", URL: s.cfg.BaseURL + "/category/" + cat, Variant: sh.Variant,
		Product: &EventProduct{Category: cat, List: list}, Products: shown})
	// The list is the page's layout slot: shown once, clicked at most once.
	ss.add(s, r, t, Event{Type: "slot_impression", URL: s.cfg.BaseURL + "/category/" + cat, Slot: "list", Variant: sh.Variant})
	for pos := 1; pos <= n; pos++ {
		if r.Float64() < positionCTR(pos) {
			p := ids[pos-1]
			ss.add(s, r, t, Event{Type: "product_click", URL: s.cfg.BaseURL + "/category/" + cat, Slot: "list", Variant: sh.Variant,
				Product: &EventProduct{ID: s.Products[p].ID, Category: cat, Position: pos, List: list, Price: s.Products[p].Price}})
			return p, true
		}
	}
	return 0, false
}

// browse shows product p's page, then follows the page's recommendation
// slots to related products now and then (at most three in a row): most
// product views come from other product pages.
func (s *Shop) browse(r *rand.Rand, ss *Session, t *time.Time, sh Shopper, p int, from string, cart *[]Product) string {
	cur := s.productPage(r, ss, t, sh, p, from, cart)
	for range 3 {
		for _, slot := range []string{"recommendations", "also-bought"} {
			ss.add(s, r, t, Event{Type: "slot_impression", URL: cur, Slot: slot, Variant: sh.Variant})
		}
		var slot string
		switch x := r.Float64(); {
		case x < 0.35:
			slot = "recommendations"
		case x < 0.5:
			slot = "also-bought"
		default:
			return cur
		}
		next := s.pickProduct(r, s.Products[p].Category)
		ss.add(s, r, t, Event{Type: "product_click", URL: cur, Slot: slot, Variant: sh.Variant,
			Product: &EventProduct{ID: s.Products[next].ID, Category: s.Products[next].Category, Price: s.Products[next].Price}})
		p = next
		cur = s.productPage(r, ss, t, sh, p, cur, cart)
	}
	return cur
}

func (s *Shop) productPage(r *rand.Rand, ss *Session, t *time.Time, sh Shopper, p int, from string, cart *[]Product) string {
	prod := s.Products[p]
	u := s.cfg.BaseURL + "/product/" + strings.ToLower(prod.ID) + "-" + strings.ReplaceAll(prod.Name, " ", "-")
	ss.add(s, r, t, Event{Type: "pageview", URL: u, Referrer: from, Variant: sh.Variant})
	ss.add(s, r, t, Event{Type: "product_view", URL: u, Variant: sh.Variant, Product: &EventProduct{ID: prod.ID, Category: prod.Category, Price: prod.Price}})
	if r.Float64() < cartRate[sh.Device] {
		ss.add(s, r, t, Event{Type: "add_to_cart", URL: u, Variant: sh.Variant, Product: &EventProduct{ID: prod.ID, Category: prod.Category, Price: prod.Price}})
		*cart = append(*cart, prod)
		if r.Float64() < 0.08 {
			ss.add(s, r, t, Event{Type: "remove_from_cart", URL: u, Variant: sh.Variant, Product: &EventProduct{ID: prod.ID, Category: prod.Category, Price: prod.Price}})
			*cart = (*cart)[:len(*cart)-1]
		}
	}
	return u
}

func (s *Shop) checkout(r *rand.Rand, ss *Session, t *time.Time, sh Shopper, cart []Product, from string) {
	if len(cart) == 0 {
		return
	}
	for step, keep := range checkoutStepKeep[sh.Device] {
		u := s.cfg.BaseURL + "/checkout/" + fmt.Sprint(step+1)
		ss.add(s, r, t, Event{Type: "pageview", URL: u, Referrer: from, Variant: sh.Variant})
		ss.add(s, r, t, Event{Type: "checkout_step", URL: u, Step: step + 1, Variant: sh.Variant})
		from = u
		if r.Float64() > keep {
			return
		}
	}
	value := 0.0
	var items []EventProduct
	for _, p := range cart {
		value += p.Price
		items = append(items, EventProduct{ID: p.ID, Category: p.Category, Price: p.Price})
	}
	ss.add(s, r, t, Event{Type: "purchase", URL: s.cfg.BaseURL + "/checkout/done", Variant: sh.Variant,
		Order: &EventOrder{Value: math.Round(value*100) / 100, Currency: "EUR", Items: len(cart)}, Products: items})
}

// zeroResultTerms are searches the shop has nothing for: demand the shelves miss.
var zeroResultTerms = []string{"rain poncho", "kids wellies", "vegan leather jacket", "heated gloves", "bamboo socks", "maternity jeans"}

func (s *Shop) searchTerm(r *rand.Rand) (string, int) {
	if r.Float64() < 0.12 {
		return zeroResultTerms[r.IntN(len(zeroResultTerms))], 0
	}
	p := s.Products[s.pickProduct(r, "")]
	words := strings.Fields(p.Name)
	switch r.IntN(3) {
	case 0:
		return p.Category, 20 + r.IntN(200)
	case 1:
		return words[len(words)-2] + " " + p.Category, 5 + r.IntN(40)
	}
	return strings.Join(words[1:], " "), 1 + r.IntN(10)
}

// WriteCatalog writes the shop's catalog as the CSV herd's --catalog reads:
// product_id, name, category, price.
func (s *Shop) WriteCatalog(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"product_id", "name", "category", "price"}); err != nil {
		return err
	}
	for _, p := range s.Products {
		if err := cw.Write([]string{p.ID, p.Name, p.Category, strconv.FormatFloat(p.Price, 'f', 2, 64)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// singular names one item of a category: "dresses" → "dress", "scarves"
// → "scarf"; names that are no plural of one ("knitwear") stay.
func singular(cat string) string {
	switch {
	case strings.HasSuffix(cat, "glasses"), strings.HasSuffix(cat, "wear"), strings.HasSuffix(cat, "trousers"):
		return cat
	case strings.HasSuffix(cat, "ves"):
		return strings.TrimSuffix(cat, "ves") + "f"
	case strings.HasSuffix(cat, "sses"), strings.HasSuffix(cat, "ches"), strings.HasSuffix(cat, "shes"):
		return strings.TrimSuffix(cat, "es")
	}
	return strings.TrimSuffix(cat, "s")
}
