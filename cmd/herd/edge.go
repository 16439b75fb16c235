package main

import (
	"context"
	"flag"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/herd-analytics/herd/ingest"
)

// edgeFlags are the ingest's flags, shared by herd serve and herd ingest.
type edgeFlags struct {
	addr           string
	sitesFile      string
	geoIP          string
	honorDNT       bool
	trustedProxies string
	spoolMaxBytes  int64
}

func (f *edgeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "ingest-addr", "127.0.0.1:8080", "address of the event API (herd.js, /api/event, /v1/batch)")
	fs.StringVar(&f.sitesFile, "sites", "", "YAML file listing the sites, their origins and Segment write keys; empty serves only the demo site")
	fs.StringVar(&f.geoIP, "geoip", "", "MaxMind-format country database (GeoLite2-Country.mmdb or similar); empty stores no country")
	fs.BoolVar(&f.honorDNT, "honor-dnt", true, "drop events from browsers sending DNT: 1 (Sec-GPC: 1 is always honoured)")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "127.0.0.1,::1", "comma-separated proxy addresses whose X-Forwarded-For is believed (a reverse proxy on this host; herd gen sends its shoppers' addresses this way)")
	fs.Int64Var(&f.spoolMaxBytes, "spool-max-bytes", 1<<30, "disk spool bound while ClickHouse is away; beyond it ingest answers 429")
}

func (f *edgeFlags) config(dataDir string, rawRetention time.Duration) edgeConfig {
	return edgeConfig{
		dataDir: dataDir, sitesFile: f.sitesFile, honorDNT: f.honorDNT, geoIP: f.geoIP, trustedProxies: splitList(f.trustedProxies),
		spoolMaxBytes: f.spoolMaxBytes, rawRetention: rawRetention,
	}
}

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
