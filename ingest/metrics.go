package ingest

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Metrics are ingest's counters, served on /metrics in the Prometheus text
// format. They count events and reasons, never payloads.
type Metrics struct {
	accepted atomic.Int64
	invalid  atomic.Int64
	spooled  atomic.Int64
	inserted atomic.Int64

	mu      sync.Mutex
	dropped map[string]int64
	refused map[int]int64 // answers with a 4xx or 5xx status, by status

	insertLatency *histogram // seconds
	batchSize     *histogram // rows
	commitLatency *histogram // seconds: a spool write + fsync
	commitSize    *histogram // rows per group commit
	insertErrors  atomic.Int64
	quarantined   atomic.Int64

	// SpoolBytes reports the spool's size on disk; nil when there is no spool.
	SpoolBytes func() int64
	// Unlisted reports the identifiers stored as "unlisted", by field; nil
	// when there is no pipeline.
	Unlisted func() map[string]int64
}

// NewMetrics makes an empty set.
func NewMetrics() *Metrics {
	return &Metrics{
		dropped:       map[string]int64{},
		refused:       map[int]int64{},
		insertLatency: newHistogram(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
		batchSize:     newHistogram(1, 10, 100, 1000, 5000, 10000, 20000, 50000),
		commitLatency: newHistogram(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
		commitSize:    newHistogram(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 20000),
	}
}

func (m *Metrics) drop(reason string, n int) {
	if n == 0 {
		return
	}
	m.mu.Lock()
	m.dropped[reason] += int64(n)
	m.mu.Unlock()
}

// answered counts a request's answer when it refused the request (4xx, 5xx).
func (m *Metrics) answered(status int) {
	if status < 400 {
		return
	}
	m.mu.Lock()
	m.refused[status]++
	m.mu.Unlock()
}

// ObserveQuarantine counts a damaged spool segment moved aside (the spool's
// Observer).
func (m *Metrics) ObserveQuarantine() { m.quarantined.Add(1) }

// ObserveInsert counts one insert into ClickHouse (the spool's Observer).
func (m *Metrics) ObserveInsert(d time.Duration, rows int, err error) {
	if err != nil {
		m.insertErrors.Add(1)
		return
	}
	m.inserted.Add(int64(rows))
	m.insertLatency.observe(d.Seconds())
	m.batchSize.observe(float64(rows))
}

// ObserveCommit counts one group commit (the spool's Observer).
func (m *Metrics) ObserveCommit(d time.Duration, rows int) {
	m.commitLatency.observe(d.Seconds())
	m.commitSize.observe(float64(rows))
}

// WriteTo writes the Prometheus text exposition.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	p := func(format string, a ...any) { fmt.Fprintf(cw, format, a...) }
	p("# HELP herd_ingest_events_accepted_total Events stored (inserted or spooled).\n# TYPE herd_ingest_events_accepted_total counter\nherd_ingest_events_accepted_total %d\n", m.accepted.Load())
	p("# HELP herd_ingest_events_invalid_total Events refused as malformed (400 problems).\n# TYPE herd_ingest_events_invalid_total counter\nherd_ingest_events_invalid_total %d\n", m.invalid.Load())
	p("# HELP herd_ingest_events_dropped_total Events dropped by policy, by reason.\n# TYPE herd_ingest_events_dropped_total counter\n")
	m.mu.Lock()
	reasons := make([]string, 0, len(m.dropped))
	for r := range m.dropped {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		p("herd_ingest_events_dropped_total{reason=%q} %d\n", r, m.dropped[r])
	}
	p("# HELP herd_ingest_requests_refused_total Requests answered with a 4xx or 5xx status (429: spool full, 503: storage unavailable), by status.\n# TYPE herd_ingest_requests_refused_total counter\n")
	codes := make([]int, 0, len(m.refused))
	for c := range m.refused {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		p("herd_ingest_requests_refused_total{code=\"%d\"} %d\n", c, m.refused[c])
	}
	m.mu.Unlock()
	p("# HELP herd_ingest_events_spooled_total Events written to the disk spool.\n# TYPE herd_ingest_events_spooled_total counter\nherd_ingest_events_spooled_total %d\n", m.spooled.Load())
	p("# HELP herd_ingest_events_inserted_total Spooled events inserted into ClickHouse.\n# TYPE herd_ingest_events_inserted_total counter\nherd_ingest_events_inserted_total %d\n", m.inserted.Load())
	p("# HELP herd_ingest_spool_quarantined_total Damaged spool segments moved to spool/quarantine (their rows are not inserted).\n# TYPE herd_ingest_spool_quarantined_total counter\nherd_ingest_spool_quarantined_total %d\n", m.quarantined.Load())
	p("# HELP herd_ingest_insert_errors_total Failed batch inserts.\n# TYPE herd_ingest_insert_errors_total counter\nherd_ingest_insert_errors_total %d\n", m.insertErrors.Load())
	if m.Unlisted != nil {
		p("# HELP herd_ingest_identifiers_unlisted_total Identifiers that did not fit their field (free text where a SKU, list, variant or UTM value goes), stored as \"unlisted\", by field.\n# TYPE herd_ingest_identifiers_unlisted_total counter\n")
		counts := m.Unlisted()
		for _, f := range slices.Sorted(maps.Keys(counts)) {
			p("herd_ingest_identifiers_unlisted_total{field=%q} %d\n", f, counts[f])
		}
	}
	if m.SpoolBytes != nil {
		p("# HELP herd_ingest_spool_bytes Bytes in the disk spool.\n# TYPE herd_ingest_spool_bytes gauge\nherd_ingest_spool_bytes %d\n", m.SpoolBytes())
	}
	m.insertLatency.write(cw, "herd_ingest_insert_seconds", "Batch insert latency.")
	m.batchSize.write(cw, "herd_ingest_batch_rows", "Rows per batch insert.")
	m.commitLatency.write(cw, "herd_ingest_spool_commit_seconds", "Spool write and fsync of one group commit; requests are acknowledged after it.")
	m.commitSize.write(cw, "herd_ingest_spool_commit_rows", "Rows per spool group commit.")
	return cw.n, cw.err
}

type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

type histogram struct {
	mu     sync.Mutex
	bounds []float64
	counts []int64
	sum    float64
	n      int64
}

func newHistogram(bounds ...float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]int64, len(bounds))}
}

func (h *histogram) observe(v float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, b := range h.bounds {
		if v <= b {
			h.counts[i]++
		}
	}
	h.sum += v
	h.n++
}

func (h *histogram) write(w io.Writer, name, help string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	for i, b := range h.bounds {
		fmt.Fprintf(w, "%s_bucket{le=\"%g\"} %d\n", name, b, h.counts[i])
	}
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", name, h.n, name, h.sum, name, h.n)
}
