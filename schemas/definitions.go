package schemas

import (
	"bytes"
	_ "embed"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed funnels.yaml
var funnelsYAML []byte

//go:embed layout.yaml
var layoutYAML []byte

// Funnel is an ordered list of steps a visitor-day may reach within Window.
type Funnel struct {
	Name   string        `yaml:"name" json:"name"`
	Title  string        `yaml:"title" json:"title"`
	Window time.Duration `yaml:"window" json:"window"`
	Steps  []FunnelStep  `yaml:"steps" json:"steps"`
}

// FunnelStep matches events by type and, when set, checkout step number,
// page type or slot.
type FunnelStep struct {
	Title    string `yaml:"title" json:"title"`
	Type     string `yaml:"type" json:"type"`
	Step     int    `yaml:"step,omitempty" json:"step,omitempty"`
	PageType string `yaml:"page_type,omitempty" json:"page_type,omitempty"`
	Slot     string `yaml:"slot,omitempty" json:"slot,omitempty"`
}

// Page is one page type's grid of layout slots.
type Page struct {
	PageType string `yaml:"page_type" json:"page_type"`
	Columns  int    `yaml:"columns" json:"columns"`
	Slots    []Slot `yaml:"slots" json:"slots"`
}

// Slot is a place on a page grid; Width is 1 when unset.
type Slot struct {
	Slot  string `yaml:"slot" json:"slot"`
	Row   int    `yaml:"row" json:"row"`
	Col   int    `yaml:"col" json:"col"`
	Width int    `yaml:"width,omitempty" json:"width,omitempty"`
}

// EventTypes are the event types ingest stores (docs/api.md).
var EventTypes = []string{"pageview", "product_list_view", "product_view", "product_click", "add_to_cart",
	"remove_from_cart", "checkout_step", "purchase", "search", "slot_impression"}

// Funnels returns the funnels in funnels.yaml, validated.
func Funnels() ([]Funnel, error) {
	var doc struct {
		Funnels []Funnel `yaml:"funnels"`
	}
	if err := strictYAML(funnelsYAML, &doc); err != nil {
		return nil, fmt.Errorf("funnels.yaml: %w", err)
	}
	return doc.Funnels, ValidateFunnels(doc.Funnels)
}

// ValidateFunnels checks names, windows and step types.
func ValidateFunnels(fs []Funnel) error {
	seen := map[string]bool{}
	for i, f := range fs {
		if !validName(f.Name) || seen[f.Name] {
			return fmt.Errorf("funnel %d: name %q must be unique, [a-z0-9_-], 1 to 40 characters", i, f.Name)
		}
		seen[f.Name] = true
		if f.Window <= 0 || f.Window > 24*time.Hour {
			return fmt.Errorf("funnel %s: window %v must be within (0, 24h]", f.Name, f.Window)
		}
		if len(f.Steps) < 2 || len(f.Steps) > 32 {
			return fmt.Errorf("funnel %s: %d steps, need 2 to 32", f.Name, len(f.Steps))
		}
		for j, s := range f.Steps {
			if !known(s.Type, EventTypes) {
				return fmt.Errorf("funnel %s step %d: unknown event type %q", f.Name, j+1, s.Type)
			}
			if s.Step < 0 || s.Step > 255 {
				return fmt.Errorf("funnel %s step %d: checkout step %d out of range", f.Name, j+1, s.Step)
			}
		}
	}
	return nil
}

// Layout returns the page grids in layout.yaml, validated.
func Layout() ([]Page, error) {
	var doc struct {
		Pages []Page `yaml:"pages"`
	}
	if err := strictYAML(layoutYAML, &doc); err != nil {
		return nil, fmt.Errorf("layout.yaml: %w", err)
	}
	return doc.Pages, ValidateLayout(doc.Pages)
}

// ValidateLayout checks that slots fit their grid and are named once per page.
func ValidateLayout(pages []Page) error {
	for _, p := range pages {
		if !validName(p.PageType) || p.Columns < 1 || p.Columns > 12 {
			return fmt.Errorf("page %q: needs a name and 1 to 12 columns", p.PageType)
		}
		seen := map[string]bool{}
		for i := range p.Slots {
			s := &p.Slots[i]
			if s.Width == 0 {
				s.Width = 1
			}
			if !validName(s.Slot) || seen[s.Slot] {
				return fmt.Errorf("page %s: slot %q must be unique and named [a-z0-9_-]", p.PageType, s.Slot)
			}
			seen[s.Slot] = true
			if s.Row < 1 || s.Col < 1 || s.Col+s.Width-1 > p.Columns {
				return fmt.Errorf("page %s slot %s: row %d col %d width %d outside a %d-column grid", p.PageType, s.Slot, s.Row, s.Col, s.Width, p.Columns)
			}
		}
	}
	return nil
}

func strictYAML(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 40 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func known(s string, list []string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

//go:embed purposes.yaml
var purposesYAML []byte

// Purpose is one of the privacy policy's purposes; Herd says whether herd
// serves it.
type Purpose struct {
	ID     string `yaml:"id" json:"id"`
	Policy string `yaml:"policy" json:"policy"`
	Herd   bool   `yaml:"herd" json:"herd"`
}

// Column is one stored column's data category and allowed purposes.
type Column struct {
	Category string   `yaml:"category" json:"category"`
	Purposes []string `yaml:"purposes" json:"purposes"`
	Note     string   `yaml:"note,omitempty" json:"note,omitempty"`
}

// Table is one stored table of the inventory. Retention is raw (dropped
// after the raw retention), partial (dropped once the weeks and months of its
// day are published, within 40 days), published or audit.
type Table struct {
	Retention string            `yaml:"retention" json:"retention"`
	Columns   map[string]Column `yaml:"columns" json:"columns"`
}

// Inventory is the policy as code: purposes, data categories, and every
// stored column keyed by "{raw}.table" or "{herd}.table".
type Inventory struct {
	Purposes   []Purpose         `yaml:"purposes" json:"purposes"`
	Categories map[string]string `yaml:"categories" json:"categories"`
	Tables     map[string]Table  `yaml:"tables" json:"tables"`
}

// Purposes returns the inventory in purposes.yaml, validated: every column
// names a known category and only purposes herd serves.
func Purposes() (*Inventory, error) {
	var inv Inventory
	if err := strictYAML(purposesYAML, &inv); err != nil {
		return nil, fmt.Errorf("purposes.yaml: %w", err)
	}
	served := map[string]bool{}
	for _, p := range inv.Purposes {
		served[p.ID] = p.Herd
	}
	if len(inv.Purposes) != 6 {
		return nil, fmt.Errorf("purposes.yaml: %d purposes, the policy has 6", len(inv.Purposes))
	}
	for name, t := range inv.Tables {
		for col, c := range t.Columns {
			if _, ok := inv.Categories[c.Category]; !ok {
				return nil, fmt.Errorf("purposes.yaml: %s.%s: unknown category %q", name, col, c.Category)
			}
			for _, p := range c.Purposes {
				if !served[p] {
					return nil, fmt.Errorf("purposes.yaml: %s.%s: purpose %q is not one herd serves", name, col, p)
				}
			}
		}
	}
	return &inv, nil
}

// Allows reports whether column col of table (as "{raw}.events") may be used
// for purpose.
func (inv *Inventory) Allows(table, col, purpose string) bool {
	c, ok := inv.Tables[table].Columns[col]
	return ok && known(purpose, c.Purposes)
}
