package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/herd-analytics/herd/ingest"
	"github.com/herd-analytics/herd/internal/coord"
)

// edgeFlags are the ingest's flags, shared by herd serve and herd ingest.
type edgeFlags struct {
	addr           string
	sitesFile      string
	geoIP          string
	honorDNT       bool
	trustedProxies string
	spoolMaxBytes  int64
	keySecretFile  string
	allowImports   bool
	importBackfill bool
}

func (f *edgeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "ingest-addr", "127.0.0.1:8080", "address of the event API (herd.js, /api/event, /v1/batch)")
	fs.StringVar(&f.sitesFile, "sites", "", "YAML file listing the sites, their origins and Segment write keys; empty serves only the demo site")
	fs.StringVar(&f.geoIP, "geoip", "", "MaxMind-format country database (GeoLite2-Country.mmdb or similar); empty stores no country")
	fs.BoolVar(&f.honorDNT, "honor-dnt", true, "drop events from browsers sending DNT: 1 (Sec-GPC: 1 is always honoured)")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "127.0.0.1,::1", "comma-separated proxy addresses whose X-Forwarded-For is believed (a reverse proxy on this host; herd gen sends its shoppers' addresses this way)")
	fs.Int64Var(&f.spoolMaxBytes, "spool-max-bytes", 1<<30, "disk spool bound while ClickHouse is away; beyond it ingest answers 429")
	fs.BoolVar(&f.allowImports, "allow-imports", false, "without --sites: the demo site takes history imports (herd gen --import) from anyone; with --sites, allow_import in the file decides")
	fs.BoolVar(&f.importBackfill, "import-backfill", false, "take imported events of any past day: a back-fill (by default an import reaches back the raw retention plus the publication grace)")
	fs.StringVar(&f.keySecretFile, "key-secret-file", "", "with --zookeeper: the secret every ingest node shares (64 hex digits, mode 0600; openssl rand -hex 32) that wraps the day keys they share through ZooKeeper")
}

// open builds the edge over the store; the caller runs and closes it. With
// ZooKeeper, day keys are the ones every ingest node shares.
func (f *edgeFlags) open(ctx context.Context, dataDir string, rawRetention time.Duration, st *store, zookeeper string, log *slog.Logger) (*ingest.Edge, error) {
	cfg := ingest.Config{
		DataDir: dataDir, Table: st.dbs.Raw + ".events", IgnoreDNT: !f.honorDNT, TrustedProxies: splitList(f.trustedProxies),
		SpoolMaxBytes: f.spoolMaxBytes, RawRetention: rawRetention,
		Imports: ingest.ImportPolicy{Open: f.allowImports, Backfill: f.importBackfill},
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
	switch {
	case zookeeper != "" && f.keySecretFile == "":
		return nil, errors.New("--zookeeper: ingest nodes share day keys through it, wrapped with --key-secret-file (the same file on every node; openssl rand -hex 32)")
	case zookeeper == "" && f.keySecretFile != "":
		return nil, errors.New("--key-secret-file needs --zookeeper, through which the ingest nodes share day keys")
	case zookeeper != "":
		secret, err := coord.ReadSecret(f.keySecretFile)
		if err != nil {
			return nil, fmt.Errorf("--key-secret-file: %w", err)
		}
		conn, err := dialZooKeeper(ctx, zookeeper, secret, log)
		if err != nil {
			return nil, err
		}
		st.keep(conn)
		if cfg.SharedKeys, err = conn.DayKeys(secret); err != nil {
			return nil, err
		}
	}
	return ingest.New(cfg, st.ingest, log)
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
