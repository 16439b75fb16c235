package ingest

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// CountryDB maps IP addresses to countries with a MaxMind-format database
// (GeoLite2-Country, GeoIP2-City, DB-IP's country lite, ...). Only the ISO
// country code is read; the address is dropped after the lookup.
type CountryDB struct {
	r *maxminddb.Reader
}

// OpenCountryDB opens the database at path (memory-mapped).
func OpenCountryDB(path string) (*CountryDB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("country database %s: %w", path, err)
	}
	// A country database answers country.iso_code; anything else (an ASN
	// database) would silently store nothing.
	if !strings.Contains(strings.ToLower(r.Metadata.DatabaseType), "country") && !strings.Contains(strings.ToLower(r.Metadata.DatabaseType), "city") {
		r.Close()
		return nil, fmt.Errorf("country database %s: type %q has no countries", path, r.Metadata.DatabaseType)
	}
	return &CountryDB{r: r}, nil
}

// Country returns the ISO 3166 alpha-2 code of ip, or "" when unknown.
func (d *CountryDB) Country(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	var rec struct {
		Country struct {
			ISOCode string `maxminddb:"iso_code"`
		} `maxminddb:"country"`
	}
	if err := d.r.Lookup(addr.Unmap()).Decode(&rec); err != nil {
		return ""
	}
	code := strings.ToUpper(rec.Country.ISOCode)
	if len(code) != 2 || code[0] < 'A' || code[0] > 'Z' || code[1] < 'A' || code[1] > 'Z' {
		return ""
	}
	return code
}

// Close releases the database.
func (d *CountryDB) Close() error { return d.r.Close() }
