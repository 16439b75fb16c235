package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/andybalholm/brotli"

	"github.com/herd-analytics/herd/ingest/ingesttest"
	"github.com/herd-analytics/herd/ingest/spool"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
)

// managedPID is the pid of the ClickHouse a herd process started under dir.
func managedPID(t *testing.T, dir string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "clickhouse", "server.pid"))
	if err != nil {
		t.Fatal(err)
	}
	// "<herd pid> <clickhouse pid>"
	fields := strings.Fields(string(data))
	pid, err := strconv.Atoi(fields[len(fields)-1])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// timedGet is one GET with a client timeout, and how long it took.
func timedGet(t *testing.T, url string) (int, string, time.Duration) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	start := time.Now()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error(), time.Since(start)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), time.Since(start)
}

func postEvents(t *testing.T, url string, ids ...string) int {
	t.Helper()
	var b strings.Builder
	b.WriteString("[")
	for i, id := range ids {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":%q,"type":"product_view","url":"/product/%s","product":{"id":%q}}`, id, id, id)
	}
	b.WriteString("]")
	req, _ := http.NewRequest("POST", url+"/api/events", strings.NewReader(b.String()))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A ClickHouse that is alive but answers nothing (SIGSTOP): readiness says
// so at once, events are still taken into the spool, SIGTERM ends herd in
// time, and after a restart every acknowledged event is stored once.
func TestFrozenClickHouse(t *testing.T) {
	chtest.Servers(t)
	dir := t.TempDir()
	ingestAddr, dashAddr := freeAddr(t), freeAddr(t)
	args := []string{"serve", "--data-dir", dir, "--ingest-addr", ingestAddr, "--dashboard-addr", dashAddr, "--log-level", "warn"}
	herd := startHerdProcess(t, args...)
	ingestURL, dashURL := "http://"+ingestAddr, "http://"+dashAddr
	waitReady(t, ingestURL)
	waitReady(t, dashURL)
	var acked []string
	for i := range 3 {
		ids := []string{fmt.Sprintf("before-%d-a", i), fmt.Sprintf("before-%d-b", i)}
		if code := postEvents(t, ingestURL, ids...); code != 202 {
			t.Fatalf("before the freeze: %d", code)
		}
		acked = append(acked, ids...)
	}

	pid := managedPID(t, dir)
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	// Readiness keeps its last answer a second: every answer is prompt,
	// and the freeze shows within a few.
	for _, u := range []string{ingestURL, dashURL} {
		for deadline := time.Now().Add(5 * time.Second); ; {
			code, body, took := timedGet(t, u+"/readyz")
			if took > 3*time.Second {
				t.Fatalf("%s/readyz: %d %q after %v, want a prompt answer", u, code, body, took)
			}
			if code == 503 {
				t.Logf("%s/readyz with ClickHouse frozen: %d in %v", u, code, took)
				if !strings.Contains(body, "clickhouse") {
					t.Fatalf("%s/readyz: %q, want the reason", u, body)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s/readyz: still %d 5 s after the freeze", u, code)
			}
		}
	}
	for i := range 3 {
		ids := []string{fmt.Sprintf("frozen-%d-a", i), fmt.Sprintf("frozen-%d-b", i)}
		if code := postEvents(t, ingestURL, ids...); code != 202 {
			t.Fatalf("while frozen: %d, want 202 (spooled)", code)
		}
		acked = append(acked, ids...)
	}

	// SIGTERM under load: herd stops within the documented 20 s even so.
	load := ingesttest.StartLoad(ingestURL, "S", "product_view")
	load.WaitRequests(t, 10, 30*time.Second)
	start := time.Now()
	if err := herd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- herd.Wait() }()
	select {
	case err := <-exited:
		took := time.Since(start)
		t.Logf("herd exited (%v) %v after SIGTERM with ClickHouse frozen, under load", err, took.Round(100*time.Millisecond))
		if err != nil {
			t.Fatalf("herd did not stop cleanly: %v\n%s", err, herd.Stdout)
		}
		if took > 20*time.Second {
			t.Errorf("herd stopped %v after SIGTERM, over the documented 20 s", took.Round(100*time.Millisecond))
		}
	case <-time.After(30 * time.Second):
		_ = herd.Process.Kill()
		t.Fatal("herd still running 30 s after SIGTERM with ClickHouse frozen")
	}
	for id := range load.Stop() {
		acked = append(acked, id)
	}
	_ = syscall.Kill(pid, syscall.SIGCONT) // herd killed it; let it die
	chtest.WaitFor(t, 10*time.Second, func() bool { return processExited(pid) })

	// Started again on the same data, herd inserts what it spooled.
	startHerdProcess(t, args...)
	waitReady(t, ingestURL)
	// Every acknowledged event stored, none twice (a request cut by the
	// shutdown may be stored without its answer arriving: more stored
	// events than acknowledged are no loss).
	var missing int
	chtest.WaitFor(t, 60*time.Second, func() bool {
		stored := map[string]bool{}
		for _, id := range strings.Fields(sqlOut(t, dir, "SELECT DISTINCT product_id FROM herd_raw.events")) {
			stored[id] = true
		}
		missing = 0
		for _, id := range acked {
			if !stored[id] {
				missing++
			}
		}
		return missing == 0
	})
	if twice := strings.TrimSpace(sqlOut(t, dir, "SELECT count() FROM (SELECT product_id FROM herd_raw.events GROUP BY product_id HAVING uniqExact(event_id) > 1)")); twice != "0" {
		t.Fatalf("%s events stored twice", twice)
	}
	t.Logf("%d acknowledged events stored, each once", len(acked))
}

// sqlOut runs herd sql on dir's running managed ClickHouse and returns
// the answer's rows (TSV, without the header).
func sqlOut(t *testing.T, dir, q string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"sql", "--data-dir", dir, q + " FORMAT TSV"}, &out, &errb); err != nil {
		t.Fatalf("%s: %v %s", q, err, errb.String())
	}
	return out.String()
}

var vmHWM = regexp.MustCompile(`VmHWM:\s+(\d+) kB`)

// peakRSS is a process's peak resident memory in MiB.
func peakRSS(t *testing.T, pid int) float64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := vmHWM.FindSubmatch(data)
	if m == nil {
		t.Fatal("no VmHWM")
	}
	kb, _ := strconv.Atoi(string(m[1]))
	return float64(kb) / 1024
}

// 64 compressed bombs at once, gzip and brotli (100 MiB of spaces each):
// each gets 413, and herd ingest's memory stays under its documented peak.
func TestGzipBombsKeepMemoryBounded(t *testing.T) {
	chtest.Servers(t)
	// The real binary, as deployed: the test binary runs under the race
	// detector, which multiplies memory.
	bin := filepath.Join(t.TempDir(), "herd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	herd := exec.Command(bin, "ingest", "--data-dir", dir, "--ingest-addr", addr, "--log-level", "warn")
	var herdOut bytes.Buffer
	herd.Stdout, herd.Stderr = &herdOut, &herdOut
	if err := herd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = herd.Process.Signal(syscall.SIGTERM)
		_ = herd.Wait()
	})
	url := "http://" + addr
	waitReady(t, url)
	// A gzip and a brotli bomb: 100 MiB of spaces each, a few hundred KiB
	// compressed.
	bombs := map[string][]byte{}
	for _, enc := range []string{"gzip", "br"} {
		var z bytes.Buffer
		var w io.WriteCloser
		if enc == "gzip" {
			w, _ = gzip.NewWriterLevel(&z, gzip.BestCompression)
		} else {
			w = brotli.NewWriterLevel(&z, brotli.BestCompression)
		}
		_, _ = w.Write([]byte(`[{"type":"pageview","url":"/`))
		chunk := bytes.Repeat([]byte(" "), 1<<20)
		for range 100 {
			_, _ = w.Write(chunk)
		}
		_, _ = w.Write([]byte(`"}]`))
		_ = w.Close()
		bombs[enc] = z.Bytes()
	}
	before := peakRSS(t, herd.Process.Pid)
	const parallel = 64
	results := make(chan string, parallel)
	for i := range parallel {
		enc := []string{"gzip", "br"}[i%2]
		go func() {
			req, _ := http.NewRequest("POST", url+"/api/events", bytes.NewReader(bombs[enc]))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Content-Encoding", enc)
			resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
			if err != nil {
				results <- err.Error()
				return
			}
			defer resp.Body.Close()
			var ans struct{ Error string }
			_ = json.NewDecoder(resp.Body).Decode(&ans)
			results <- fmt.Sprintf("%d %s", resp.StatusCode, ans.Error)
		}()
	}
	for range parallel {
		if r := <-results; !strings.HasPrefix(r, "413 ") {
			t.Fatalf("bomb answered %q, want 413", r)
		}
	}
	peak := peakRSS(t, herd.Process.Pid)
	t.Logf("%d gzip and brotli bombs in parallel (%d and %d KiB, 100 MiB inflated each): peak RSS %.0f MiB, %.0f MiB before",
		parallel, len(bombs["gzip"])>>10, len(bombs["br"])>>10, peak, before)
	// At most 2 × GOMAXPROCS bodies inflate at once, each refused at 1 MiB
	// (and its decoder's state); what the garbage adds the role's soft
	// memory limit (160 MiB) holds: docs/operations.md's 200 MiB peak.
	if peak > 200 {
		t.Fatalf("peak RSS %.0f MiB (%.0f MiB before) under %d bombs, want under 200", peak, before, parallel)
	}
	if code := postEvents(t, url, "after-the-bombs"); code != 202 {
		t.Fatalf("a good request after the bombs: %d", code)
	}
}

// A damaged spool segment left in the data directory neither stops herd
// nor the segments after it: it is moved to quarantine and counted, and the
// rows of the good segment after it are inserted.
func TestDamagedSpoolSegmentIsQuarantined(t *testing.T) {
	chtest.Servers(t)
	dir := t.TempDir()
	spoolDir := filepath.Join(dir, "spool")
	if err := os.MkdirAll(spoolDir, 0o700); err != nil {
		t.Fatal(err)
	}
	damaged, err := os.ReadFile(filepath.Join("..", "..", "ingest", "spool", "testdata", "damaged-segment.arrows"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(spoolDir, "seg-00000000000000000001.arrows"), damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	writeGoodSegment(t, spoolDir, 25)

	addr := freeAddr(t)
	herd := startHerdProcess(t, "ingest", "--data-dir", dir, "--ingest-addr", addr, "--log-level", "warn")
	url := "http://" + addr
	waitReady(t, url)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n := strings.TrimSpace(sqlOut(t, dir, "SELECT count() FROM herd_raw.events WHERE site = 'spooled'")); n == "25" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("%s of 25 rows of the good segment inserted", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(spoolDir, "quarantine", "seg-00000000000000000001.arrows")); err != nil {
		t.Fatalf("damaged segment not in quarantine: %v", err)
	}
	_, metrics, _ := timedGet(t, url+"/metrics")
	if !strings.Contains(metrics, "herd_ingest_spool_quarantined_total 1\n") {
		t.Fatalf("quarantine not counted:\n%s", metrics)
	}
	if herd.ProcessState != nil {
		t.Fatal("herd exited")
	}
}

// writeGoodSegment leaves n rows in a sealed spool segment under dir, as a
// herd that stopped before inserting them would.
func writeGoodSegment(t *testing.T, dir string, n int) {
	t.Helper()
	sp, err := spool.Open(spool.Config{Dir: dir, Store: refuseInsert{}, Table: "herd_raw.events"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]spool.Row, n)
	for i := range rows {
		rows[i] = spool.Row{Site: "spooled", Received: time.Now().UTC().Truncate(time.Second), Type: 1, Visitor: uint64(i + 1),
			Path: "/", PageType: "home", Device: "desktop", Browser: "Firefox", OS: "Linux", SearchResults: -1}
		rows[i].EventID[0], rows[i].EventID[1] = byte(i), 0x5a
	}
	if err := sp.Append(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
}

// refuseInsert is a store the test never lets the spool reach.
type refuseInsert struct{}

func (refuseInsert) Insert(context.Context, string, *proto.Block, ...clickhouse.Option) error {
	return errors.New("not in this test")
}

// processExited reports whether process pid is gone or a zombie nobody reaped yet.
func processExited(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: the state follows the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z'
}
