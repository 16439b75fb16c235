package ingest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeSites(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sites.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadSites(t *testing.T) {
	s, err := LoadSites(writeSites(t, `
sites:
  - name: shop
    domains: [shop.example]
    origins: [https://shop.example]
    write_keys: [0123456789abcdef0123]
`))
	if err != nil {
		t.Fatal(err)
	}
	shop, err := s.ByWriteKey("0123456789abcdef0123")
	if err != nil || shop.Name != "shop" || !shop.AllowsOrigin("https://shop.example") || shop.AllowsOrigin("https://evil.example") {
		t.Fatalf("site: %+v %v", shop, err)
	}
	if _, err := s.ByWriteKey("other"); !errors.Is(err, ErrUnknownSite) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := s.Named(""); !errors.Is(err, ErrUnknownSite) {
		t.Fatal("demo exists although not listed")
	}
	if shop.AllowImport {
		t.Fatal("imports on by default")
	}
}

func TestLoadSitesRejects(t *testing.T) {
	for want, yaml := range map[string]string{
		"no sites":               "sites: []",
		"name":                   "sites:\n  - name: Shop!\n",
		"listed twice":           "sites:\n  - name: a\n  - name: a\n",
		"origin":                 "sites:\n  - name: a\n    origins: [shop.example/path]\n",
		"16 characters":          "sites:\n  - name: a\n    write_keys: [short]\n",
		"shared by":              "sites:\n  - name: a\n    write_keys: [0123456789abcdef]\n  - name: b\n    write_keys: [0123456789abcdef]\n",
		"field colour not found": "sites:\n  - name: a\n    colour: red\n",
		"not one of":             "sites:\n  - name: a\n    identifiers: {email: '.*'}\n",
		"identifiers: variant":   "sites:\n  - name: a\n    identifiers: {variant: '[A-'}\n",
	} {
		_, err := LoadSites(writeSites(t, yaml))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error mentioning %q", yaml, err, want)
		}
	}
}

func TestDefaultSitesServeDemoOnly(t *testing.T) {
	s := DefaultSites()
	demo, err := s.ByWriteKey("anything")
	if err != nil || demo.Name != DemoSite || !demo.AllowsOrigin("http://localhost:3000") || !demo.AllowImport {
		t.Fatalf("%+v %v", demo, err)
	}
	if _, err := s.Named("shop"); !errors.Is(err, ErrUnknownSite) {
		t.Fatal("unconfigured site accepted")
	}
}
