package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/herd-analytics/herd/ingest"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/local"
	"github.com/herd-analytics/herd/internal/probe"
	"github.com/herd-analytics/herd/internal/webserver"
)

// Load shape of the ingest benchmark: connections held open by the load
// generator (browsers behind a load balancer hold many) for every run, herd
// and floor alike.
const (
	ingestConns  = 256
	ingestWindow = 5 * time.Second
	ingestPairs  = 3
)

// benchIngest measures the whole edge — HTTP, decode, desensitize,
// pseudonymize, spool fsync before the 202, insert into ClickHouse — as the
// real `herd ingest` process, against the HTTP floor: a process serving
// Fiber with the same configuration and an empty handler, under the same
// load from the same generator. Three processes share the two cores: the
// generator (this one), the server under test, and ClickHouse.
func benchIngest(ctx context.Context, c *clickhouse.Client, srv *local.Server, dir string) (string, error) {
	bin, err := buildHerd(ctx, dir)
	if err != nil {
		return "", err
	}
	herd, err := startChild(ctx, "ingest", bin, []string{"ingest", "--data-dir", filepath.Join(dir, "ingest"), "--ingest-addr", "127.0.0.1:0", "--log-level", "warn", "--allow-imports"},
		"HERD_CLICKHOUSE="+srv.Writer().URL())
	if err != nil {
		return "", err
	}
	defer herd.stop()
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	floor, err := startChild(ctx, "floor", self, []string{"-serve-floor"})
	if err != nil {
		return "", err
	}
	defer floor.stop()
	const table = "herd_raw.events"

	var s strings.Builder
	fmt.Fprintf(&s, "Measured %s on %s/%s, %d cores shared by three processes: the load generator (%d keep-alive connections, fasthttp client, closed loop), the server under test, and the managed ClickHouse. The server is the real `herd ingest` binary; the floor is Fiber with the same configuration and an empty handler answering 202. %d pairs of %v windows after a warm-up pair, alternating herd and the floor.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), ingestConns, ingestPairs, ingestWindow)
	s.WriteString("| request | herd events/s (median) | floor events/s (median) | ratio herd/floor (median, min–max) | herd CPU µs/event | ClickHouse CPU µs/event | group commit: mean fsync, rows | stored in ClickHouse |\n|---|---|---|---|---|---|---|---|\n")
	rates := map[int]float64{}
	for _, perReq := range []int{20, 1} {
		var hr, fr, ratios, herdCPU, chCPU []float64
		before, err := countRows(ctx, c, table)
		if err != nil {
			return "", err
		}
		acked := int64(0)
		commitSecs0, commits0 := scrapeHistogram(herd.url, "herd_ingest_spool_commit_seconds")
		commitRows0, _ := scrapeHistogram(herd.url, "herd_ingest_spool_commit_rows")
		for i := 0; i <= ingestPairs; i++ {
			h0, c0 := cpuSeconds(herd.pid()), cpuSeconds(srv.PID())
			a := closedLoop(ctx, herd.url, perReq, ingestWindow)
			h1, c1 := cpuSeconds(herd.pid()), cpuSeconds(srv.PID())
			b := closedLoop(ctx, floor.url, perReq, ingestWindow)
			acked += a.events
			if a.failed > 0 || b.failed > 0 {
				return "", fmt.Errorf("ingest bench: %d herd and %d floor requests failed (last: %v %v)", a.failed, b.failed, a.lastErr, b.lastErr)
			}
			if i == 0 {
				continue // warm-up
			}
			hr, fr = append(hr, a.rate()), append(fr, b.rate())
			ratios = append(ratios, a.rate()/b.rate())
			herdCPU = append(herdCPU, (h1-h0)/float64(a.events)*1e6)
			chCPU = append(chCPU, (c1-c0)/float64(a.events)*1e6)
			fmt.Fprintf(os.Stderr, "ingest %d/request pair %d: herd %.0f ev/s, floor %.0f ev/s\n", perReq, i, a.rate(), b.rate())
		}
		rates[perReq] = median(hr)
		commitSecs, commits := scrapeHistogram(herd.url, "herd_ingest_spool_commit_seconds")
		commitRows, _ := scrapeHistogram(herd.url, "herd_ingest_spool_commit_rows")
		commitSecs, commitRows, commits = commitSecs-commitSecs0, commitRows-commitRows0, commits-commits0
		// Every acknowledged event must reach ClickHouse.
		deadline := time.Now().Add(2 * time.Minute)
		var after uint64
		for {
			if after, err = countRows(ctx, c, table); err != nil {
				return "", err
			}
			if int64(after-before) >= acked || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if int64(after-before) != acked {
			return "", fmt.Errorf("ingest bench: %d events acknowledged, %d stored", acked, after-before)
		}
		fmt.Fprintf(&s, "| %d event(s) | %.0f | %.0f | **%.2f** (%.2f–%.2f) | %.1f | %.1f | %.2f ms, %.0f | %d of %d acknowledged |\n",
			perReq, median(hr), median(fr), median(ratios), slices.Min(ratios), slices.Max(ratios),
			median(herdCPU), median(chCPU), commitSecs/commits*1000, commitRows/commits, after-before, acked)
	}
	peak, err := herd.peakRSS()
	if err != nil {
		return "", err
	}
	floorPeak, _ := floor.peakRSS()

	// Latency at half the rate herd sustained with 1-event requests, open
	// loop: requests are sent on schedule whether or not earlier ones have
	// been answered, and latency counts from the scheduled time, so a stall
	// shows up in full (no coordinated omission).
	half := rates[1] / 2
	s.WriteString("\nLatency of 1-event requests at half herd's sustained 1-event rate, open loop (requests sent on a fixed schedule, latency from the scheduled send time):\n\n")
	s.WriteString("| server | rate (req/s) | p50 | p90 | p99 | p99.9 | max | spool commits (fsync) over 2 / 10 ms |\n|---|---|---|---|---|---|---|---|\n")
	for _, srv := range []*child{herd, floor} {
		slow0 := commitsOver(herd.url)
		lat, err := openLoop(ctx, srv.url, half, ingestWindow)
		if err != nil {
			return "", err
		}
		q := func(p float64) string {
			return lat[int(p*float64(len(lat)-1))].Round(10 * time.Microsecond).String()
		}
		slow := "–"
		if srv == herd {
			d := commitsOver(herd.url)
			for i := range d {
				d[i] -= slow0[i]
			}
			slow = fmt.Sprintf("%.1f%% / %.1f%% of %.0f", 100*d[1]/d[0], 100*d[2]/d[0], d[0])
		}
		fmt.Fprintf(&s, "| %s | %.0f | %s | %s | %s | %s | %s | %s |\n", srv.name, float64(len(lat))/ingestWindow.Seconds(), q(0.5), q(0.9), q(0.99), q(0.999), q(1), slow)
	}
	fmt.Fprintf(&s, "\nPeak RSS (VmHWM) after all of the above: herd ingest **%.0f MiB**, floor %.0f MiB.\n", float64(peak)/(1<<20), float64(floorPeak)/(1<<20))
	s.WriteString("\nTargets (issue 3): ≥ 200,000 events/s with 20-event requests; ≥ 60,000 with 1-event requests, ratio ≥ 0.8 to the floor, p99 ≤ 2 ms at half that rate; peak RSS ≤ 200 MiB.\n")
	return s.String(), nil
}

// serveFloor is the floor process (benchreport -serve-floor): Fiber as herd
// ingest configures it, with a handler that does nothing.
func serveFloor() error {
	app := webserver.NewApp(webserver.AppConfig{
		Name: "floor", ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		BodyLimit: ingest.MaxBodyBytes, ProxyHeader: "X-Forwarded-For", TrustedProxies: []string{"127.0.0.1"},
	}, probe.NewReadiness(nil))
	app.Post("/api/events", func(c *fiber.Ctx) error {
		return c.Status(202).JSON(ingest.Answer{Dropped: map[string]int{}})
	})
	srv, err := webserver.Start(app, "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("floor: http://%s\n", srv.Addr())
	// The parent closes stdin to stop us.
	_, _ = io.Copy(io.Discard, os.Stdin)
	return srv.Shutdown(context.Background())
}

// child is a server process under test.
type child struct {
	name string
	cmd  *exec.Cmd
	url  string
	in   io.WriteCloser
}

// execCommand is a command whose output goes to this process's stderr.
func execCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd
}

// startChild runs a server and waits for the "name: URL" line it prints.
func startChild(ctx context.Context, name, bin string, args []string, env ...string) (*child, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, in: in}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == name {
			c.url = strings.TrimSpace(v)
			break
		}
	}
	if c.url == "" {
		c.stop()
		return nil, fmt.Errorf("%s printed no address", name)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) stop() {
	_ = c.in.Close()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// peakRSS is the process's high-water resident set (VmHWM), in bytes.
func (c *child) peakRSS() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.pid()))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// scrapeMetrics reads herd's /metrics: each sample line's value by its
// name with labels ("herd_ingest_spool_commit_seconds_count",
// `herd_ingest_spool_commit_seconds_bucket{le="0.01"}`).
func scrapeMetrics(base string) map[string]float64 {
	m := map[string]float64{}
	status, body, err := fasthttp.Get(nil, base+"/metrics")
	if err != nil || status != fasthttp.StatusOK {
		return m
	}
	for _, line := range strings.Split(string(body), "\n") {
		if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
			m[line[:i]], _ = strconv.ParseFloat(line[i+1:], 64)
		}
	}
	return m
}

// scrapeHistogram reads a histogram's sum and count from herd's /metrics.
func scrapeHistogram(base, name string) (sum, count float64) {
	m := scrapeMetrics(base)
	return m[name+"_sum"], m[name+"_count"]
}

// commitsOver reads herd's spool commits: all, over 2 ms, over 10 ms.
func commitsOver(base string) [3]float64 {
	const name = "herd_ingest_spool_commit_seconds"
	m := scrapeMetrics(base)
	n := m[name+"_count"]
	return [3]float64{n, n - m[name+`_bucket{le="0.002"}`], n - m[name+`_bucket{le="0.01"}`]}
}

// cpuSeconds is a process's user+system CPU time so far.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

func countRows(ctx context.Context, c *clickhouse.Client, table string) (uint64, error) {
	var n uint64
	err := c.Select(ctx, "SELECT count() FROM "+table, func(b *proto.Block) error {
		n = clickhouse.Get[uint64](b, 0, 0)
		return nil
	})
	return n, err
}

type loadResult struct {
	events  int64
	failed  int64
	lastErr error
	elapsed time.Duration
}

func (r loadResult) rate() float64 { return float64(r.events) / r.elapsed.Seconds() }

// benchBodies are requests of perReq product views, with distinct products.
func benchBodies(perReq int) [][]byte {
	bodies := make([][]byte, 16)
	for i := range bodies {
		var b strings.Builder
		b.WriteString("[")
		for j := range perReq {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"type":"product_view","url":"https://shop.example/product/p%d?utm_source=bench","referrer":"https://www.google.com/","product":{"id":"p%d","category":"shoes","price":59.9}}`, i*perReq+j, i*perReq+j)
		}
		b.WriteString("]")
		bodies[i] = []byte(b.String())
	}
	return bodies
}

const benchUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"

func newBenchClient(base string) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr: strings.TrimPrefix(base, "http://"), MaxConns: ingestConns,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		MaxIdleConnDuration: time.Minute,
	}
}

// send posts one body as shopper n of connection g and says whether it was
// answered 202.
func send(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, base string, body []byte, g, n int) (bool, error) {
	req.Reset()
	req.SetRequestURI(base + "/api/events")
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.SetUserAgent(benchUA)
	req.Header.Set("X-Forwarded-For", "198.51."+strconv.Itoa(g%250)+"."+strconv.Itoa(n%250))
	req.SetBodyRaw(body)
	if err := hc.Do(req, resp); err != nil {
		return false, err
	}
	return resp.StatusCode() == fasthttp.StatusAccepted, nil
}

// closedLoop sends requests of perReq events from ingestConns connections,
// each sending its next request when the last is answered, for window.
func closedLoop(ctx context.Context, base string, perReq int, window time.Duration) loadResult {
	return closedLoopConns(ctx, base, perReq, window, ingestConns)
}

// closedLoopConns is closedLoop with conns connections.
func closedLoopConns(ctx context.Context, base string, perReq int, window time.Duration, conns int) loadResult {
	hc := newBenchClient(base)
	defer hc.CloseIdleConnections()
	bodies := benchBodies(perReq)
	var events, failed atomic.Int64
	var errMu sync.Mutex
	var lastErr error
	deadline := time.Now().Add(window)
	start := time.Now()
	eachConn(hc, base, bodies, conns, func(g int, send func(n int) (bool, error)) {
		for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
			ok, err := send(n)
			switch {
			case ok:
				events.Add(int64(perReq))
			default:
				failed.Add(1)
				errMu.Lock()
				lastErr = err
				errMu.Unlock()
			}
		}
	})
	return loadResult{events: events.Load(), failed: failed.Load(), lastErr: lastErr, elapsed: time.Since(start)}
}

// eachConn runs f once per connection, on its own goroutine with its own
// request and response, and waits for all; send(n) posts the connection's
// n-th request and says whether it was answered 202.
func eachConn(hc *fasthttp.HostClient, base string, bodies [][]byte, conns int, f func(g int, send func(n int) (bool, error))) {
	var wg sync.WaitGroup
	for g := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			f(g, func(n int) (bool, error) {
				ok, err := send(hc, req, resp, base, bodies[(g+n)%len(bodies)], g, n)
				if !ok && err == nil {
					err = fmt.Errorf("status %d", resp.StatusCode())
				}
				return ok, err
			})
		}()
	}
	wg.Wait()
}

// openLoop sends 1-event requests at rate per second for window, on
// schedule, and returns every request's latency from its scheduled time,
// sorted.
func openLoop(ctx context.Context, base string, rate float64, window time.Duration) ([]time.Duration, error) {
	hc := newBenchClient(base)
	defer hc.CloseIdleConnections()
	bodies := benchBodies(1)
	total := int(rate * window.Seconds())
	jobs := make(chan time.Time, total)
	var mu sync.Mutex
	lat := make([]time.Duration, 0, total)
	var failed atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		eachConn(hc, base, bodies, ingestConns, func(g int, send func(n int) (bool, error)) {
			local := make([]time.Duration, 0, total/ingestConns+1)
			n := 0
			for at := range jobs {
				ok, _ := send(n)
				n++
				if !ok {
					failed.Add(1)
					continue
				}
				local = append(local, time.Since(at))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		})
	}()
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	for i := 0; i < total && ctx.Err() == nil; {
		// Release every request whose time has come, then sleep a little.
		now := time.Now()
		for ; i < total; i++ {
			at := start.Add(time.Duration(i) * interval)
			if at.After(now) {
				break
			}
			jobs <- at
		}
		time.Sleep(100 * time.Microsecond)
	}
	close(jobs)
	<-done
	if f := failed.Load(); f > 0 {
		return nil, fmt.Errorf("open loop against %s: %d requests failed", base, f)
	}
	slices.Sort(lat)
	return lat, nil
}
