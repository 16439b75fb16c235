package ingest

import (
	"strings"
	"testing"
	"time"
)

// BenchmarkPipeline is decode → desensitize → pseudonymize → encode for one
// 20-event request, per event.
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
	keys, _ := OpenKeyRing("", nil)
	p := NewPipeline(keys, NewSessions(30*time.Minute))
	site := DefaultSites().All()[0]
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
		rows := make([]Row, 0, len(events))
		for k := range events {
			row, _, prob := p.Process(site, req, &events[k], k)
			if prob != nil {
				b.Fatal(prob)
			}
			rows = append(rows, row)
		}
		if _, err := EncodeRows(rows); err != nil {
			b.Fatal(err)
		}
		rec := rowsToRecord(rows)
		rec.Release()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*20), "ns/event")
}
