package ingest_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/herd-analytics/herd/ingest"
	"github.com/herd-analytics/herd/ingest/ingesttest"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
)

// countryDB writes a small GeoLite2-Country-shaped database.
func countryDB(t *testing.T, nets map[string]string) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-Country", RecordSize: 24, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, code := range nets {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		rec := mmdbtype.Map{"country": mmdbtype.Map{"iso_code": mmdbtype.String(code), "names": mmdbtype.Map{"en": mmdbtype.String("x")}}}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "country.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCountryDB(t *testing.T) {
	db, err := ingest.OpenCountryDB(countryDB(t, map[string]string{"203.0.113.0/24": "DE", "2001:db8::/32": "fr", "198.51.100.0/24": "XYZ"}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for ip, want := range map[string]string{
		"203.0.113.9": "DE", "::ffff:203.0.113.9": "DE", "2001:db8::1": "FR",
		"198.51.100.1": "", // not a two-letter code
		"192.0.2.1":    "", "not an ip": "", "": "",
	} {
		if got := db.Country(ip); got != want {
			t.Errorf("Country(%q) = %q, want %q", ip, got, want)
		}
	}
	if _, err := ingest.OpenCountryDB(filepath.Join(t.TempDir(), "missing.mmdb")); err == nil {
		t.Error("a missing database opened")
	}
}

// TestCountryStoredIPDropped: events get the country of their address, and
// the address itself is nowhere in ClickHouse.
func TestCountryStoredIPDropped(t *testing.T) {
	geo, err := ingest.OpenCountryDB(countryDB(t, map[string]string{"203.0.113.0/24": "NL"}))
	if err != nil {
		t.Fatal(err)
	}
	defer geo.Close()
	db := chtest.Migrated(t)
	e := startEdgeWith(t, db, ingesttest.Options{Country: geo.Country})
	for _, ip := range []string{"203.0.113.77", "192.0.2.8"} {
		if r := e.post(t, "/api/event", "application/json", `{"type":"pageview","url":"https://shop.example/"}`, "X-Forwarded-For", ip); r.status != 202 {
			t.Fatalf("status %d: %+v", r.status, r.body)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.query(t, "SELECT toStringCutToZero(country) FROM "+db.Names.Raw+".events ORDER BY country DESC")
		if got == "NL\n\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("countries: %q", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := e.query(t, "SELECT count() FROM "+db.Names.Raw+".events WHERE arrayExists(x -> position(toString(x), '203.0.113') > 0, [path, referrer_host, browser, os])"); strings.TrimSpace(n) != "0" {
		t.Fatal("the address reached a column")
	}
}
