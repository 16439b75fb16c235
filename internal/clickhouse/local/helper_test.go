package local_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/local"
)

// TestMain turns the test binary into a helper process when
// HERD_TEST_HELPER is set: a herd that starts a managed server and is then
// killed with SIGKILL, leaving an orphan.
func TestMain(m *testing.M) {
	if role := os.Getenv("HERD_TEST_HELPER"); role != "" {
		if err := runHelper(role); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runHelper(role string) error {
	if role != "local" {
		return fmt.Errorf("unknown helper role %q", role)
	}
	l, err := local.Start(context.Background(), local.Config{Dir: os.Getenv("HERD_TEST_DIR")})
	if err != nil {
		return err
	}
	fmt.Printf("ready %d %s\n", l.PID(), l.Writer().URL())
	time.Sleep(time.Hour) // until the test kills us
	return nil
}

// helper starts the test binary as a helper process with the given role and
// extra environment.
func helper(t *testing.T, role string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"HERD_TEST_HELPER=" + role}, env...)...)
	return cmd
}

func startLocal(t *testing.T, dir string) *local.Server {
	t.Helper()
	l, err := local.Start(context.Background(), local.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Stop(context.Background()) })
	return l
}

func mustExec(t *testing.T, cfg clickhouse.Config, query string) string {
	t.Helper()
	c, err := clickhouse.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out strings.Builder
	if err := c.Raw(context.Background(), query, &out); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out.String()
}
