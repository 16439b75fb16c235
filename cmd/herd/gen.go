package main

import (
	"context"
	"fmt"
	"io"

	"github.com/herd-analytics/herd/internal/shopsim"
)

// runGen is `herd gen`: a synthetic shop's traffic over real HTTP.
func runGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen", stderr)
	var (
		lf       logFlags
		target   = fs.String("target", "http://127.0.0.1:8080", "ingest base URL")
		site     = fs.String("site", "demo", "site the events are for")
		visitors = fs.Int("visitors", 1000, "distinct shoppers")
		perDay   = fs.Int("visitors-per-day", 0, "with --import: size the shoppers so that each day holds about this many visitor-days (overrides --visitors)")
		catalog  = fs.String("catalog-out", "", "write the shop's catalog here (CSV, as --catalog reads it) and stop")
		days     = fs.Int("days", 7, "days of history to replay with --import")
		seed     = fs.Uint64("seed", 1, "random seed: the same seed gives the same shop and shoppers")
		rate     = fs.Float64("rate", 0, "events per second at most (0: as fast as the ingest takes them)")
		importH  = fs.Bool("import", false, "replay --days of history with past timestamps (the site must allow imports)")
		duration = fs.Duration("duration", 0, "live traffic for this long (0: until interrupted); ignored with --import")
		products = fs.Int("products", 2000, "products in the catalog")
		workers  = fs.Int("workers", 8, "parallel senders")
		writeKey = fs.String("write-key", "", "the site's write key: configured sites take imports only with it")
	)
	lf.register(fs, "info")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	shop := shopsim.Config{Site: *site, Seed: *seed, Products: *products}
	if *catalog != "" {
		return writeCatalog(*catalog, shop)
	}
	st, err := shopsim.Generate(ctx, shopsim.GenConfig{
		Target:   *target,
		Shop:     shop,
		Visitors: *visitors, VisitorsPerDay: *perDay, Days: *days, Import: *importH, Duration: *duration, Rate: *rate, Workers: *workers, WriteKey: *writeKey,
	}, log)
	if st != nil {
		fmt.Fprintln(stdout, st.String())
	}
	return err
}
