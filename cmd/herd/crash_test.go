package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
	dir := t.TempDir()
	ingestAddr, dashAddr := freeAddr(t), freeAddr(t)
	args := []string{"serve", "--data-dir", dir, "--ingest-addr", ingestAddr, "--dashboard-addr", dashAddr, "--log-level", "warn"}
	herd := startHerdProcess(t, args...)
	url := "http://" + ingestAddr
	waitReady(t, url)

	var mu sync.Mutex
	acked := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var ids []string
				var b strings.Builder
				b.WriteString("[")
				for i := range 20 {
					id := fmt.Sprintf("K%d-%d-%d", g, n, i)
					ids = append(ids, id)
					if i > 0 {
						b.WriteString(",")
					}
					fmt.Fprintf(&b, `{"type":"add_to_cart","product":{"id":%q}}`, id)
				}
				b.WriteString("]")
				req, _ := http.NewRequest("POST", url+"/api/events", strings.NewReader(b.String()))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("User-Agent", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					time.Sleep(20 * time.Millisecond) // herd is down
					continue
				}
				var body bytes.Buffer
				_, _ = body.ReadFrom(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 202 && strings.Contains(body.String(), `"accepted":20`) {
					mu.Lock()
					for _, id := range ids {
						acked[id] = true
					}
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	if err := herd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = herd.Wait()
	mu.Lock()
	atKill := len(acked)
	mu.Unlock()
	if atKill == 0 {
		t.Fatal("nothing was acknowledged before the kill")
	}
	startHerdProcess(t, args...)
	waitReady(t, url)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

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
	mu.Lock()
	defer mu.Unlock()
	for id := range acked {
		if stored[id] != 1 {
			t.Fatalf("acknowledged event %s stored %d times (%d acknowledged, %d stored)", id, stored[id], len(acked), len(stored))
		}
	}
	t.Logf("%d acknowledged before the kill, %d in all; every one stored once", atKill, len(acked))
}
