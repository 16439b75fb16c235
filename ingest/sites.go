package ingest

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// DemoSite is the site herd serves when no site configuration is given: it
// accepts events from any origin and any Segment write key, and history
// imports. The demo, `herd gen` and tests rely on it.
const DemoSite = "demo"

// Site is one shop herd collects for.
type Site struct {
	Name string `yaml:"name"`
	// Domains are the shop's own registrable domains: referrers from them
	// count as internal.
	Domains []string `yaml:"domains"`
	// Origins may send events from browsers (CORS); "*" allows any.
	Origins []string `yaml:"origins"`
	// WriteKeys authenticate server-side Segment senders.
	WriteKeys []string `yaml:"write_keys"`
	// AllowImport lets `herd gen --import` replay history with past
	// timestamps. Production sites leave it off.
	AllowImport bool `yaml:"allow_import"`
	// Identifiers are patterns (RE2, whole value) the shop's identifier
	// fields follow: product_id, category, list, variant. A value that does
	// not match is stored as "unlisted", not as sent: a name typed into a
	// field that should hold a SKU never reaches storage. Fields without a
	// pattern are only scrubbed.
	Identifiers map[string]string `yaml:"identifiers"`
	// PlausibleEvents maps the shop's Plausible goal names onto herd's
	// event types ({"Basket": "add_to_cart"}); common names are known.
	PlausibleEvents map[string]string `yaml:"plausible_events"`

	patterns map[string]*regexp.Regexp
}

// identifierFields are the fields Identifiers may constrain.
var identifierFields = []string{"product_id", "category", "list", "variant", "utm_source", "utm_medium", "utm_campaign"}

// oneToken is what product_id, list and variant hold when the site
// declares no pattern: an identifier is one token (a SKU, a list's name, a
// variant's), so a value with spaces or commas ("Jane Doe", "12 High
// Street, Leeds") is free text that was sent to the wrong field.
var oneToken = regexp.MustCompile(`^[^\s,;]{1,128}$`)

// tokenFields are the fields held to oneToken without a declared pattern.
var tokenFields = []string{"product_id", "list", "variant"}

// ImportAllowed reports whether a request may import history for site:
// the site allows imports and, once sites are configured, the request
// carries one of its write keys. The configuration-free demo site takes
// imports only when the operator opened it to them (open: herd demo, the
// tests, --allow-imports), and then from anyone.
func (s *Sites) ImportAllowed(site *Site, key string, open bool) bool {
	if !site.AllowImport {
		return false
	}
	if s.open {
		return open
	}
	return key != "" && slices.Contains(site.WriteKeys, key)
}

// Unlisted replaces an identifier that is not the shop's.
const Unlisted = "unlisted"

// identifier returns v if it is empty or fits the site's pattern for
// field (or, without one, is one token where the field holds tokens), else
// Unlisted, counted in unlisted.
func (site *Site) identifier(field, v string, unlisted *fieldCounts) string {
	re := site.patterns[field]
	if re == nil && slices.Contains(tokenFields, field) {
		re = oneToken
	}
	if v == "" || re == nil || re.MatchString(v) {
		return v
	}
	unlisted.add(field)
	return Unlisted
}

// fieldCounts counts by field name; the zero value is ready.
type fieldCounts struct {
	mu sync.Mutex
	n  map[string]int64
}

func (c *fieldCounts) add(field string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int64{}
	}
	c.n[field]++
	c.mu.Unlock()
}

// snapshot is a copy of the counts.
func (c *fieldCounts) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

func (site *Site) compile() error {
	for name, t := range site.PlausibleEvents {
		if _, ok := ParseEventType(t); !ok {
			return fmt.Errorf("plausible_events: %q maps to %q, not an event type", name, t)
		}
	}
	site.patterns = map[string]*regexp.Regexp{}
	for field, pat := range site.Identifiers {
		if !slices.Contains(identifierFields, field) {
			return fmt.Errorf("identifiers: %q is not one of %v", field, identifierFields)
		}
		re, err := regexp.Compile("^(?:" + pat + ")$")
		if err != nil {
			return fmt.Errorf("identifiers: %s: %w", field, err)
		}
		site.patterns[field] = re
	}
	return nil
}

// Sites is the set of configured sites.
type Sites struct {
	list  []*Site
	byKey map[string]*Site
	open  bool // no configuration: the demo site takes everything
}

// DefaultSites is the configuration-free setup: only the demo site.
func DefaultSites() *Sites {
	return &Sites{list: []*Site{{Name: DemoSite, Origins: []string{"*"}, AllowImport: true}}, byKey: map[string]*Site{}, open: true}
}

// LoadSites reads a YAML file:
//
//	sites:
//	  - name: shop
//	    domains: [shop.example]
//	    origins: [https://shop.example, https://www.shop.example]
//	    write_keys: [k3y...]
//	    identifiers: {product_id: 'P[0-9]{5}', variant: '[AB]'}
func LoadSites(path string) (*Sites, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sites: %w", err)
	}
	var doc struct {
		Sites []*Site `yaml:"sites"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("sites %s: %w", path, err)
	}
	if len(doc.Sites) == 0 {
		return nil, fmt.Errorf("sites %s: no sites listed", path)
	}
	s := &Sites{byKey: map[string]*Site{}}
	names := map[string]bool{}
	for i, site := range doc.Sites {
		if site.Name == "" || !validSiteName(site.Name) {
			return nil, fmt.Errorf("sites %s: site %d: name %q must be 1-64 of a-z 0-9 _ -", path, i, site.Name)
		}
		if names[site.Name] {
			return nil, fmt.Errorf("sites %s: site %q listed twice", path, site.Name)
		}
		names[site.Name] = true
		if err := site.compile(); err != nil {
			return nil, fmt.Errorf("sites %s: site %q: %w", path, site.Name, err)
		}
		for _, o := range site.Origins {
			if o == "*" {
				continue
			}
			if u, err := url.Parse(o); err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" {
				return nil, fmt.Errorf("sites %s: site %q: origin %q must look like https://host[:port]", path, site.Name, o)
			}
		}
		for _, k := range site.WriteKeys {
			if len(k) < 16 {
				return nil, fmt.Errorf("sites %s: site %q: write keys must have at least 16 characters", path, site.Name)
			}
			if other, ok := s.byKey[k]; ok {
				return nil, fmt.Errorf("sites %s: write key shared by %q and %q", path, other.Name, site.Name)
			}
			s.byKey[k] = site
		}
		s.list = append(s.list, site)
	}
	return s, nil
}

func validSiteName(n string) bool {
	if len(n) > 64 {
		return false
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ErrUnknownSite is returned for a site name or write key herd does not serve.
var ErrUnknownSite = errors.New("unknown site")

// Named returns the site called name; "" means the demo site when it exists.
func (s *Sites) Named(name string) (*Site, error) {
	if name == "" {
		name = DemoSite
	}
	for _, site := range s.list {
		if site.Name == name {
			return site, nil
		}
	}
	return nil, ErrUnknownSite
}

// ByDomain returns the site that lists domain (or a parent of it) among its
// domains. Without configuration every domain belongs to the demo site.
func (s *Sites) ByDomain(domain string) (*Site, error) {
	domain = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	for _, site := range s.list {
		for _, d := range site.Domains {
			if domain == d || strings.HasSuffix(domain, "."+d) {
				return site, nil
			}
		}
	}
	if s.open {
		return s.list[0], nil
	}
	return nil, ErrUnknownSite
}

// ByWriteKey returns the site a Segment write key belongs to. Without
// configuration every key belongs to the demo site.
func (s *Sites) ByWriteKey(key string) (*Site, error) {
	if site, ok := s.byKey[key]; ok {
		return site, nil
	}
	if s.open {
		return s.list[0], nil
	}
	return nil, ErrUnknownSite
}

// AllowsOrigin reports whether a browser page on origin may send events for site.
func (site *Site) AllowsOrigin(origin string) bool {
	return slices.Contains(site.Origins, "*") || slices.Contains(site.Origins, origin)
}

// All lists the sites.
func (s *Sites) All() []*Site { return s.list }
