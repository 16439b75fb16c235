package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-analytics/herd/ingest/ingesttest"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
)

// TestMain lets the test binary act as herd itself, so a test can start it
// as a separate process and kill it with SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("HERD_TEST_AS_HERD") == "1" {
		os.Exit(runMain(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func startHerdProcess(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "HERD_TEST_AS_HERD=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	return cmd
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready within 60 s", url)
}

// herd killed with SIGKILL in the middle of a load, then started again on
// the same data: every event it acknowledged is in ClickHouse exactly once.
func TestKill9MidLoadLosesNothingAcknowledged(t *testing.T) {
	chtest.Servers(t)
	dir := t.TempDir()
	ingestAddr, dashAddr := freeAddr(t), freeAddr(t)
	args := []string{"serve", "--data-dir", dir, "--ingest-addr", ingestAddr, "--dashboard-addr", dashAddr, "--log-level", "warn"}
	herd := startHerdProcess(t, args...)
	url := "http://" + ingestAddr
	waitReady(t, url)

	load := ingesttest.StartLoad(url, "K", "add_to_cart")
	load.WaitRequests(t, 20, 30*time.Second)
	if err := herd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = herd.Wait()
	atKill := load.Requests()
	startHerdProcess(t, args...)
	waitReady(t, url)
	load.WaitRequests(t, atKill+10, 30*time.Second) // taken again after the restart
	acked := load.Stop()

	// Wait for the spool to drain, then compare.
	deadline := time.Now().Add(60 * time.Second)
	for {
		segs, _ := os.ReadDir(dir + "/spool")
		pending := 0
		for _, s := range segs {
			if strings.HasPrefix(s.Name(), "seg-") {
				if info, err := s.Info(); err == nil && info.Size() > 0 {
					pending++
				}
			}
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d spool segments left after 60 s", pending)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"sql", "--data-dir", dir,
		"SELECT product_id, uniqExact(event_id) AS n FROM herd_raw.events GROUP BY product_id FORMAT TSV"}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	stored := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var id string
		var n int
		if _, err := fmt.Sscanf(line, "%s\t%d", &id, &n); err == nil {
			stored[id] = n
		}
	}
	for id := range acked {
		if stored[id] != 1 {
			t.Fatalf("acknowledged event %s stored %d times (%d acknowledged, %d stored)", id, stored[id], len(acked), len(stored))
		}
	}
	t.Logf("%d requests acknowledged before the kill, %d events in all; every one stored once", atKill, len(acked))
}

// The managed ClickHouse killed under load (the OOM killer, say): herd
// stays up, keeps acknowledging into its spool while ClickHouse is away,
// starts the server again on the same ports, and every acknowledged event
// is stored once.
func TestManagedClickHouseIsRestarted(t *testing.T) {
	chtest.Servers(t)
	dir := t.TempDir()
	ingestAddr, dashAddr := freeAddr(t), freeAddr(t)
	herd := startHerdProcess(t, "serve", "--data-dir", dir, "--ingest-addr", ingestAddr, "--dashboard-addr", dashAddr, "--log-level", "warn")
	url := "http://" + ingestAddr
	waitReady(t, url)
	load := ingesttest.StartLoad(url, "R", "product_view")
	load.WaitRequests(t, 20, 30*time.Second)
	first := managedPID(t, dir)
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Back on its own, a new process on the same ports, while the load
	// went on (the spool took what ClickHouse could not).
	chtest.WaitFor(t, 60*time.Second, func() bool {
		pid, err := os.ReadFile(filepath.Join(dir, "clickhouse", "server.pid")) // gone while it restarts
		return processExited(first) && err == nil && !strings.HasSuffix(strings.TrimSpace(string(pid)), " "+strconv.Itoa(first))
	})
	chtest.WaitFor(t, 30*time.Second, func() bool { code, _, _ := timedGet(t, url+"/readyz"); return code == 200 })
	load.WaitRequests(t, load.Requests()+20, 30*time.Second)
	acked := load.Stop()
	if herd.ProcessState != nil {
		t.Fatalf("herd exited: %s", herd.Stdout)
	}
	chtest.WaitFor(t, 60*time.Second, func() bool {
		return strings.TrimSpace(sqlOut(t, dir, "SELECT count() FROM herd_raw.events WHERE startsWith(product_id, 'R')")) == strconv.Itoa(len(acked))
	})
	if dup := strings.TrimSpace(sqlOut(t, dir, "SELECT count() FROM (SELECT product_id FROM herd_raw.events GROUP BY product_id HAVING count() > 1)")); dup != "0" {
		t.Fatalf("%s events stored twice", dup)
	}
	t.Logf("%d events acknowledged across the kill and the restart, every one stored once", len(acked))
}

// An upgrade loses nothing: segments that earlier releases' code wrote
// (ingest/spool/testdata/releases) and left in the spool are inserted by
// this release's herd when it starts, none quarantined.
func TestUpgradeInsertsEarlierSpoolSegments(t *testing.T) {
	chtest.Servers(t)
	dir := t.TempDir()
	spoolDir := filepath.Join(dir, "spool")
	if err := os.MkdirAll(spoolDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for i, commit := range []string{"999e62c", "d913bbd"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "ingest", "spool", "testdata", "releases", commit+".arrows"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(spoolDir, fmt.Sprintf("seg-%020d.arrows", i+1)), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	url := "http://" + freeAddr(t)
	startHerdProcess(t, "ingest", "--data-dir", dir, "--ingest-addr", strings.TrimPrefix(url, "http://"), "--log-level", "warn")
	waitReady(t, url)
	chtest.WaitFor(t, 60*time.Second, func() bool {
		return strings.TrimSpace(sqlOut(t, dir, "SELECT count() FROM herd_raw.events WHERE startsWith(path, '/upgrade/')")) == "6"
	})
	if got := strings.TrimSpace(sqlOut(t, dir, "SELECT groupArray(product_id) FROM (SELECT product_id FROM herd_raw.events WHERE startsWith(path, '/upgrade/') ORDER BY product_id)")); got != "['999e62c-P0','999e62c-P1','999e62c-P2','d913bbd-P0','d913bbd-P1','d913bbd-P2']" {
		t.Errorf("stored %s", got)
	}
	if q, _ := os.ReadDir(filepath.Join(spoolDir, "quarantine")); len(q) != 0 {
		t.Errorf("%d segments quarantined on upgrade", len(q))
	}
}
