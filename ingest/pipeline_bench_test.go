package ingest

import (
	"strings"
	"testing"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"

	"github.com/herd-analytics/herd/ingest/keyring"
	"github.com/herd-analytics/herd/ingest/spool"
)

// BenchmarkPipeline is one event's way through the edge, per event: decode
// a 20-event request, consent, desensitize, pseudonymize, and — per batch of
// 1,000 rows, as the writer and the spool batch them — the Arrow record of
// the spool and the Native block of the insert, encoded.
func BenchmarkPipeline(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("[")
	for j := range 20 {
		if j > 0 {
			sb.WriteString(",")
		}
		sb.WriteString(`{"type":"product_view","url":"https://shop.example/product/p1?utm_source=bench&q=x","referrer":"https://www.google.com/","product":{"id":"p1","category":"shoes","price":59.9}}`)
	}
	sb.WriteString("]")
	body := []byte(sb.String())
	keys, _ := keyring.Open("", nil)
	p := NewPipeline(keys)
	site := DefaultSites().All()[0]
	rows := make([]spool.Row, 0, 1000)
	var buf chproto.Buffer
	var enc spool.Encoder // reuses its block, as the spool does
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		events, _, err := DecodeMany(body)
		if err != nil {
			b.Fatal(err)
		}
		// A fresh request each time: what one request shares is memoized
		// for its events only.
		req := &Request{IP: "198.51.100.7", UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", Received: time.Now()}
		for k := range events {
			row, _, prob, err := p.Process(site, req, &events[k], k)
			if prob != nil || err != nil {
				b.Fatal(prob, err)
			}
			rows = append(rows, row)
		}
		if len(rows) >= 1000 || i == b.N-1 {
			block, err := enc.Encode(rows)
			if err != nil {
				b.Fatal(err)
			}
			buf.Reset()
			if err := block.Encode(&buf, 0); err != nil {
				b.Fatal(err)
			}
			rows = rows[:0]
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*20), "ns/event")
}
