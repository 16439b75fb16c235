package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/internal/clickhouse/local"
)

// herd demo --local-cluster (make demo-cluster) starts ZooKeeper, 2 shards
// × 2 replicas and a second ingest node, fills the shop through both ingest
// nodes, publishes, and prints a dashboard URL and a login that work.
func TestDemoOnLocalCluster(t *testing.T) {
	chtest.Servers(t)
	dir := t.TempDir()
	// The second ingest node is this binary again: as herd (TestMain).
	t.Setenv("HERD_TEST_AS_HERD", "1")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	stderr, err := os.Create(filepath.Join(dir, "demo.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	go func() {
		done <- run(ctx, []string{"demo", "--local-cluster", "--data-dir", dir, "--visitors-per-day", "80", "--days", "2", "--rate", "5",
			"--ingest-addr", "127.0.0.1:0", "--dashboard-addr", "127.0.0.1:0", "--log-level", "warn"}, pw, stderr)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(90 * time.Second):
			t.Error("demo did not stop within 90 s")
		}
	})
	var dashURL, password string
	loginLine := regexp.MustCompile(`^login:\s+demo / (\S+)`)
	sc := bufio.NewScanner(pr)
	for sc.Scan() && password == "" {
		line := sc.Text()
		if u, ok := strings.CutPrefix(line, "dashboard: "); ok {
			dashURL = strings.TrimSpace(u)
		}
		if m := loginLine.FindStringSubmatch(line); m != nil {
			password = m[1]
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if dashURL == "" || password == "" {
		log, _ := os.ReadFile(filepath.Join(dir, "demo.log"))
		var runErr error
		select {
		case runErr = <-done:
			done <- runErr
		default:
		}
		t.Fatalf("no dashboard URL and login printed (%q): %v %v\n%s", dashURL, sc.Err(), runErr, log)
	}

	// No child of the demo carries a password on its command line (ps
	// shows every user's): the second ingest node reads its URL from the
	// environment.
	children := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(cmdline), dir) {
			continue
		}
		children++
		if args := strings.ReplaceAll(string(cmdline), "\x00", " "); strings.Contains(args, "://herd:") || strings.Contains(args, "--clickhouse http") {
			t.Errorf("a password on a command line: %s", args)
		}
	}
	if children == 0 {
		t.Error("found no child of the demo to look at")
	}

	// The shop went through both ingest nodes onto both shards.
	for _, node := range []string{"s1r1", "s2r2"} {
		cfg := localWriter(t, filepath.Join(dir, "cluster", node))
		cl, err := clickhouse.New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		err = cl.Raw(context.Background(), "SELECT count() > 0 FROM herd_raw.events_local FORMAT TSV", &sb)
		cl.Close()
		if err != nil || strings.TrimSpace(sb.String()) != "1" {
			t.Errorf("%s holds no raw events (%v)", node, err)
		}
	}

	// The login works and the overview answers.
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := hc.Get(dashURL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form token on the login page")
	}
	resp, err = hc.PostForm(dashURL+"/login", url.Values{"csrf": {string(m[1])}, "name": {"demo"}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = hc.Get(dashURL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "visitor-days") {
		t.Errorf("overview after login: %d, %d bytes", resp.StatusCode, len(body))
	}
}

// localWriter is the writer of the managed server in dir, from the files
// it keeps there.
func localWriter(t *testing.T, dir string) clickhouse.Config {
	t.Helper()
	w, _, ok := local.Running(dir)
	if !ok {
		data, _ := os.ReadFile(filepath.Join(dir, "endpoint"))
		t.Fatalf("no running server in %s (endpoint %q)", dir, data)
	}
	return w
}
