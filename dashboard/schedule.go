package dashboard

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/herd-analytics/herd/internal/mailer"
	"github.com/herd-analytics/herd/internal/privacy"
)

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
