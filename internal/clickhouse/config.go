// Package clickhouse is herd's one ClickHouse client: a small transport over
// ClickHouse's HTTP interface that carries blocks in the Native format, encoded
// and decoded with clickhouse-go/v2's own codec (lib/proto, lib/column).
//
// The clickhouse-go driver itself cannot talk to the ClickHouse that Debian
// ships (18.16); the HTTP interface with revision-0 Native blocks works on
// 18.16 and on current releases alike (see docs/ARCHITECTURE.md).
//
// The package also owns the migrations runner and a cross-process lock kept
// in ClickHouse; the servers herd runs itself live in package local. It
// returns concrete types; consumers declare the interfaces they need.
package clickhouse

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config says how to reach one ClickHouse server as one user.
// The zero value is not usable; build it with ParseURL or fill Addr.
type Config struct {
	// Addr is host:port of the HTTP interface.
	Addr string
	// Secure selects https.
	Secure bool
	// User and Password authenticate every request. An empty User means
	// ClickHouse's "default" user.
	User     string
	Password string
	// Database is the default database for unqualified names; empty means the
	// server's default.
	Database string
	// Compress gzips request bodies and asks the server to gzip responses.
	// Worth it across a network, a waste of CPU on loopback.
	Compress bool
	// Timeout bounds one request, from dial to the last byte of the answer.
	// Zero means DefaultTimeout (10 min): no request waits forever.
	Timeout time.Duration
	// DialTimeout bounds connecting; zero means 5 s.
	DialTimeout time.Duration
	// Settings are sent with every query (ClickHouse rejects unknown settings,
	// so keep to ones every supported version has).
	Settings map[string]string
}

// ParseURL reads http(s)://user:password@host:port/?database=db&compress=true
// &timeout=30s plus any other query parameter as a ClickHouse setting.
// The port defaults to 8123 (http) or 8443 (https).
func ParseURL(raw string) (Config, error) {
	var cfg Config
	u, err := url.Parse(raw)
	if err != nil {
		return cfg, fmt.Errorf("clickhouse url: %w", err)
	}
	switch u.Scheme {
	case "http":
	case "https":
		cfg.Secure = true
	default:
		return cfg, fmt.Errorf("clickhouse url: scheme %q: want http or https", u.Scheme)
	}
	if u.Hostname() == "" {
		return cfg, errors.New("clickhouse url: no host")
	}
	port := u.Port()
	if port == "" {
		port = "8123"
		if cfg.Secure {
			port = "8443"
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return cfg, fmt.Errorf("clickhouse url: bad port %q", port)
	}
	cfg.Addr = net.JoinHostPort(u.Hostname(), port)
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		cfg.Database = p
	}
	for key, vals := range u.Query() {
		v := vals[len(vals)-1]
		switch key {
		case "database":
			cfg.Database = v
		case "compress":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return cfg, fmt.Errorf("clickhouse url: compress=%q: %w", v, err)
			}
			cfg.Compress = b
		case "timeout", "dial_timeout":
			d, err := time.ParseDuration(v)
			if err != nil {
				return cfg, fmt.Errorf("clickhouse url: %s=%q: %w", key, v, err)
			}
			if key == "timeout" {
				cfg.Timeout = d
			} else {
				cfg.DialTimeout = d
			}
		default:
			if !validIdent(key) {
				return cfg, fmt.Errorf("clickhouse url: setting name %q is not an identifier", key)
			}
			if cfg.Settings == nil {
				cfg.Settings = map[string]string{}
			}
			cfg.Settings[key] = v
		}
	}
	if cfg.Database != "" && !validIdent(cfg.Database) {
		return cfg, fmt.Errorf("clickhouse url: database %q is not an identifier", cfg.Database)
	}
	return cfg, nil
}

// String renders the configuration as a URL with the password masked, for logs.
func (c Config) String() string {
	u := url.URL{Scheme: "http", Host: c.Addr, Path: "/"}
	if c.Secure {
		u.Scheme = "https"
	}
	if c.User != "" {
		if c.Password != "" {
			u.User = url.UserPassword(c.User, "xxxxx")
		} else {
			u.User = url.User(c.User)
		}
	}
	if c.Database != "" {
		u.RawQuery = "database=" + url.QueryEscape(c.Database)
	}
	return u.String()
}

// URL renders the configuration as a URL ParseURL reads back, password included.
func (c Config) URL() string {
	u := url.URL{Scheme: "http", Host: c.Addr, Path: "/"}
	if c.Secure {
		u.Scheme = "https"
	}
	if c.User != "" {
		u.User = url.UserPassword(c.User, c.Password)
	}
	q := url.Values{}
	if c.Database != "" {
		q.Set("database", c.Database)
	}
	if c.Compress {
		q.Set("compress", "true")
	}
	if c.Timeout > 0 {
		q.Set("timeout", c.Timeout.String())
	}
	if c.DialTimeout > 0 {
		q.Set("dial_timeout", c.DialTimeout.String())
	}
	for k, v := range c.Settings {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// WithDatabase returns a copy of c whose default database is db.
func (c Config) WithDatabase(db string) Config {
	c.Database = db
	return c
}

// WithSetting returns a copy of c that sends setting name = value with
// every query.
func (c Config) WithSetting(name, value string) Config {
	settings := make(map[string]string, len(c.Settings)+1)
	for k, v := range c.Settings {
		settings[k] = v
	}
	settings[name] = value
	c.Settings = settings
	return c
}
