package clickhouse

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	f := func(raw string, want Config) {
		t.Helper()
		got, err := ParseURL(raw)
		if err != nil {
			t.Fatalf("ParseURL(%q): %v", raw, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseURL(%q) =\n%#v\nwant\n%#v", raw, got, want)
		}
		back, err := ParseURL(got.URL())
		if err != nil || !reflect.DeepEqual(back, got) {
			t.Fatalf("URL() of %q does not read back: %v %#v", raw, err, back)
		}
	}
	f("http://localhost", Config{Addr: "localhost:8123"})
	f("https://ch.example.com", Config{Addr: "ch.example.com:8443", Secure: true})
	f("http://u:p%40ss@10.0.0.1:9999/?database=herd", Config{Addr: "10.0.0.1:9999", User: "u", Password: "p@ss", Database: "herd"})
	f("http://u@[::1]:8123/herd", Config{Addr: "[::1]:8123", User: "u", Database: "herd"})
	f("http://h:1/?compress=true&timeout=30s&dial_timeout=2s&max_threads=2",
		Config{Addr: "h:1", Compress: true, Timeout: 30 * time.Second, DialTimeout: 2 * time.Second, Settings: map[string]string{"max_threads": "2"}})
}

func TestParseURLErrors(t *testing.T) {
	for _, raw := range []string{
		"", "localhost:8123", "tcp://h:9000", "http://", "http://h:0", "http://h:70000", "http://h:x",
		"http://h/?compress=maybe", "http://h/?timeout=soon", "http://h/?database=a-b", "http://h/?bad-setting=1", "http://h/db;x",
	} {
		if _, err := ParseURL(raw); err == nil {
			t.Errorf("ParseURL(%q) accepted", raw)
		}
	}
}

func TestConfigStringMasksPassword(t *testing.T) {
	cfg := Config{Addr: "h:1", User: "u", Password: "secret", Database: "d"}
	if s := cfg.String(); strings.Contains(s, "secret") || !strings.Contains(s, "u:xxxxx@h:1") {
		t.Fatalf("String() = %q", s)
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"http://u:p@h:1/?database=d&compress=1", "https://h", "http://[::1]:8123/x", "http://h/?a=1&a=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		cfg, err := ParseURL(raw)
		if err != nil {
			return
		}
		if cfg.Addr == "" || (cfg.Database != "" && !validIdent(cfg.Database)) {
			t.Fatalf("ParseURL(%q) accepted %#v", raw, cfg)
		}
		for k := range cfg.Settings {
			if !validIdent(k) {
				t.Fatalf("setting %q accepted", k)
			}
		}
	})
}
