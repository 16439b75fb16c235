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
	sitesFile      string
	honorDNT       bool
	trustedProxies []string
}

// edge is the running ingest: key ring, pipeline, writer and API.
type edge struct {
	server *ingest.Server
	writer *ingest.Writer
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
	metrics := ingest.NewMetrics()
	writer := ingest.NewWriter(ingest.WriterConfig{Table: st.dbs.Raw + ".events"}, st.writer, nil, metrics, log)
	go writer.Run()
	e := &edge{
		server: ingest.NewServer(ingest.Config{TrustedProxies: cfg.trustedProxies}, sites, pipeline, writer, metrics, log),
		writer: writer,
		keys:   keys,
		done:   make(chan struct{}),
	}
	// Day keys are destroyed on time even when no events arrive.
	kctx, cancel := context.WithCancel(ctx)
	e.stop = cancel
	go func() {
		defer close(e.done)
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

func (e *edge) close() {
	e.stop()
	<-e.done
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
