package dashboard

import "github.com/gofiber/fiber/v2"

// admin shows the download audit.
func (d *Dashboard) admin(c *fiber.Ctx) error {
	f, sites, err := d.request(c)
	if err != nil {
		return err
	}
	rows, err := d.store.downloads(c.UserContext(), 500)
	if err != nil {
		return err
	}
	return render(c, "admin", struct {
		page
		Downloads [][]string
	}{page: d.page(c, "Downloads", f, sites), Downloads: rows})
}
