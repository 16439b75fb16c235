package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/schemas"
)

// startServe runs `herd serve` in the background on free ports and returns
// the two base URLs once it has printed them.
func startServe(t *testing.T, dataDir string, flags ...string) (ingestURL, dashURL string, stop func() error) {
	t.Helper()
	urls, stop := startRole(t, append([]string{"serve"}, flags...), dataDir, "ingest", "dashboard")
	return urls["ingest"], urls["dashboard"], stop
}

// startRole runs a serving command (serve, ingest, dashboard) in the
// background on free ports and returns the URLs it printed, by name.
// command is the subcommand and its own flags.
func startRole(t *testing.T, command []string, dataDir string, names ...string) (map[string]string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	args := append(slices.Clone(command), "--data-dir", dataDir, "--log-level", "warn")
	for _, n := range names {
		args = append(args, "--"+n+"-addr", "127.0.0.1:0")
	}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, pw, &stderr)
		pw.Close()
	}()
	urls := map[string]string{}
	sc := bufio.NewScanner(pr)
	for len(urls) < len(names) && sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		if slices.Contains(names, k) {
			urls[k] = strings.TrimSpace(v)
		}
	}
	if len(urls) < len(names) {
		cancel()
		t.Fatalf("%s did not print its addresses: %v\n%s", command, <-done, stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(60 * time.Second):
			return errors.New(command[0] + " did not stop within 60 s")
		}
	}
	t.Cleanup(func() { _ = stop() })
	return urls, stop
}

func TestServeBecomesReadyWithoutFlags(t *testing.T) {
	chtest.Servers(t)
	start := time.Now()
	ingestURL, dashURL, stop := startServe(t, t.TempDir())
	for _, u := range []string{ingestURL, dashURL} {
		for {
			resp, err := http.Get(u + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("%s/readyz not 200 within 30 s (last: %v)", u, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v after a clean shutdown", err)
	}
	if _, err := http.Get(ingestURL + "/healthz"); err == nil {
		t.Fatal("ingest still answers after shutdown")
	}
}

// TestRolesRunApart runs the event API and the dashboard as two processes'
// roles (docs/operations.md) on one data directory: each serves only its own part.
func TestRolesRunApart(t *testing.T) {
	chtest.Servers(t)
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"ingest", "--dashboard-addr", "127.0.0.1:0"}, &out, &errOut); !errors.Is(err, errUsage) {
		t.Fatalf("herd ingest took --dashboard-addr: %v", err)
	}
	ing, _ := startRole(t, []string{"ingest"}, dir, "ingest")
	req, _ := http.NewRequest(http.MethodPost, ing["ingest"]+"/api/event", strings.NewReader(`{"type":"pageview","url":"https://shop.example/"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), `"accepted":1`) {
		t.Fatalf("herd ingest answered %d %s", resp.StatusCode, body)
	}
	dash, _ := startRole(t, []string{"dashboard"}, dir, "dashboard")
	for _, c := range []struct{ url, path string }{{dash["dashboard"], "/login"}, {ing["ingest"], "/herd.js"}} {
		resp, err := http.Get(c.url + c.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s%s: %d", c.url, c.path, resp.StatusCode)
		}
	}
	// Neither serves the other's part.
	for _, u := range []string{dash["dashboard"] + "/herd.js", ing["ingest"] + "/login"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("GET %s: 200 from the wrong role", u)
		}
	}
	var n bytes.Buffer
	for deadline := time.Now().Add(30 * time.Second); ; {
		n.Reset()
		if err := run(context.Background(), []string{"sql", "--data-dir", dir, "SELECT count() FROM herd_raw.events"}, &n, &errOut); err != nil {
			t.Fatal(err, errOut.String())
		}
		if n.String() == "count()\n1\n" || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n.String() != "count()\n1\n" {
		t.Fatalf("raw events after one accepted event: %q", n.String())
	}
}

func TestSQLUsesTheRunningManagedServer(t *testing.T) {
	chtest.Servers(t)
	dir := t.TempDir()
	startServe(t, dir)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"sql", "--data-dir", dir, "SELECT count() AS n FROM system.databases WHERE name IN ('herd', 'herd_raw')"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	if out.String() != "n\n2\n" {
		t.Fatalf("got %q", out.String())
	}
	// The reader is refused raw events by ClickHouse itself.
	out.Reset()
	err := run(context.Background(), []string{"sql", "--data-dir", dir, "--reader", "SELECT count() FROM herd_raw.events"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "291") {
		t.Fatalf("reader on herd_raw: got %v", err)
	}
}

func TestMigrateThenSQLOnStoppedServer(t *testing.T) {
	chtest.Servers(t)
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	t.Setenv("HERD_DATA_DIR", dir) // the environment fills an unset flag
	if err := run(context.Background(), []string{"migrate", "--log-level", "warn"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"sql", "SELECT count() FROM herd.schema_migrations"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	ms, err := clickhouse.LoadMigrations(schemas.Migrations, schemas.MigrationsDir)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("count()\n%d\n", len(ms)); out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
	if _, err := os.Stat(filepath.Join(dir, "clickhouse", "data")); err != nil {
		t.Fatalf("HERD_DATA_DIR was not used: %v", err)
	}
}

func TestFlagWinsOverEnvironment(t *testing.T) {
	t.Setenv("HERD_LOG_FORMAT", "yaml")
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"sql", "--data-dir", t.TempDir(), "SELECT 1"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), `--log-format "yaml"`) {
		t.Fatalf("environment value not applied: %v", err)
	}
	out.Reset()
	// Given as a flag, the same setting ignores the bad environment value.
	if err := run(context.Background(), []string{"sql", "--log-format", "json", "--data-dir", t.TempDir(), "SELECT 1 AS one"}, &out, &errOut); err != nil {
		t.Fatalf("flag did not win: %v", err)
	}
	if out.String() != "one\n1\n" {
		t.Fatalf("got %q", out.String())
	}
}

func TestExternalClickHouseNeedsReader(t *testing.T) {
	chtest.Servers(t)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"serve", "--clickhouse", "http://127.0.0.1:1/"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "--clickhouse-reader is required") {
		t.Fatalf("got %v", err)
	}
}

func TestUsageErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	for _, args := range [][]string{{}, {"frobnicate"}, {"serve", "--no-such-flag"}, {"sql"},
		{"dashboard", "--smtp-addr", "127.0.0.1:25", "--report-to", "not an address"}, {"dashboard", "--smtp-addr", "relay-without-port", "--report-to", "ops@shop.example"},
		{"migrate", "--cluster", "herd"}} {
		err := run(context.Background(), args, &out, &errOut)
		if !errors.Is(err, errUsage) || exitCode(err) != 2 {
			t.Errorf("%v: got %v", args, err)
		}
	}
}

func TestGenImportsHistoryThroughIngest(t *testing.T) {
	chtest.Servers(t)
	dir := t.TempDir()
	// Without the operator's word, nobody imports history: the events
	// are refused, not stored under the days they claim.
	closed, _, stopClosed := startServe(t, t.TempDir())
	var out, errOut bytes.Buffer
	_ = run(context.Background(), []string{"gen", "--target", closed, "--visitors", "20", "--days", "1", "--import", "--seed", "5", "--log-level", "warn"}, &out, &errOut)
	if !strings.Contains(out.String(), " 0 accepted") {
		t.Errorf("an import into a herd that takes none: %s %s", out.String(), errOut.String())
	}
	_ = stopClosed()
	out.Reset()
	errOut.Reset()
	ingestURL, _, _ := startServe(t, dir, "--allow-imports", "--import-backfill")
	if err := run(context.Background(), []string{"gen", "--target", ingestURL, "--visitors", "300", "--days", "3", "--import", "--seed", "5", "--log-level", "warn"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var sessions, events, requests, accepted, dropped, invalid, failed int
	if _, err := fmt.Sscanf(out.String(), "%d sessions, %d events in %d requests: %d accepted, %d dropped by policy, %d invalid, %d requests failed",
		&sessions, &events, &requests, &accepted, &dropped, &invalid, &failed); err != nil {
		t.Fatalf("gen said %q: %v", out.String(), err)
	}
	if accepted == 0 || dropped == 0 || invalid != 0 || failed != 0 || accepted+dropped != events {
		t.Fatalf("gen: %s", out.String())
	}
	// Within a few seconds the spool has put everything into ClickHouse,
	// at the events' own past times (a busy machine may take longer).
	deadline := time.Now().Add(90 * time.Second)
	for {
		out.Reset()
		if err := run(context.Background(), []string{"sql", "--data-dir", dir,
			"SELECT count() = " + strconv.Itoa(accepted) + ", min(imported), dateDiff('hour', min(received), max(received)) >= 48, max(received) <= now() FROM herd_raw.events FORMAT TSV"}, &out, &errOut); err != nil {
			t.Fatal(err)
		}
		if out.String() == "1\t1\t1\t1\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("imported rows: %q (want all %d accepted, imported, spanning the days)", out.String(), accepted)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Publish the imported history, then audit it.
	out.Reset()
	if err := run(context.Background(), []string{"rollup", "--once", "--data-dir", dir}, &out, &errOut); err != nil {
		t.Fatalf("rollup: %v\n%s", err, errOut.String())
	}
	var cells, runs, buckets, suppressed, failedRuns, drops int
	if _, err := fmt.Sscanf(out.String(), "published %d cells in %d table-buckets (%d buckets), suppressed %d, failed %d; retention dropped %d",
		&cells, &runs, &buckets, &suppressed, &failedRuns, &drops); err != nil || cells == 0 || failedRuns != 0 {
		t.Fatalf("rollup said %q (%v)", out.String(), err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"rollup", "--once", "--data-dir", dir}, &out, &errOut); err != nil || !strings.HasPrefix(out.String(), "published 0 cells in 0 table-buckets") {
		t.Fatalf("second rollup: %q, %v", out.String(), err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"audit", "--json", "--data-dir", dir}, &out, &errOut); err != nil {
		t.Fatalf("audit of a clean install: %v\n%s", err, out.String())
	}
	var rep struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"checks"`
		Statement struct {
			K int `json:"k"`
		} `json:"statement"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || !rep.OK || len(rep.Checks) < 7 || rep.Statement.K != 10 {
		t.Fatalf("audit --json: %v %+v", err, rep)
	}
	// The week's operational report as a spreadsheet. The clock is a week
	// after the day before yesterday (a whole imported day), so the "last
	// complete week" holds it whatever weekday the test runs on.
	xlsxFile := filepath.Join(t.TempDir(), "week.xlsx")
	reportNow := time.Now().UTC().AddDate(0, 0, 5).Format(time.DateOnly)
	if err := run(context.Background(), []string{"report", "--data-dir", dir, "--kind", "weekly", "--format", "xlsx", "--out", xlsxFile, "--now", reportNow}, &out, &errOut); err != nil {
		t.Fatalf("report: %v\n%s", err, errOut.String())
	}
	x, err := excelize.OpenFile(xlsxFile)
	if err != nil {
		t.Fatal(err)
	}
	if sheets := x.GetSheetList(); len(sheets) < 2 || sheets[0] != "KPIs" || sheets[len(sheets)-1] != "Privacy" {
		t.Fatalf("report sheets: %v", sheets)
	}
	if rows, _ := x.GetRows("KPIs"); len(rows) < 4 || len(rows[3]) < 3 || rows[3][1] != "visitor-days" {
		t.Errorf("the week's KPIs sheet has no visitor-days: %q", rows)
	}
	x.Close()
	if err := run(context.Background(), []string{"sql", "--data-dir", dir, "INSERT INTO herd.searches (site, grain, bucket, term, visitors) VALUES ('demo', 'day', today(), 'mail jane@example.com', 12)"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = run(context.Background(), []string{"audit", "--data-dir", dir}, &out, &errOut)
	if !errors.Is(err, errAuditFailed) || exitCode(err) != 1 || !strings.Contains(out.String(), "[FAIL] personal data scan") {
		t.Fatalf("audit with an email planted: %v\n%s", err, out.String())
	}
}
