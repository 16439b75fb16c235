package aggregate

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

// The catalog makes products a public key space (docs/privacy.md): the
// shop publishes what it sells, so which product ids exist says nothing
// about a shopper. With a catalog, the products rollup's keys are its ids
// (any other id counts as "unlisted") and their categories are the
// catalog's, not what events claim.

// Unlisted is the product key of every id the catalog does not list.
const Unlisted = "unlisted"

// CatalogItem is one product the shop lists.
type CatalogItem struct {
	Site, ProductID, Name, Category string
	Price                           float64
}

// MaxCatalogItems bounds a catalog file.
const MaxCatalogItems = 1_000_000

// ReadCatalog parses a catalog CSV: a header naming product_id, name,
// category and price (any order; an optional site column, else every row is
// for defaultSite), then one product per row. Errors name the line.
func ReadCatalog(r io.Reader, defaultSite string) ([]CatalogItem, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("catalog header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, need := range []string{"product_id", "name", "category", "price"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("catalog header %q: no %s column (want product_id, name, category, price and optionally site)", strings.Join(head, ","), need)
		}
	}
	siteCol, hasSite := col["site"]
	var out []CatalogItem
	seen := map[[2]string]bool{}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
		it := CatalogItem{Site: defaultSite, ProductID: strings.TrimSpace(rec[col["product_id"]]), Name: strings.TrimSpace(rec[col["name"]]),
			Category: strings.TrimSpace(rec[col["category"]])}
		if hasSite {
			it.Site = strings.TrimSpace(rec[siteCol])
		}
		price, perr := strconv.ParseFloat(strings.TrimSpace(rec[col["price"]]), 64)
		switch {
		case it.Site == "":
			return nil, fmt.Errorf("catalog line %d: no site", line)
		case it.ProductID == "" || len(it.ProductID) > 200:
			return nil, fmt.Errorf("catalog line %d: product_id must be 1 to 200 characters", line)
		case it.ProductID == Unlisted:
			return nil, fmt.Errorf("catalog line %d: %q is reserved for products the catalog does not list", line, Unlisted)
		case len(it.Name) > 500 || len(it.Category) > 200:
			return nil, fmt.Errorf("catalog line %d: name (500) or category (200) too long", line)
		case perr != nil || price < 0 || math.IsInf(price, 0) || math.IsNaN(price):
			return nil, fmt.Errorf("catalog line %d: price %q is not a non-negative number", line, rec[col["price"]])
		case seen[[2]string{it.Site, it.ProductID}]:
			return nil, fmt.Errorf("catalog line %d: product %q listed twice", line, it.ProductID)
		case len(out) >= MaxCatalogItems:
			return nil, fmt.Errorf("catalog: more than %d products", MaxCatalogItems)
		}
		it.Price = price
		seen[[2]string{it.Site, it.ProductID}] = true
		out = append(out, it)
	}
	if len(out) == 0 {
		return nil, errors.New("catalog: no products")
	}
	return out, nil
}

// LoadCatalog replaces the catalogs of the sites in items: the new rows
// carry a newer `loaded` than any before (readers take the newest), and the
// older versions are deleted.
func (p *Publisher) LoadCatalog(ctx context.Context, items []CatalogItem) error {
	loaded := time.Now().UTC().Truncate(time.Second)
	err := p.c.Select(ctx, "SELECT max(loaded) FROM "+p.dbs.Pub+".catalog", func(b *proto.Block) error {
		if last := clickhouse.Get[time.Time](b, 0, 0); !loaded.After(last) {
			loaded = last.UTC().Add(time.Second)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load catalog: %w", err)
	}
	blk := proto.NewBlock()
	for _, c := range [][2]string{{"site", "String"}, {"product_id", "String"}, {"name", "String"}, {"category", "String"}, {"price", "Float64"}, {"loaded", "DateTime"}} {
		if err := blk.AddColumn(c[0], column.Type(c[1])); err != nil {
			return err
		}
	}
	var sites []string
	for _, it := range items {
		if err := blk.Append(it.Site, it.ProductID, it.Name, it.Category, it.Price, loaded); err != nil {
			return err
		}
		if !slices.Contains(sites, it.Site) {
			sites = append(sites, it.Site)
		}
	}
	if err := p.c.Insert(ctx, p.dbs.Pub+".catalog", blk); err != nil {
		return fmt.Errorf("load catalog: %w", err)
	}
	for _, s := range sites {
		if err := p.c.Exec(ctx, p.dbs.Alter(p.dbs.Pub, "catalog")+" DELETE WHERE site = "+clickhouse.Quote(s)+" AND loaded < toDateTime("+clickhouse.QuoteInt(loaded.Unix())+")"); err != nil {
			return fmt.Errorf("load catalog: drop the previous one: %w", err)
		}
	}
	p.log.Info("catalog loaded", "products", len(items), "sites", len(sites))
	return nil
}

// refreshCatalog loads cfg.Catalog when the file changed since the last load.
func (p *Publisher) refreshCatalog(ctx context.Context) error {
	if p.cfg.Catalog == "" {
		return nil
	}
	fi, err := os.Stat(p.cfg.Catalog)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	stamp := fmt.Sprint(fi.ModTime().UnixNano(), fi.Size())
	if stamp == p.catalogStamp {
		return nil
	}
	f, err := os.Open(p.cfg.Catalog)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	defer f.Close()
	items, err := ReadCatalog(f, p.cfg.CatalogSite)
	if err != nil {
		return fmt.Errorf("%s: %w", p.cfg.Catalog, err)
	}
	if err := p.LoadCatalog(ctx, items); err != nil {
		return err
	}
	p.catalogStamp = stamp
	return nil
}

// catalogWhere selects the newest catalog of site.
func (p *Publisher) catalogWhere(site string) string {
	return "site = " + clickhouse.Quote(site) + " AND loaded = (SELECT max(loaded) FROM " + p.dbs.Pub + ".catalog WHERE site = " + clickhouse.Quote(site) + ")"
}
