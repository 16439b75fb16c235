package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/herd-analytics/herd/ingest"
)

type edgeConfig struct {
	dataDir        string
	spoolMaxBytes  int64
	rawRetention   time.Duration
	sitesFile      string
	honorDNT       bool
	geoIP          string
	trustedProxies []string
}

// edge is the running ingest: key ring, pipeline, writer and API.
type edge struct {
	server *ingest.Server
	writer *ingest.Writer
	spool  *ingest.DiskSpool
	keys   *ingest.KeyRing
	stop   context.CancelFunc
	done   chan struct{}
}

func newEdge(ctx context.Context, cfg edgeConfig, st *store, log *slog.Logger) (*edge, error) {
	sites := ingest.DefaultSites()
	if cfg.sitesFile != "" {
		var err error
		if sites, err = ingest.LoadSites(cfg.sitesFile); err != nil {
			return nil, err
		}
	}
	keys, err := ingest.OpenKeyRing(filepath.Join(cfg.dataDir, "keys", "day-keys.json"), nil)
	if err != nil {
		return nil, err
	}
	pipeline := ingest.NewPipeline(keys, ingest.NewSessions(30*time.Minute))
	pipeline.HonorDNT = cfg.honorDNT
	if cfg.geoIP != "" {
		geo, err := ingest.OpenCountryDB(cfg.geoIP)
		if err != nil {
			return nil, err
		}
		// Memory-mapped for the process's life; the OS unmaps it at exit.
		pipeline.Country = geo.Country
	}
	metrics := ingest.NewMetrics()
	table := st.dbs.Raw + ".events"
	spool, err := ingest.OpenSpool(ingest.SpoolConfig{
		Dir: filepath.Join(cfg.dataDir, "spool"), MaxBytes: cfg.spoolMaxBytes, Retention: cfg.rawRetention,
	}, metrics, log)
	if err != nil {
		return nil, err
	}
	writer := ingest.NewWriter(ingest.WriterConfig{Table: table}, st.writer, spool, metrics, log)
	go writer.Run()
	e := &edge{
		server: ingest.NewServer(ingest.Config{TrustedProxies: cfg.trustedProxies}, sites, pipeline, writer, metrics, log),
		writer: writer,
		spool:  spool,
		keys:   keys,
		done:   make(chan struct{}, 2),
	}
	kctx, cancel := context.WithCancel(ctx)
	e.stop = cancel
	// Rows spooled by an earlier run, or during an outage, go in as soon
	// as ClickHouse takes them.
	go func() {
		defer func() { e.done <- struct{}{} }()
		spool.Run(kctx, st.writer, table)
	}()
	// Day keys are destroyed on time even when no events arrive.
	go func() {
		defer func() { e.done <- struct{}{} }()
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-kctx.Done():
				return
			case <-t.C:
				if err := keys.Expire(); err != nil {
					log.Error("expire day keys", "err", err)
				}
			}
		}
	}()
	return e, nil
}

// close stops the background jobs and, the writer having flushed, puts what
// the spool holds into ClickHouse if it answers (else it waits on disk for
// the next start).
func (e *edge) close(st *store, log *slog.Logger) {
	e.stop()
	<-e.done
	<-e.done
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.spool.Replay(ctx, st.writer, st.dbs.Raw+".events"); err != nil {
		log.Warn("spool: rows left for the next start", "err", err)
	}
	_ = e.spool.Close()
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
