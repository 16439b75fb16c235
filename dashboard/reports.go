package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/mailer"
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
	var buf bytes.Buffer
	if err := rep.Write(&buf, format); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), ReportFileName(site, kind, period, format), nil
}

// ReportFileName is the archive and download name of a report; a custom
// period's name has both ends.
func ReportFileName(site, kind string, period Range, format string) string {
	if kind == "custom" {
		return fmt.Sprintf("herd-%s-%s-to-%s.%s", site, period.From.Format(time.DateOnly), period.To.AddDate(0, 0, -1).Format(time.DateOnly), format)
	}
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
	rows, err := d.store.downloads(c.UserContext(), 500)
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

// publishWait is how long after its period a scheduled report waits for
// days still unpublished; after it, the report is written partial (and
// says so in its title).
const publishWait = 26 * time.Hour

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
		// The hourly catch-up finds most reports written: build only what
		// is missing.
		var missing []string
		for _, format := range ReportFormats {
			if _, err := os.Stat(filepath.Join(dir, ReportFileName(site, kind, period, format))); err != nil {
				missing = append(missing, format)
			}
		}
		if len(missing) == 0 {
			continue
		}
		rep, err := BuildReport(ctx, q, db, site, kind, period, st)
		if err != nil {
			return written, err
		}
		if rep.Partial() != "" && now.Before(period.To.Add(publishWait)) {
			continue // the last days may still be on their way: try later
		}
		for _, format := range missing {
			path := filepath.Join(dir, ReportFileName(site, kind, period, format))
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

// reportTypes are the media types of the report formats.
var reportTypes = map[string]string{
	".csv": "text/csv; charset=utf-8", ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".parquet": "application/vnd.apache.parquet",
}

// Mailer delivers one message with files attached; *mailer.Config is one.
type Mailer interface {
	Send(ctx context.Context, subject, body string, files []mailer.Attachment) error
}

// MailScheduled e-mails every archived report in dir not yet sent: one
// message per site and period with each of its formats attached. A report
// sent is marked with a ".sent" file beside it, so a relay that was down
// gets the report on the next run and nobody gets it twice. It returns the
// reports sent.
func MailScheduled(ctx context.Context, m Mailer, dir string, st privacy.Statement) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	reports := map[string][]string{} // report name → its files
	sent := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".sent"):
			sent[strings.TrimSuffix(name, ".sent")] = true
		case archiveName.MatchString(name):
			base := strings.TrimSuffix(name, filepath.Ext(name))
			reports[base] = append(reports[base], name)
		}
	}
	var names []string
	for base := range reports {
		if !sent[base] {
			names = append(names, base)
		}
	}
	sort.Strings(names)
	var done []string
	for _, base := range names {
		var files []mailer.Attachment
		for _, name := range reports[base] {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				return done, err
			}
			files = append(files, mailer.Attachment{Name: name, ContentType: reportTypes[filepath.Ext(name)], Data: data})
		}
		sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
		subject := "herd report " + strings.TrimPrefix(base, "herd-")
		body := "The scheduled herd report " + base + " is attached as " + strconv.Itoa(len(files)) + " files (CSV, XLSX, Parquet).\r\n\r\n" +
			"Every figure in it was published under herd's rules: " + st.Line() + "\r\n"
		if err := m.Send(ctx, subject, body, files); err != nil {
			return done, fmt.Errorf("mail %s: %w", base, err)
		}
		if err := os.WriteFile(filepath.Join(dir, base+".sent"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o640); err != nil {
			return done, err
		}
		done = append(done, base)
	}
	return done, nil
}

// Sites lists the sites with published data, for the report scheduler.
func Sites(ctx context.Context, q Querier, db string) ([]string, error) {
	return (&store{q: q, db: db}).sites(ctx)
}
