package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/gofiber/fiber/v2"
)

type reportLink struct{ Format, URL string }

// reports lists what can be downloaded now and the scheduled archive.
func (d *Dashboard) reports(c *fiber.Ctx) error {
	f, sites, err := d.request(c)
	if err != nil {
		return err
	}
	type nowRow struct {
		Kind, Period string
		Links        []reportLink
	}
	num := d.numbers(c)
	span := func(r Range) string { return num.Date(r.From) + " – " + num.Date(r.To.AddDate(0, 0, -1)) }
	// First the period chosen above (any the dashboard shows), then the
	// scheduled kinds as of today.
	now := []nowRow{{Kind: "the period above", Period: span(f.r)}}
	for _, format := range ReportFormats {
		now[0].Links = append(now[0].Links, reportLink{format, "/reports/download" + f.query() + "&kind=custom&format=" + format})
	}
	for _, kind := range ReportKinds {
		r, _ := ReportPeriod(kind, d.now())
		row := nowRow{Kind: kind, Period: span(r)}
		for _, format := range ReportFormats {
			row.Links = append(row.Links, reportLink{format, "/reports/download?site=" + url.QueryEscape(f.site) + "&kind=" + kind + "&format=" + format})
		}
		now = append(now, row)
	}
	type file struct{ Name, Size, When string }
	var archive []file
	if d.cfg.ReportDir != "" {
		entries, _ := os.ReadDir(d.cfg.ReportDir)
		for _, e := range entries {
			if info, err := e.Info(); err == nil && archiveName.MatchString(e.Name()) {
				archive = append(archive, file{e.Name(), fmt.Sprintf("%.1f KiB", float64(info.Size())/1024), info.ModTime().UTC().Format(time.DateTime)})
			}
		}
		sort.Slice(archive, func(i, j int) bool { return archive[i].Name > archive[j].Name })
	}
	return render(c, "reports", struct {
		page
		Now     []nowRow
		Archive []file
	}{page: d.page(c, "Reports", f, sites), Now: now, Archive: archive})
}

// reportDownload builds a report now and sends it.
func (d *Dashboard) reportDownload(c *fiber.Ctx) error {
	f, _, err := d.request(c)
	if err != nil {
		return err
	}
	kind, format := c.Query("kind", "custom"), c.Query("format")
	// custom: the period of the request's filters, as the pages read it.
	period := f.r
	if kind != "custom" {
		if period, err = ReportPeriod(kind, d.now()); err != nil {
			return fiber.NewError(fiber.StatusBadRequest, err.Error()+" or custom")
		}
	}
	if !slices.Contains(ReportFormats, format) {
		return fiber.NewError(fiber.StatusBadRequest, "format: csv, xlsx or parquet")
	}
	data, name, err := d.buildReport(c.UserContext(), f.site, kind, format, period)
	if err != nil {
		return err
	}
	if err := d.record(c, "report "+name); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	c.Type(format)
	return c.Send(data)
}

func (d *Dashboard) buildReport(ctx context.Context, site, kind, format string, period Range) ([]byte, string, error) {
	var st = d.statement(ctx)
	rep, err := BuildReport(ctx, d.store.q, d.store.db, site, kind, period, st)
	if err != nil {
		return nil, "", err
	}
	rep.Currency = d.cfg.Currency
	var buf bytes.Buffer
	if err := rep.Write(&buf, format); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), ReportFileName(site, kind, period, format), nil
}

// reportArchived serves a scheduled report from the archive.
func (d *Dashboard) reportArchived(c *fiber.Ctx) error {
	name := c.Params("name")
	if d.cfg.ReportDir == "" || !archiveName.MatchString(name) {
		return fiber.NewError(fiber.StatusNotFound, "no such report")
	}
	data, err := os.ReadFile(filepath.Join(d.cfg.ReportDir, name))
	if err != nil {
		return fiber.NewError(fiber.StatusNotFound, "no such report")
	}
	if err := d.record(c, "archived report "+name); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	c.Type(filepath.Ext(name)[1:])
	return c.Send(data)
}
