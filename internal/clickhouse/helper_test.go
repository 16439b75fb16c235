package clickhouse_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/schemas"
)

// helperMain turns the test binary into a helper process when
// HERD_TEST_HELPER is set, so tests can run work in other processes (to
// race them, or to kill them with SIGKILL). It reports whether it ran.
func helperMain() bool {
	role := os.Getenv("HERD_TEST_HELPER")
	if role == "" {
		return false
	}
	if err := runHelper(role); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

func runHelper(role string) error {
	ctx := context.Background()
	switch role {
	case "migrate":
		cfg, err := clickhouse.ParseURL(os.Getenv("HERD_TEST_URL"))
		if err != nil {
			return err
		}
		c, err := clickhouse.New(cfg, nil)
		if err != nil {
			return err
		}
		ms, err := clickhouse.LoadMigrations(schemas.Migrations, schemas.MigrationsDir)
		if err != nil {
			return err
		}
		dbs := clickhouse.Databases{Raw: os.Getenv("HERD_TEST_RAW"), Pub: os.Getenv("HERD_TEST_PUB")}
		return clickhouse.Migrate(ctx, c, dbs, ms, nil)
	}
	return fmt.Errorf("unknown helper role %q", role)
}

// helper starts the test binary as a helper process with the given role and
// extra environment.
func helper(t *testing.T, role string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"HERD_TEST_HELPER=" + role}, env...)...)
	return cmd
}

func helperOutput(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper %v: %v\n%s", cmd.Env[len(cmd.Env)-1], err, out)
	}
	return strings.TrimSpace(string(out))
}
