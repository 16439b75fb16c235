package ingest_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/andybalholm/brotli"

	"github.com/herd-analytics/herd/ingest"
	"github.com/herd-analytics/herd/ingest/ingesttest"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
)

func TestMain(m *testing.M) { os.Exit(chtest.Run(m)) }

const chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"

type edge struct {
	*ingesttest.Edge
	db      *chtest.DB
	url     string
	logs    *ingesttest.Logs
	dataDir string
}

// startEdge runs the real ingest (ingest.New, Run, its HTTP API on a free
// port) writing to a fresh pair of this test's databases, with every log
// line captured.
func startEdge(t *testing.T) *edge {
	t.Helper()
	return startEdgeWith(t, chtest.Migrated(t), ingesttest.Options{})
}

func startEdgeWith(t *testing.T, db *chtest.DB, o ingesttest.Options) *edge {
	t.Helper()
	e := ingesttest.Start(t, db, o)
	return &edge{Edge: e, db: db, url: e.URL, logs: e.Logs, dataDir: e.DataDir}
}

type reply struct {
	status int
	body   ingest.Answer
	header http.Header
}

func (e *edge) post(t *testing.T, path, contentType, body string, headers ...string) reply {
	t.Helper()
	return readReply(t, path, do(t, "POST", e.url+path, contentType, body, headers...))
}

func readReply(t *testing.T, path string, resp *http.Response) reply {
	t.Helper()
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var ans ingest.Answer
	if err := json.Unmarshal(data, &ans); err != nil {
		t.Fatalf("%s answered %d with non-JSON %q", path, resp.StatusCode, data)
	}
	return reply{status: resp.StatusCode, body: ans, header: resp.Header}
}

// postAnnounced sends a request's headers and the start of its body on a
// raw connection and reads the answer: the server refuses an announced body
// that is too large before it arrives, and closes the connection, which
// makes a client still writing the body see a reset instead of the answer.
func (e *edge) postAnnounced(t *testing.T, path, contentType, body string) reply {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: herd\r\nContent-Type: %s\r\nUser-Agent: %s\r\nContent-Length: %d\r\n\r\n%s", path, contentType, chromeUA, len(body), body[:1024])
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	return readReply(t, path, resp)
}

// query answers q after every acknowledged row is in ClickHouse.
func (e *edge) query(t *testing.T, q string) string {
	t.Helper()
	e.Sync(t)
	var out strings.Builder
	if err := e.db.Writer.Raw(context.Background(), q+" FORMAT TSV", &out); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out.String()
}

func TestEndpointsStoreDerivedFields(t *testing.T) {
	e := startEdge(t)
	raw := e.db.Names.Raw + ".events"
	r := e.post(t, "/api/event", "text/plain;charset=UTF-8",
		`{"type":"pageview","url":"https://shop.example/category/shoes?utm_source=nl&utm_medium=email&sid=abc","referrer":"https://news.google.com/x"}`)
	if r.status != 202 || r.body.Accepted != 1 {
		t.Fatalf("/api/event: %+v", r)
	}
	r = e.post(t, "/api/events", "application/json", `[
		{"type":"product_view","product":{"id":"p1","category":"shoes","price":59.9}},
		{"type":"purchase","order":{"value":119.8,"currency":"eur","items":2},"products":[{"id":"p1"},{"id":"p2"}]}]`)
	if r.status != 202 || r.body.Accepted != 2 {
		t.Fatalf("/api/events: %+v", r)
	}
	r = e.post(t, "/api/events", "application/x-ndjson", "{\"type\":\"search\",\"search\":{\"term\":\"Red Boots\",\"results\":0}}\n{\"type\":\"checkout_step\",\"step\":2}\n")
	if r.status != 202 || r.body.Accepted != 2 {
		t.Fatalf("NDJSON: %+v", r)
	}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("any-write-key:"))
	r = e.post(t, "/v1/batch", "application/json", `{"batch":[
		{"type":"track","event":"Product Added","messageId":"m-1","anonymousId":"a1","properties":{"product_id":"p7","price":"20"},"context":{"ip":"198.51.100.4","userAgent":"`+chromeUA+`"}},
		{"type":"identify","userId":"u1","traits":{"email":"x@y.z"}}]}`, "Authorization", auth)
	if r.status != 202 || r.body.Accepted != 1 || r.body.Dropped[ingest.DropUnsupportedType] != 1 {
		t.Fatalf("/v1/batch: %+v", r)
	}
	r = e.post(t, "/v1/track", "application/json", `{"event":"Products Searched","anonymousId":"a2","properties":{"query":"socks"}}`, "Authorization", auth)
	if r.status != 202 || r.body.Accepted != 1 {
		t.Fatalf("/v1/track: %+v", r)
	}
	r = e.post(t, "/v1/page", "application/json", `{"anonymousId":"a2","properties":{"url":"https://shop.example/"}}`, "Authorization", auth)
	if r.status != 202 || r.body.Accepted != 1 {
		t.Fatalf("/v1/page: %+v", r)
	}

	got := e.query(t, "SELECT type, path, page_type, utm_source, utm_medium, referrer_host, browser, browser_major, os, device, product_id, product_category, product_price, order_value, currency, items, products, search_term, search_results, step FROM "+raw+" ORDER BY type, product_id, search_term, path")
	want := strings.Join([]string{
		"pageview\t/\thome\t\t\t\tChrome\t120\tWindows\tdesktop\t\t\t0.00\t0.00\t\\0\\0\\0\t0\t[]\t\t-1\t0",
		"pageview\t/category/shoes\tcategory\tnl\temail\tgoogle.com\tChrome\t120\tWindows\tdesktop\t\t\t0.00\t0.00\t\\0\\0\\0\t0\t[]\t\t-1\t0",
		"product_view\t\t\t\t\t\tChrome\t120\tWindows\tdesktop\tp1\tshoes\t59.90\t0.00\t\\0\\0\\0\t0\t[]\t\t-1\t0",
		"add_to_cart\t\t\t\t\t\tChrome\t120\tWindows\tdesktop\tp7\t\t20.00\t0.00\t\\0\\0\\0\t0\t[]\t\t-1\t0",
		"checkout_step\t\t\t\t\t\tChrome\t120\tWindows\tdesktop\t\t\t0.00\t0.00\t\\0\\0\\0\t0\t[]\t\t-1\t2",
		"purchase\t\t\t\t\t\tChrome\t120\tWindows\tdesktop\t\t\t0.00\t119.80\tEUR\t2\t['p1','p2']\t\t-1\t0",
		"search\t\t\t\t\t\tChrome\t120\tWindows\tdesktop\t\t\t0.00\t0.00\t\\0\\0\\0\t0\t[]\tred boots\t0\t0",
		"search\t\t\t\t\t\tChrome\t120\tWindows\tdesktop\t\t\t0.00\t0.00\t\\0\\0\\0\t0\t[]\tsocks\t-1\t0",
	}, "\n") + "\n"
	if got != want {
		t.Fatalf("rows:\n%s\nwant:\n%s", got, want)
	}
	// One browser (same IP and UA) is one visitor; the Segment shoppers
	// are told apart by their own context or anonymousId. Sessions are the
	// publisher's (session stays 0: ingest keeps no state between requests).
	if v := e.query(t, "SELECT uniqExact(visitor), max(session), countIf(visitor = 0), uniqExact(event_id) = count() FROM "+raw); v != "3\t0\t0\t1\n" {
		t.Fatalf("visitors, session: %q", v)
	}
}

func TestBadInputGetsPreciseErrors(t *testing.T) {
	e := startEdge(t)
	// 100 MiB of spaces inside a JSON string, gzip'd to about 100 KiB.
	bomb := gz(`[{"type":"pageview","url":"/` + strings.Repeat(" ", 100<<20) + `"}]`)
	cases := []struct {
		name, path, ctype, body string
		status                  int
		errPart                 string
		headers                 []string
	}{
		{"wrong content type", "/api/events", "application/xml", "[]", 415, "content type", nil},
		{"no content type", "/api/event", "", "{}", 415, "content type", nil},
		{"malformed JSON", "/api/events", "application/json", `[{"type":"pageview",]`, 400, "malformed JSON", nil},
		{"not an object", "/api/event", "application/json", `[1]`, 400, "one JSON object", nil},
		{"all bad", "/api/events", "application/json", `[{"type":"nope"},{"type":"pageview"}]`, 400, "event 0: type", nil},
		{"unknown field", "/api/event", "application/json", `{"type":"pageview","url":"/","email":"a@b.c"}`, 400, "unknown field", nil},
		{"wrong type", "/api/event", "application/json", `{"type":"pageview","url":7}`, 400, "url", nil},
		{"too many events", "/api/events", "application/json", "[" + strings.Repeat(`{"type":"pageview","url":"/"},`, 500) + `{"type":"pageview","url":"/"}]`, 413, "500 events", nil},
		{"too big", "/api/events", "application/json", `[{"type":"pageview","url":"/` + strings.Repeat("a", ingest.MaxBodyBytes) + `"}]`, 413, "Too Large", nil},
		{"segment empty batch", "/v1/batch", "application/json", `{"batch":[]}`, 400, "batch", nil},
		{"gzip bomb", "/api/events", "application/json", bomb, 413, "once decompressed", []string{"Content-Encoding", "gzip"}},
		{"gzip bomb on segment", "/v1/batch", "application/json", bomb, 413, "once decompressed", []string{"Content-Encoding", "gzip"}},
		{"broken gzip", "/api/events", "application/json", "not gzip", 400, "not valid gzip", []string{"Content-Encoding", "gzip"}},
		{"unknown encoding", "/api/events", "application/json", "x", 415, "content encoding", []string{"Content-Encoding", "compress"}},
		{"multipart", "/api/events", "multipart/form-data; boundary=x", "--x\r\nbroken", 415, "content type", nil},
		{"utf-16", "/api/events", "application/json; charset=utf-16", `[{"type":"pageview","url":"/"}]`, 415, "UTF-8", nil},
		{"negative step", "/api/event", "application/json", `{"type":"pageview","url":"/","step":-1}`, 400, "step", nil},
		{"segment price a word", "/v1/track", "application/json", `{"event":"Product Viewed","properties":{"product_id":"p1","price":"x"}}`, 400, "properties.price", nil},
		{"segment price a boolean", "/v1/track", "application/json", `{"event":"Product Viewed","properties":{"product_id":"p1","price":true}}`, 400, "properties.price", nil},
		{"segment price out of range", "/v1/track", "application/json", `{"event":"Product Viewed","properties":{"product_id":"p1","price":1e400}}`, 400, "properties.price", nil},
		{"segment product price a word", "/v1/track", "application/json", `{"event":"Order Completed","properties":{"revenue":10,"products":[{"product_id":"a","price":"x"}]}}`, 400, "properties.products[0].price", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r reply
			if len(c.body) > ingest.MaxBodyBytes {
				r = e.postAnnounced(t, c.path, c.ctype, c.body)
			} else {
				r = e.post(t, c.path, c.ctype, c.body, c.headers...)
			}
			if r.status != c.status || !strings.Contains(r.body.Error, c.errPart) {
				t.Fatalf("got %d %+v, want %d with %q", r.status, r.body, c.status, c.errPart)
			}
		})
	}
	// A mixed batch keeps its good events and names the bad ones.
	r := e.post(t, "/api/events", "application/json", `[{"type":"pageview","url":"/ok"},{"type":"purchase"},{"type":"pageview","url":"/ok2","x":1}]`)
	if r.status != 202 || r.body.Accepted != 1 || len(r.body.Problems) != 2 ||
		r.body.Problems[0] != (ingest.Problem{Index: 1, Field: "order", Reason: "required for purchase"}) ||
		r.body.Problems[1] != (ingest.Problem{Index: 2, Field: "x", Reason: "unknown field"}) {
		t.Fatalf("mixed batch: %+v", r)
	}
	if n := e.query(t, "SELECT count() FROM "+e.db.Names.Raw+".events"); n != "1\n" {
		t.Fatalf("stored %q rows", n)
	}
}

func TestConsentAndBotsAreDroppedAndCounted(t *testing.T) {
	e := startEdge(t)
	ev := `[{"type":"pageview","url":"/a"}]`
	for _, c := range []struct {
		headers []string
		body    string
		reason  string
	}{
		{[]string{"Sec-GPC", "1"}, ev, ingest.DropGPC},
		{[]string{"DNT", "1"}, ev, ingest.DropDNT},
		{nil, `[{"type":"pageview","url":"/a","consent":["necessary"]}]`, ingest.DropNoConsent},
		{[]string{"User-Agent", "Googlebot/2.1 (+http://www.google.com/bot.html)"}, ev, ingest.DropBot},
		{[]string{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36"}, ev, ingest.DropBot},
		{nil, `[{"type":"pageview","url":"/a","site":"elsewhere"}]`, ingest.DropUnknownSite},
	} {
		r := e.post(t, "/api/events", "application/json", c.body, c.headers...)
		if r.status != 202 || r.body.Accepted != 0 || r.body.Dropped[c.reason] != 1 {
			t.Fatalf("%s: %+v", c.reason, r)
		}
	}
	if r := e.post(t, "/api/events", "application/json", `[{"type":"pageview","url":"/a","consent":["analytics"]}]`); r.body.Accepted != 1 {
		t.Fatalf("consented event: %+v", r)
	}
	if n := e.query(t, "SELECT count() FROM "+e.db.Names.Raw+".events"); n != "1\n" {
		t.Fatalf("stored %q rows", n)
	}
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{`herd_ingest_events_dropped_total{reason="gpc"} 1`, `herd_ingest_events_dropped_total{reason="bot"} 2`, "herd_ingest_events_accepted_total 1"} {
		if !strings.Contains(string(metrics), line) {
			t.Fatalf("metrics lack %q:\n%s", line, metrics)
		}
	}
}

// A ClickHouse that is down does not stop acknowledgement (the spool keeps
// the rows); a spool that cannot write does: 503 with the reason.
func TestSpoolFailureGives503WithReason(t *testing.T) {
	e := startEdge(t)
	if err := os.RemoveAll(e.SpoolDir()); err != nil {
		t.Fatal(err)
	}
	r := e.post(t, "/api/events", "application/json", `[{"type":"pageview","url":"/a"}]`)
	if r.status != 503 || r.body.Accepted != 0 || !strings.Contains(r.body.Error, "storage unavailable") || r.header.Get("Retry-After") == "" {
		t.Fatalf("got %+v", r)
	}
}

// The privacy test of docs/privacy.md: raw identifiers sent in every place a
// client can put them never reach ClickHouse or a log line.
func TestRawIdentifiersNeverStoredOrLogged(t *testing.T) {
	// The spool keeps its segments until the test inserts them.
	e := startEdgeWith(t, chtest.Migrated(t), ingesttest.Options{InsertInterval: time.Hour})
	spoolDir := e.SpoolDir()
	secrets := []string{
		"198.51.100.77",                      // IP
		"CanaryBrowser/9.9 (Secret; Canary)", // UA fragment
		"jane.canary@mail.example",           // email
		"jane.canary%40mail.example",         // encoded email
		"+49 170 5550199",                    // phone
		"4111111111111111",                   // card
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJl", // JWT
		"tok_8f3Kq9ZpLm2Vx7Rt4Yw1",                                 // token
		"user-4242-canary",                                         // account id
	}
	ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 CanaryBrowser/9.9 (Secret; Canary)"
	body := `[
	 {"type":"pageview","url":"https://shop.example/account/jane.canary@mail.example/orders?email=jane.canary%40mail.example&phone=%2B49+170+5550199&token=tok_8f3Kq9ZpLm2Vx7Rt4Yw1&utm_source=jane.canary%40mail.example","referrer":"https://mail.example/jane.canary@mail.example?jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJl","user_id":"user-4242-canary"},
	 {"type":"pageview","url":"/pay/4111111111111111/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJl/tok_8f3Kq9ZpLm2Vx7Rt4Yw1/jane.canary%40mail.example"},
	 {"type":"search","search":{"term":"jane.canary@mail.example +49 170 5550199"},"url":"/search?q=4111111111111111"},
	 {"type":"search","search":{"term":"tok_8f3Kq9ZpLm2Vx7Rt4Yw1"}},
	 {"type":"search","search":{"term":"Reset eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJl"}},
	 {"type":"product_view","product":{"id":"jane.canary@mail.example","category":"+49 170 5550199","list":"tok_8f3Kq9ZpLm2Vx7Rt4Yw1"},"slot":"4111111111111111","variant":"B"},
	 {"type":"pageview","url":"/"}
	]`
	r := e.post(t, "/api/events", "application/json", body, "User-Agent", ua, "X-Forwarded-For", "198.51.100.77")
	if r.status != 202 || r.body.Accepted != 7 {
		t.Fatalf("got %+v", r)
	}
	seg := `{"batch":[{"type":"track","event":"Products Searched","userId":"user-4242-canary","anonymousId":"jane.canary@mail.example","properties":{"query":"EYJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJl jane.canary@mail.example"},"context":{"ip":"198.51.100.77","userAgent":"` + ua + `","page":{"url":"https://shop.example/u/jane.canary%40mail.example","referrer":"http://198.51.100.77/"}}}]}`
	if r := e.post(t, "/v1/batch", "application/json", seg, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("k:"))); r.body.Accepted != 1 {
		t.Fatalf("segment: %+v", r)
	}
	// Also send a malformed event carrying them, to check error paths log nothing.
	e.post(t, "/api/events", "application/json", `[{"type":"pageview","url":"/jane.canary@mail.example","user_agent":"`+ua+`"}]`, "User-Agent", ua)

	// The spool's files, before their rows go on to ClickHouse.
	var spooled strings.Builder
	files, _ := filepath.Glob(filepath.Join(spoolDir, "*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		spooled.Write(data)
	}
	if spooled.Len() == 0 || !strings.Contains(spooled.String(), ":redacted") {
		t.Fatal("the spool holds nothing, so the scan saw no data")
	}
	if n, err := e.Flush(context.Background()); err != nil || n != 8 {
		t.Fatalf("inserted %d rows: %v", n, err)
	}

	// Every String-like column of every table in both databases.
	var cols [][3]string
	err := e.db.Writer.Select(context.Background(),
		"SELECT database, table, name FROM system.columns WHERE database IN ("+clickhouse.Quote(e.db.Names.Raw)+", "+clickhouse.Quote(e.db.Names.Pub)+
			") AND (type LIKE '%String%' OR type LIKE 'Enum%')", func(b *proto.Block) error {
			for i := 0; i < b.Rows(); i++ {
				cols = append(cols, [3]string{b.Columns[0].Row(i, false).(string), b.Columns[1].Row(i, false).(string), b.Columns[2].Row(i, false).(string)})
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) < 20 {
		t.Fatalf("only %d string columns found", len(cols))
	}
	var dump strings.Builder
	for _, c := range cols {
		dump.WriteString(e.query(t, fmt.Sprintf("SELECT toString(%s) FROM %s.%s", c[2], c[0], c[1])))
	}
	stored := dump.String()
	if !strings.Contains(stored, ":redacted") {
		t.Fatal("nothing was redacted, so the scan saw no data")
	}
	logs := e.logs.String()
	for _, s := range secrets {
		for _, variant := range []string{s, strings.ReplaceAll(s, " ", ""), strings.ToLower(s)} {
			if strings.Contains(stored, variant) {
				t.Errorf("%q is stored in ClickHouse", variant)
			}
			if strings.Contains(logs, variant) {
				t.Errorf("%q is in the logs", variant)
			}
			if strings.Contains(spooled.String(), variant) {
				t.Errorf("%q is in the spool", variant)
			}
		}
	}
	if strings.Contains(stored, "5550199") || strings.Contains(stored, "mail.example") && !strings.Contains(stored, "\nmail.example\n") {
		// The referrer's registrable domain may appear alone; nothing else of it.
		t.Errorf("fragments of identifiers stored:\n%s", stored)
	}
}

func TestTrackerIsServedAndCookieless(t *testing.T) {
	e := startEdge(t)
	resp, err := http.Get(e.url + "/herd.js")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	js, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !strings.Contains(string(js), "sendBeacon") || !strings.Contains(string(js), "data-herd-slot") {
		t.Fatal("tracker lacks sendBeacon or slot clicks")
	}
	code := string(js)
	// Comments may explain what it does not do; the code must not do it.
	for _, forbidden := range []string{"document.cookie", "localStorage", "sessionStorage", "indexedDB", "http://", "https://"} {
		for _, line := range strings.Split(code, "\n") {
			if strings.Contains(line, forbidden) && !strings.HasPrefix(strings.TrimSpace(line), "*") && !strings.HasPrefix(strings.TrimSpace(line), "/*") {
				t.Errorf("tracker code uses %s: %s", forbidden, line)
			}
		}
	}
}

func TestAcceptedAnswerIsWhatEncodingJSONWrites(t *testing.T) {
	for _, dropped := range []map[string]int{nil, {}, {"gpc": 2}, {"dnt": 1, "bot": 3, "consent": 12}} {
		want := map[string]any{"accepted": float64(7), "dropped": map[string]any{}}
		for k, v := range dropped {
			want["dropped"].(map[string]any)[k] = float64(v)
		}
		var got map[string]any
		b := ingest.AppendAccepted(nil, 7, dropped)
		if err := json.Unmarshal(b, &got); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: %v (want %v)", b, err, want)
		}
		std, _ := json.Marshal(ingest.Answer{Accepted: 7, Dropped: dropped})
		if len(dropped) > 0 && string(std) != string(b) {
			t.Fatalf("hand-written %s, encoding/json %s", b, std)
		}
	}
}

// Requests' buffers are recycled (events, the slab their strings live in,
// rows): many concurrent requests with distinct values must each store
// exactly their own values, none overwritten by a later request's.
func TestConcurrentRequestsKeepTheirOwnValues(t *testing.T) {
	e := startEdge(t)
	raw := e.db.Names.Raw + ".events"
	const requests, perRequest = 120, 7
	var wg sync.WaitGroup
	want := map[string]bool{}
	for r := range requests {
		var b strings.Builder
		b.WriteString("[")
		for i := range perRequest {
			if i > 0 {
				b.WriteString(",")
			}
			id := fmt.Sprintf("r%03d-e%d-%s", r, i, strings.Repeat("x", (r*7+i)%40))
			want[id+"\t/product/"+id+"\tcat-"+id] = true
			fmt.Fprintf(&b, `{"type":"product_view","url":"https://shop.example/product/%s","product":{"id":"%s","category":"cat-%s","price":%d}}`, id, id, id, r+i)
		}
		b.WriteString("]")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rep := e.post(t, "/api/events", "application/json", b.String()); rep.status != 202 || rep.body.Accepted != perRequest {
				t.Errorf("request %d: %+v", r, rep)
			}
		}()
	}
	wg.Wait()
	var got string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got = e.query(t, "SELECT product_id, path, product_category FROM "+raw+" ORDER BY product_id")
		if strings.Count(got, "\n") >= requests*perRequest || time.Now().After(deadline) {
			break
		}
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != requests*perRequest {
		t.Fatalf("%d rows stored, want %d", len(lines), requests*perRequest)
	}
	for _, l := range lines {
		if !want[l] {
			t.Fatalf("stored row %q was never sent", l)
		}
		delete(want, l)
	}
}

// herd's own failure (the key ring cannot store today's key) is a 500 with
// a JSON reason, never a 400 blaming the client, and nothing is stored.
func TestKeyRingFailureIs500(t *testing.T) {
	e := startEdge(t)
	keys := filepath.Join(e.dataDir, "keys")
	if err := os.RemoveAll(keys); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keys, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.post(t, "/api/events", "application/json", `[{"type":"pageview","url":"/a"}]`)
	if r.status != 500 || r.body.Accepted != 0 || !strings.Contains(r.body.Error, "pseudonyms unavailable") {
		t.Fatalf("got %+v", r)
	}
	if n := e.query(t, "SELECT count() FROM "+e.db.Names.Raw+".events"); strings.TrimSpace(n) != "0" {
		t.Fatalf("%s rows stored", n)
	}
	if !strings.Contains(e.logs.String(), "events not processed") {
		t.Fatal("the failure was not logged")
	}
}

func gz(s string) string {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.String()
}

// Compressed bodies are read once, in every encoding clients use.
func TestCompressedBodiesAreRead(t *testing.T) {
	e := startEdge(t)
	body := `[{"type":"pageview","url":"/gz"}]`
	var deflated, brotlied bytes.Buffer
	zw := zlib.NewWriter(&deflated)
	_, _ = zw.Write([]byte(body))
	_ = zw.Close()
	bw := brotli.NewWriter(&brotlied)
	_, _ = bw.Write([]byte(body))
	_ = bw.Close()
	for enc, data := range map[string]string{"gzip": gz(body), "deflate": deflated.String(), "br": brotlied.String(), "identity": body} {
		r := e.post(t, "/api/events", "application/json", data, "Content-Encoding", enc)
		if r.status != 202 || r.body.Accepted != 1 {
			t.Fatalf("%s: %+v", enc, r)
		}
	}
	seg := gz(`{"batch":[{"type":"page","properties":{"url":"https://shop.example/seg"}}]}`)
	if r := e.post(t, "/v1/batch", "application/json", seg, "Content-Encoding", "gzip"); r.status != 202 || r.body.Accepted != 1 {
		t.Fatalf("segment gzip: %+v", r)
	}
	if n := e.query(t, "SELECT count() FROM "+e.db.Names.Raw+".events"); n != "5\n" {
		t.Fatalf("stored %q rows, want 5", n)
	}
}

// A full spool answers 429 with Retry-After, and /metrics counts refusals
// by status.
func TestFullSpoolIs429AndCounted(t *testing.T) {
	e := startEdgeWith(t, chtest.Migrated(t), ingesttest.Options{InsertInterval: time.Hour, SpoolMaxBytes: 4096})
	var r reply
	for i := 0; i < 50; i++ {
		if r = e.post(t, "/api/events", "application/json", `[{"type":"pageview","url":"/full"}]`); r.status != 202 {
			break
		}
	}
	if r.status != 429 || r.header.Get("Retry-After") == "" || !strings.Contains(r.body.Error, "spool is full") {
		t.Fatalf("got %+v, want 429 once the spool is full", r)
	}
	e.post(t, "/api/events", "application/xml", "<x/>") // a 415 too
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`herd_ingest_requests_refused_total{code="429"} 1`, `herd_ingest_requests_refused_total{code="415"} 1`} {
		if !strings.Contains(string(m), want+"\n") {
			t.Fatalf("metrics lack %s:\n%s", want, m)
		}
	}
}

// An import dated in the future is refused: its rows would escape retention
// and need a key made before its day (none is).
func TestFutureDatedImportIsRefused(t *testing.T) {
	e := startEdge(t)
	body := `[{"type":"pageview","url":"/a","ts":1893456000000},{"type":"pageview","url":"/b","ts":` + strconv.FormatInt(time.Now().Add(-time.Hour).UnixMilli(), 10) + `}]`
	r := e.post(t, "/api/events", "application/json", body, "X-Herd-Import", "1")
	if r.status != 202 || r.body.Accepted != 1 || len(r.body.Problems) != 1 || r.body.Problems[0] != (ingest.Problem{Index: 0, Field: "ts", Reason: "in the future"}) {
		t.Fatalf("got %+v", r)
	}
	keys, err := os.ReadFile(e.KeyFile())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(keys), "2030") {
		t.Fatalf("a key was made for 2030: %s", keys)
	}
}

// Identifier fields the shop's patterns do not fit, and slots the layout
// does not declare, are stored as "unlisted", not as sent.
func TestUnknownIdentifiersAreUnlisted(t *testing.T) {
	sites := configuredSites(t, "sites:\n  - name: shop\n    origins: ['*']\n    identifiers: {product_id: 'P[0-9]{5}', category: '[a-z-]+', variant: '[AB]'}\n")
	e := startEdgeWith(t, chtest.Migrated(t), ingesttest.Options{Sites: sites})
	body := `[{"site":"shop","type":"product_view","url":"/p","product":{"id":"P00042","category":"shoes"},"variant":"B"},
	 {"site":"shop","type":"product_view","url":"/p","product":{"id":"Jane Doe Elm Street 5","category":"Jane Doe"},"variant":"jane"},
	 {"site":"shop","type":"slot_impression","url":"/","slot":"home-hero-1"},
	 {"site":"shop","type":"slot_impression","url":"/","slot":"jane-doe-promo"}]`
	if r := e.post(t, "/api/events", "application/json", body); r.status != 202 || r.body.Accepted != 4 {
		t.Fatalf("got %+v", r)
	}
	got := e.query(t, "SELECT product_id, product_category, variant, slot FROM "+e.db.Names.Raw+".events ORDER BY type, product_id, slot")
	want := "P00042\tshoes\tB\t\nunlisted\tunlisted\tunlisted\t\n\t\t\thome-hero-1\n\t\t\tunlisted\n"
	if got != want {
		t.Fatalf("stored:\n%s\nwant:\n%s", got, want)
	}
}

// A configured site takes history imports only with its write key; the
// configuration-free demo site takes them from anyone.
func TestImportsNeedTheSiteWriteKey(t *testing.T) {
	sites := configuredSites(t, "sites:\n  - name: shop\n    origins: ['*']\n    allow_import: true\n    write_keys: [0123456789abcdef-import]\n")
	e := startEdgeWith(t, chtest.Migrated(t), ingesttest.Options{Sites: sites})
	body := `[{"site":"shop","type":"pageview","url":"/old","ts":` + strconv.FormatInt(time.Now().Add(-2*time.Hour).UnixMilli(), 10) + `}]`
	if r := e.post(t, "/api/events", "application/json", body, "X-Herd-Import", "1"); r.status != 400 || !strings.Contains(r.body.Error, "write key") {
		t.Fatalf("import without the key: %+v", r)
	}
	if r := e.post(t, "/api/events", "application/json", body, "X-Herd-Import", "1", "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("wrong-key-0123456789:"))); r.status != 400 {
		t.Fatalf("import with another key: %+v", r)
	}
	if r := e.post(t, "/api/events", "application/json", body, "X-Herd-Import", "1", "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("0123456789abcdef-import:"))); r.status != 202 || r.body.Accepted != 1 {
		t.Fatalf("import with the site's key: %+v", r)
	}
}

// Imports are the operator's to allow: without a sites file and without
// --allow-imports nobody imports; allowed, an import reaches back the raw
// retention plus the publication grace (a day of 1999 is no import), unless
// the operator says it is a back-fill.
func TestImportsAreTheOperatorsToAllow(t *testing.T) {
	recent := strconv.FormatInt(time.Now().Add(-time.Hour).UnixMilli(), 10)
	old := strconv.FormatInt(time.Date(1999, 6, 1, 12, 0, 0, 0, time.UTC).UnixMilli(), 10)
	body := `[{"type":"pageview","url":"/recent","ts":` + recent + `},{"type":"pageview","url":"/1999","ts":` + old + `}]`
	for _, c := range []struct {
		policy   ingest.ImportPolicy
		accepted int
		reason   string
	}{
		{ingest.ImportPolicy{}, 0, "allow-imports"},
		{ingest.ImportPolicy{Open: true}, 1, "a back-fill needs --import-backfill"},
		{ingest.ImportPolicy{Open: true, Backfill: true}, 2, ""},
	} {
		e := startEdgeWith(t, chtest.Migrated(t), ingesttest.Options{Imports: &c.policy})
		r := e.post(t, "/api/events", "application/json", body, "X-Herd-Import", "1")
		if r.body.Accepted != c.accepted || (c.reason != "" && (len(r.body.Problems) == 0 || !strings.Contains(r.body.Problems[len(r.body.Problems)-1].Reason, c.reason))) {
			t.Errorf("%+v: %+v", c.policy, r)
		}
	}
}

// Free text sent where identifiers go — a name in a product id, an address
// in a list, personal words in a campaign — is stored as "unlisted" even
// on a site that declared no pattern for those fields (product ids, lists
// and variants are one token), and on one that declared UTM patterns;
// every replacement is counted in /metrics by field.
func TestFreeTextInIdentifierFieldsIsUnlisted(t *testing.T) {
	sites := configuredSites(t, "sites:\n  - name: shop\n    origins: ['*']\n    identifiers: {utm_campaign: '[a-z0-9_-]+', utm_source: '[a-z0-9.]+'}\n")
	e := startEdgeWith(t, chtest.Migrated(t), ingesttest.Options{Sites: sites})
	body := `[{"site":"shop","type":"product_view","url":"/p?utm_source=newsletter&utm_campaign=winter_sale","product":{"id":"SKU-1","list":"search"},"variant":"B"},
	 {"site":"shop","type":"product_view","url":"/p?utm_source=Jane+Doe&utm_campaign=Jane+Doe+12+High+Street","product":{"id":"Jane Doe","list":"12 High Street, Leeds"},"variant":"Jane Doe"}]`
	if r := e.post(t, "/api/events", "application/json", body); r.status != 202 || r.body.Accepted != 2 {
		t.Fatalf("got %+v", r)
	}
	got := e.query(t, "SELECT product_id, list, variant, utm_source, utm_campaign FROM "+e.db.Names.Raw+".events ORDER BY product_id")
	want := "SKU-1\tsearch\tB\tnewsletter\twinter_sale\nunlisted\tunlisted\tunlisted\tunlisted\tunlisted\n"
	if got != want {
		t.Fatalf("stored:\n%s\nwant:\n%s", got, want)
	}
	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, f := range []string{"product_id", "list", "variant", "utm_source", "utm_campaign"} {
		if !strings.Contains(string(m), `herd_ingest_identifiers_unlisted_total{field="`+f+`"} 1`) {
			t.Errorf("/metrics does not count the unlisted %s:\n%s", f, m)
		}
	}
}
