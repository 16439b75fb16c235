package main

import (
	"flag"
	"log/slog"
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

// open builds the edge over the store; the caller runs and closes it.
func (f *edgeFlags) open(dataDir string, rawRetention time.Duration, st *store, log *slog.Logger) (*ingest.Edge, error) {
	cfg := ingest.Config{
		DataDir: dataDir, Table: st.dbs.Raw + ".events", IgnoreDNT: !f.honorDNT, TrustedProxies: splitList(f.trustedProxies),
		SpoolMaxBytes: f.spoolMaxBytes, RawRetention: rawRetention,
	}
	if f.sitesFile != "" {
		sites, err := ingest.LoadSites(f.sitesFile)
		if err != nil {
			return nil, err
		}
		cfg.Sites = sites
	}
	if f.geoIP != "" {
		geo, err := ingest.OpenCountryDB(f.geoIP)
		if err != nil {
			return nil, err
		}
		// Memory-mapped for the process's life; the OS unmaps it at exit.
		cfg.Country = geo.Country
	}
	return ingest.New(cfg, st.writer, log)
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
