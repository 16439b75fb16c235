package dashboard

import (
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// request reads a page or API request's filters against the sites that
// have published data.
func (d *Dashboard) request(c *fiber.Ctx) (filters, []string, error) {
	sites, err := d.sites(c.UserContext(), c.Query("site"))
	if err != nil {
		return filters{}, nil, err
	}
	f, err := d.filters(c, sites)
	return f, sites, err
}

func (d *Dashboard) filters(c *fiber.Ctx, sites []string) (filters, error) {
	def := defaultPreset
	if strings.HasPrefix(c.Path(), "/products") || strings.HasPrefix(c.Path(), "/api/v1/products") {
		def = productsPreset
	}
	f := filters{site: c.Query("site"), preset: c.Query("range"), device: c.Query("device"), variant: c.Query("variant"), source: c.Query("source")}
	switch {
	case f.site == "" && len(sites) > 0:
		f.site = sites[0]
	case f.site != "" && !slices.Contains(sites, f.site):
		// Only sites with published data exist here: anything else would
		// reach report names and headers as sent.
		return f, fiber.NewError(fiber.StatusBadRequest, "site: not a site with published data")
	}
	if f.device != "" && !slices.Contains(devices, f.device) {
		return f, fiber.NewError(fiber.StatusBadRequest, "device: one of "+strings.Join(devices, ", "))
	}
	if f.variant != "" && !variantName.MatchString(f.variant) {
		return f, fiber.NewError(fiber.StatusBadRequest, "variant: letters, digits, '.', '_' or '-', at most 40")
	}
	if f.source != "" && !slices.Contains(sources, f.source) {
		return f, fiber.NewError(fiber.StatusBadRequest, "source: one of "+strings.Join(sources, ", "))
	}
	// Dates without a preset are a custom range: a link may carry from and
	// to alone.
	if f.preset == "" && (c.Query("from") != "" || c.Query("to") != "") {
		f.preset = "custom"
	}
	f.chosen = f.preset != ""
	if f.preset == "" {
		f.preset = def
	}
	r, err := presetRange(f.preset, d.now(), c.Query("from"), c.Query("to"))
	f.r = r
	return f, err
}

// defaultPreset: the last four whole weeks, the period with most published
// cells that still shows this month's changes. Products default to the last
// full month: most products reach the threshold only over a month.
const (
	defaultPreset  = "4w"
	productsPreset = "month"
)
