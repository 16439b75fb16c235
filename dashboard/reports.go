package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/privacy"
)

// DownloadRecorder records who downloaded what (herd.downloads, written by
// a user that may insert; the dashboard's reader may not).
type DownloadRecorder interface {
	RecordDownload(ctx context.Context, user, role, what string) error
}

// record notes a download; a download that cannot be recorded is refused.
func (d *Dashboard) record(c *fiber.Ctx, what string) error {
	if d.cfg.Downloads == nil {
		return fiber.NewError(fiber.StatusServiceUnavailable, "downloads cannot be recorded, so none are served")
	}
	s := sessionOf(c)
	if err := d.cfg.Downloads.RecordDownload(c.UserContext(), s.user.Name, string(s.user.Role), what); err != nil {
		return fmt.Errorf("record download: %w", err)
	}
	return nil
}

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
	var now []nowRow
	for _, kind := range ReportKinds {
		r, _ := ReportPeriod(kind, d.now())
		row := nowRow{Kind: kind, Period: r.From.Format(time.DateOnly) + " to " + r.To.Add(-24*time.Hour).Format(time.DateOnly)}
		for _, format := range ReportFormats {
			row.Links = append(row.Links, reportLink{format, "/reports/download?site=" + f.site + "&kind=" + kind + "&format=" + format})
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
	kind, format := c.Query("kind"), c.Query("format")
	period, err := ReportPeriod(kind, d.now())
	if err != nil {
		return fiber.NewError(fiber.StatusBadRequest, err.Error())
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
	var buf bytes.Buffer
	if err := rep.Write(&buf, format); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), ReportFileName(site, kind, period, format), nil
}

// ReportFileName is the archive and download name of a report.
func ReportFileName(site, kind string, period Range, format string) string {
	return fmt.Sprintf("herd-%s-%s-%s.%s", site, kind, period.From.Format(time.DateOnly), format)
}

var archiveName = regexp.MustCompile(`^herd-[a-z0-9_-]+-(weekly|monthly)-\d{4}-\d{2}-\d{2}\.(csv|xlsx|parquet)$`)

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

// admin shows the download audit.
func (d *Dashboard) admin(c *fiber.Ctx) error {
	f, sites, err := d.request(c)
	if err != nil {
		return err
	}
	rows, _, err := d.store.rows(c.UserContext(), "SELECT toString(at), user, role, what FROM "+d.store.db+".downloads ORDER BY at DESC LIMIT 500")
	if err != nil {
		return err
	}
	return render(c, "admin", struct {
		page
		Downloads [][]string
	}{page: d.page(c, "Downloads", f, sites), Downloads: rows})
}

// DownloadLog records downloads in ClickHouse through a user that may insert
// into the published database.
type DownloadLog struct {
	Writer   *clickhouse.Client
	Database string
}

// RecordDownload inserts one row into downloads.
func (l *DownloadLog) RecordDownload(ctx context.Context, user, role, what string) error {
	blk := proto.NewBlock()
	for _, c := range [][2]string{{"at", "DateTime"}, {"user", "String"}, {"role", "String"}, {"what", "String"}} {
		if err := blk.AddColumn(c[0], column.Type(c[1])); err != nil {
			return err
		}
	}
	if len(what) > 500 {
		what = what[:500]
	}
	if err := blk.Append(time.Now().UTC().Truncate(time.Second), user, role, what); err != nil {
		return err
	}
	return l.Writer.Insert(ctx, l.Database+".downloads", blk)
}

// WriteScheduled writes every format of the report of kind due as of now
// into dir, for each site, skipping files that exist. The scheduler in herd
// serve calls it; it returns the files written.
func WriteScheduled(ctx context.Context, q Querier, db string, sites []string, kind string, now time.Time, dir string, st privacy.Statement) ([]string, error) {
	period, err := ReportPeriod(kind, now)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	var written []string
	for _, site := range sites {
		rep, err := BuildReport(ctx, q, db, site, kind, period, st)
		if err != nil {
			return written, err
		}
		for _, format := range ReportFormats {
			path := filepath.Join(dir, ReportFileName(site, kind, period, format))
			if _, err := os.Stat(path); err == nil {
				continue
			}
			var buf bytes.Buffer
			if err := rep.Write(&buf, format); err != nil {
				return written, err
			}
			tmp := path + ".tmp"
			if err := os.WriteFile(tmp, buf.Bytes(), 0o640); err != nil {
				return written, err
			}
			if err := os.Rename(tmp, path); err != nil {
				return written, err
			}
			written = append(written, path)
		}
	}
	return written, nil
}

// Sites lists the sites with published data, for the report scheduler.
func Sites(ctx context.Context, q Querier, db string) ([]string, error) {
	return (&store{q: q, db: db}).sites(ctx)
}
