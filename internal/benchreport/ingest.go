package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/gofiber/fiber/v2"

	"github.com/herd-analytics/herd/ingest"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/probe"
	"github.com/herd-analytics/herd/internal/webserver"
)

// benchIngest measures the whole edge (HTTP, decode, pseudonymize, spool
// fsync, insert) against Fiber serving an empty handler under the same load
// from the same load generator: the HTTP floor on this machine.
func benchIngest(ctx context.Context, c *clickhouse.Client, dir string, window time.Duration, pairs int) (string, error) {
	spool, err := ingest.OpenSpool(ingest.SpoolConfig{Dir: filepath.Join(dir, "spool")}, nil, nil)
	if err != nil {
		return "", err
	}
	keys, err := ingest.OpenKeyRing("", nil)
	if err != nil {
		return "", err
	}
	const table = "herd_raw.events"
	m := ingest.NewMetrics()
	w := ingest.NewWriter(ingest.WriterConfig{Table: table}, c, spool, m, nil)
	go w.Run()
	defer w.Close(context.Background())
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go spool.Run(rctx, c, table)
	srv := ingest.NewServer(ingest.Config{TrustedProxies: []string{"127.0.0.1"}}, nil, ingest.NewPipeline(keys, ingest.NewSessions(30*time.Minute)), w, m, nil)
	herd, err := webserver.Start(srv.App(probe.NewReadiness(c)), "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer herd.Shutdown(context.Background())
	empty := fiber.New(fiber.Config{DisableStartupMessage: true, BodyLimit: ingest.MaxBodyBytes})
	empty.Post("/api/events", func(c *fiber.Ctx) error {
		return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"accepted": 0})
	})
	floor, err := webserver.Start(empty, "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer floor.Shutdown(context.Background())

	var s strings.Builder
	fmt.Fprintf(&s, "Measured %s on %s/%s, %d cores, one process: the load generator (64 keep-alive clients, net/http), herd's ingest and the managed ClickHouse share the machine. %d pairs of %v windows, alternating herd and the floor.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), pairs, window)
	s.WriteString("| request | herd events/s (median) | floor events/s (median) | ratio herd/floor (median, min–max) | herd p50 / p99 latency | stored in ClickHouse |\n|---|---|---|---|---|---|\n")
	for _, perReq := range []int{20, 1} {
		var hr, fr, ratios []float64
		var lat []time.Duration
		before, err := countRows(ctx, c, table)
		if err != nil {
			return "", err
		}
		acked := int64(0)
		for i := 0; i <= pairs; i++ {
			a, al := load(ctx, "http://"+herd.Addr(), perReq, window)
			b, _ := load(ctx, "http://"+floor.Addr(), perReq, window)
			acked += a.events
			if i == 0 {
				continue // warm-up
			}
			hr, fr = append(hr, a.rate()), append(fr, b.rate())
			ratios = append(ratios, a.rate()/b.rate())
			lat = append(lat, al...)
			fmt.Fprintf(os.Stderr, "ingest %d/request pair %d: herd %.0f ev/s, floor %.0f ev/s\n", perReq, i, a.rate(), b.rate())
		}
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
		slices.Sort(lat)
		p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
		fmt.Fprintf(&s, "| %d event(s) | %.0f | %.0f | **%.2f** (%.2f–%.2f) | %v / %v | %d of %d acknowledged |\n",
			perReq, median(hr), median(fr), median(ratios), slices.Min(ratios), slices.Max(ratios),
			p(0.5).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond), after-before, acked)
	}
	s.WriteString("\nTargets (issue 3): ≥ 200,000 events/s with 20-event requests; ≥ 60,000 with 1-event requests and ratio ≥ 0.8 to the floor. Latencies here are closed-loop at full load, not at half rate.\n")
	return s.String(), nil
}

func countRows(ctx context.Context, c *clickhouse.Client, table string) (uint64, error) {
	var n uint64
	err := c.Select(ctx, "SELECT count() FROM "+table, func(b *proto.Block) error {
		n = b.Columns[0].Row(0, false).(uint64)
		return nil
	})
	return n, err
}

type loadResult struct {
	events  int64
	elapsed time.Duration
}

func (r loadResult) rate() float64 { return float64(r.events) / r.elapsed.Seconds() }

// load sends requests of perReq events from 64 clients for window and
// counts the events answered 202; it returns per-request latencies.
func load(ctx context.Context, base string, perReq int, window time.Duration) (loadResult, []time.Duration) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	bodies := make([][]byte, 16)
	for i := range bodies {
		var b strings.Builder
		b.WriteString("[")
		for j := range perReq {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"type":"product_view","url":"https://shop.example/product/p%d?utm_source=bench","product":{"id":"p%d","category":"shoes","price":59.9}}`, i*perReq+j, i*perReq+j)
		}
		b.WriteString("]")
		bodies[i] = []byte(b.String())
	}
	var events atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	deadline := time.Now().Add(window)
	start := time.Now()
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1024)
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/events", bytes.NewReader(bodies[(g+n)%len(bodies)]))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.%d.%d", g, n%250))
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				local = append(local, time.Since(t0))
				if resp.StatusCode == http.StatusAccepted {
					events.Add(int64(perReq))
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return loadResult{events: events.Load(), elapsed: time.Since(start)}, lat
}
