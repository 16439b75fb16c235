package dashboard_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/apache/arrow/go/v15/parquet/file"
	"github.com/apache/arrow/go/v15/parquet/pqarrow"
	"github.com/xuri/excelize/v2"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/dashboard"
	"github.com/herd-analytics/herd/internal/abtest"
	"github.com/herd-analytics/herd/internal/mailer"
	"github.com/herd-analytics/herd/internal/mailer/mailtest"
	"github.com/herd-analytics/herd/internal/privacy"
)

func get(t *testing.T, c *http.Client, u string) (int, []byte) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// kpiSigma is the σ the kpis release at a total of eps publishes metric
// with (the fixture records its parameters: ε = 4 for the last 28 days, 2
// before).
func kpiSigma(t *testing.T, eps float64, metric string) float64 {
	t.Helper()
	return releaseSigma(t, releaseAt(t, eps, "kpis", aggregate.Day), metric)
}

// releaseSigma is the σ r publishes metric with.
func releaseSigma(t *testing.T, r aggregate.Release, metric string) float64 {
	t.Helper()
	for _, m := range r.Params.Metrics {
		if m.Name == metric {
			return m.NoiseSigma()
		}
	}
	t.Fatalf("%s has no %s", r.Table, metric)
	return 0
}

// TestReports: each format opens with its standard reader and carries the
// dashboard's numbers for the same period; every download is recorded.
func TestReports(t *testing.T) {
	s := start(t)
	c := client()
	if got := s.login(t, c, "manager", password, true); got != http.StatusSeeOther {
		t.Fatalf("login: %d", got)
	}
	period, err := dashboard.ReportPeriod("weekly", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The dashboard's visitors for the same week.
	code, body := get(t, c, fmt.Sprintf("%s/api/v1/kpis?range=custom&from=%s&to=%s", s.url, period.From.Format(time.DateOnly), period.To.Add(-24*time.Hour).Format(time.DateOnly)))
	if code != 200 {
		t.Fatalf("kpis: %d %s", code, body)
	}
	var kp struct {
		Data []struct {
			Visitors uint64 `json:"visitors"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &kp); err != nil || len(kp.Data) != 7 {
		t.Fatalf("kpis for the week: %v, %d days", err, len(kp.Data))
	}
	var want float64
	for _, d := range kp.Data {
		want += float64(d.Visitors)
	}

	// The KPIs carry the half-width of their noise's 95% interval: seven
	// days of the kpis release's σ; the other sections none.
	wantNoise := math.Round(abtest.Z95*kpiSigma(t, 4, "revenue")*math.Sqrt(7)*100) / 100
	visitors, noise := map[string]float64{}, map[string]float64{}
	// A top product's views: seven cells of the products release's σ.
	var productNoise float64
	wantProductNoise := math.Round(abtest.Z95 * releaseSigma(t, releaseAt(t, 4, "products", aggregate.Week), "views") * math.Sqrt(7))
	for _, format := range dashboard.ReportFormats {
		code, data := get(t, c, s.url+"/reports/download?site=demo&kind=weekly&format="+format)
		if code != 200 {
			t.Fatalf("%s: %d %s", format, code, data)
		}
		switch format {
		case "csv":
			recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r[0] == "KPIs" && r[2] == "visitor-days" {
					visitors[format], _ = strconv.ParseFloat(r[4], 64)
				}
				if r[0] == "KPIs" && r[2] == "revenue" {
					noise[format], _ = strconv.ParseFloat(r[7], 64)
				}
				if r[0] == "Top products" && r[2] == "views" {
					productNoise, _ = strconv.ParseFloat(r[7], 64)
				}
				if (r[2] == "revenue" || r[2] == "average order value") && r[3] != "EUR" {
					t.Errorf("CSV amount in %q, want EUR: %v", r[3], r)
				}
				// Rounded as their unit writes them: no float noise.
				if len(r) > 4 && r[0] != "Privacy" && r[0] != "section" {
					if v := r[4]; strings.Count(v, ".") > 1 || (strings.Contains(v, ".") && len(v)-strings.Index(v, ".") > 5) {
						t.Errorf("CSV value %q of %v not rounded", v, r)
					}
				}
			}
			if last := recs[len(recs)-1]; last[0] != "Privacy" || !strings.Contains(last[2], "≥ 10 visitor-days") {
				t.Errorf("CSV without the privacy statement: %v", last)
			}
		case "xlsx":
			x, err := excelize.OpenReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			rows, err := x.GetRows("KPIs")
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if len(r) > 2 && r[1] == "visitor-days" {
					visitors[format], _ = strconv.ParseFloat(strings.ReplaceAll(r[2], ",", ""), 64)
				}
				if len(r) > 5 && r[1] == "revenue" {
					// Amounts show their currency.
					if !strings.HasSuffix(r[2], " EUR") || !strings.HasSuffix(r[5], " EUR") {
						t.Errorf("xlsx revenue without its currency: %q", r)
					}
					noise[format], _ = strconv.ParseFloat(strings.ReplaceAll(strings.TrimSuffix(r[5], " EUR"), ",", ""), 64)
				}
			}
			sheets := x.GetSheetList()
			if strings.Join(sheets, ",") != "KPIs,Top products,Funnels,Search demand,Layout winners,Layout variants,Privacy" {
				t.Errorf("sheets: %v", sheets)
			}
			x.Close()
		case "parquet":
			pf, err := file.NewParquetReader(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
			if err != nil {
				t.Fatal(err)
			}
			tbl, err := fr.ReadTable(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			tr := array.NewTableReader(tbl, 1000)
			for tr.Next() {
				rec := tr.Record()
				sec, met, val := rec.Column(0).(*array.String), rec.Column(2).(*array.String), rec.Column(4).(*array.Float64)
				ns := rec.Column(6).(*array.Float64)
				for i := 0; i < int(rec.NumRows()); i++ {
					if sec.Value(i) == "KPIs" && met.Value(i) == "visitor-days" {
						visitors[format] = val.Value(i)
					}
					if sec.Value(i) == "KPIs" && met.Value(i) == "revenue" && ns.IsValid(i) {
						noise[format] = ns.Value(i)
						if u := rec.Column(3).(*array.String).Value(i); u != "EUR" {
							t.Errorf("parquet revenue in %q, want EUR", u)
						}
					}
					if sec.Value(i) != "KPIs" && sec.Value(i) != "Top products" && ns.IsValid(i) {
						t.Errorf("parquet: %s %s with a noise", sec.Value(i), met.Value(i))
					}
				}
			}
			tr.Release()
			tbl.Release()
		}
	}
	for _, format := range dashboard.ReportFormats {
		if visitors[format] != want {
			t.Errorf("%s report: %v visitors, dashboard %v for %s", format, visitors[format], want, period.From.Format(time.DateOnly))
		}
		if math.Abs(noise[format]-wantNoise) > 0.011 {
			t.Errorf("%s report: revenue noise ± %v, want ± %v", format, noise[format], wantNoise)
		}
	}
	if productNoise != wantProductNoise {
		t.Errorf("CSV: a top product's views ± %v, want ± %v", productNoise, wantProductNoise)
	}

	// Recorded, and visible to the admin only.
	var n int
	for _, r := range rowsOf(t, s, "SELECT count() FROM "+s.db.Names.Pub+".downloads WHERE user = 'manager' AND what LIKE 'report %'") {
		n = int(r[0].(uint64))
	}
	if n != 3 {
		t.Errorf("%d report downloads recorded, want 3", n)
	}
	if code, _ := get(t, c, s.url+"/admin"); code != http.StatusForbidden {
		t.Errorf("manager on /admin: %d", code)
	}
	a := client()
	s.login(t, a, "admin", password, true)
	if code, body := get(t, a, s.url+"/admin"); code != 200 || !strings.Contains(string(body), "herd-demo-weekly-") {
		t.Errorf("admin page: %d", code)
	}
	m := client()
	s.login(t, m, "merchandiser", password, true)
	if code, _ := get(t, m, s.url+"/reports/download?kind=weekly&format=csv"); code != http.StatusForbidden {
		t.Errorf("merchandiser downloading a report: %d", code)
	}
	// A page of another site that links to a download, with the manager's
	// cookie: refused, as the browser says where the request comes from.
	for _, u := range []string{"/reports/download?kind=weekly&format=csv", "/api/v1/kpis?range=28d&format=csv"} {
		for _, h := range [][2]string{{"Sec-Fetch-Site", "cross-site"}, {"Origin", "https://evil.example"}} {
			if code, _ := getWith(t, a, s.url+u, h[0], h[1]); code != http.StatusForbidden {
				t.Errorf("%s with %s %s: %d, want 403", u, h[0], h[1], code)
			}
		}
		if code, _ := getWith(t, a, s.url+u, "Sec-Fetch-Site", "same-origin"); code != http.StatusOK {
			t.Errorf("%s from the dashboard itself: %d", u, code)
		}
	}
}

func TestScheduledReports(t *testing.T) {
	s := start(t)
	dir := t.TempDir()
	written, err := dashboard.WriteScheduled(context.Background(), s.db.Reader, s.db.Names.Pub, []string{"demo"}, "monthly", time.Now(), dir, privacy.Statement{K: 10})
	if err != nil || len(written) != 3 {
		t.Fatalf("written %v, %v", written, err)
	}
	again, err := dashboard.WriteScheduled(context.Background(), s.db.Reader, s.db.Names.Pub, []string{"demo"}, "monthly", time.Now(), dir, privacy.Statement{K: 10})
	if err != nil || len(again) != 0 {
		t.Fatalf("a second run rewrote %v, %v", again, err)
	}

	// E-mail beside the archive, through a real SMTP relay: a relay that
	// is down loses nothing (the report goes on the next run), and nobody
	// gets a report twice.
	ctx := context.Background()
	relay := mailtest.Start(t)
	down := &mailer.Config{Addr: "127.0.0.1:1", From: "herd@shop.example", To: []string{"ops@shop.example"}, Timeout: 2 * time.Second}
	if sent, err := dashboard.MailScheduled(ctx, down, dir, privacy.Statement{K: 10}); err == nil || len(sent) != 0 {
		t.Fatalf("relay down: sent %v, %v", sent, err)
	}
	up := &mailer.Config{Addr: relay.Addr, From: "herd@shop.example", To: []string{"ops@shop.example"}, Username: mailtest.User, Password: mailtest.Password}
	sent, err := dashboard.MailScheduled(ctx, up, dir, privacy.Statement{K: 10})
	if err != nil || len(sent) != 1 {
		t.Fatalf("sent %v, %v", sent, err)
	}
	if again, err := dashboard.MailScheduled(ctx, up, dir, privacy.Statement{K: 10}); err != nil || len(again) != 0 {
		t.Errorf("a second run mailed %v, %v", again, err)
	}
	msgs := relay.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages at the relay", len(msgs))
	}
	subject, parts, err := msgs[0].Parts()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(subject, "demo-monthly-") || len(parts) != 4 {
		t.Errorf("message %q with %d parts, want the text and 3 files", subject, len(parts))
	}
	for _, path := range written {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(parts[filepath.Base(path)], data) {
			t.Errorf("%s: the attachment differs from the archived file", filepath.Base(path))
		}
	}
	if !strings.Contains(string(parts[""]), "≥ 10 visitor-days") {
		t.Errorf("the message does not state the publication rules: %q", parts[""])
	}
}

func rowsOf(t *testing.T, s *site, q string) [][]any {
	t.Helper()
	var out [][]any
	err := s.db.Writer.Select(context.Background(), q, func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			r := make([]any, len(b.Columns))
			for j, col := range b.Columns {
				r[j] = col.Row(i, false)
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
