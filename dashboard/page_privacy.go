package dashboard

import (
	"sort"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/schemas"
)

func (d *Dashboard) privacy(c *fiber.Ctx) error {
	f, sites, err := d.request(c)
	if err != nil {
		return err
	}
	inv, err := schemas.Purposes()
	if err != nil {
		return err
	}
	type col struct{ Table, Column, Category, Purposes, Note string }
	var cols []col
	for table, t := range inv.Tables {
		for name, cl := range t.Columns {
			cols = append(cols, col{table, name, cl.Category, strings.Join(cl.Purposes, ", "), cl.Note})
		}
	}
	sort.Slice(cols, func(i, j int) bool {
		if cols[i].Table != cols[j].Table {
			return cols[i].Table < cols[j].Table
		}
		return cols[i].Column < cols[j].Column
	})
	data := struct {
		page
		Statement               any
		Inventory               *schemas.Inventory
		Columns                 []col
		TwoDevices, Week, Month string // a frequent shopper's guarantee, by group privacy
	}{page: d.page(c, "Privacy", f, sites), Inventory: inv, Columns: cols}
	if d.cfg.Statement != nil {
		st, err := d.statementNow(c.UserContext())
		if err != nil {
			return err
		}
		data.Statement = st
		eps := func(days int) string { return "ε ≈ " + strconv.FormatFloat(float64(days)*st.Epsilon, 'f', -1, 64) }
		data.TwoDevices, data.Week, data.Month = eps(2), eps(7), eps(30)
	}
	return render(c, "privacy", data)
}
