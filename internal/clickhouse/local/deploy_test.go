package local_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
	"github.com/herd-analytics/herd/internal/clickhouse/local"
)

// deployDir is the repository's deploy/ folder.
var deployDir = filepath.Join("..", "..", "..", "deploy")

// Every XML file shipped in deploy/ is well-formed: ClickHouse refuses to
// start with one that is not.
func TestDeployXMLIsWellFormed(t *testing.T) {
	n := 0
	err := filepath.WalkDir(deployDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".xml") {
			return err
		}
		n++
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		dec := xml.NewDecoder(f)
		for {
			if _, err := dec.Token(); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				t.Errorf("%s: %v", path, err)
				return nil
			}
		}
	})
	if err != nil || n == 0 {
		t.Fatalf("%d files: %v", n, err)
	}
}

// A real server started with deploy/clickhouse/config.d and users.d (their
// password placeholders filled in) lets both users in, and refuses the
// reader the raw database and any write.
func TestDeployConfigLoadsInARealServer(t *testing.T) {
	chtest.Servers(t)
	dir := t.TempDir()
	writerPW, readerPW := "deploy-writer-pw-1", "deploy-reader-pw-2"
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	for _, f := range []struct{ from, to string }{
		{"clickhouse/config.d/herd.xml", "config.d/herd.xml"},
		{"clickhouse/users.d/herd.xml", "users.d/herd.xml"},
	} {
		data, err := os.ReadFile(filepath.Join(deployDir, f.from))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.NewReplacer("REPLACE_WITH_SHA256_OF_WRITER_PASSWORD", sum(writerPW), "REPLACE_WITH_SHA256_OF_READER_PASSWORD", sum(readerPW)).Replace(string(data))
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f.to)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.to), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The managed launcher keeps the passwords it finds, so it checks the
	// server with the ones the deploy file's hashes were made from.
	for name, pw := range map[string]string{"writer.password": writerPW, "reader.password": readerPW} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	local, err := local.Start(ctx, local.Config{Dir: dir})
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log", "clickhouse-server.err.log"))
		t.Fatalf("%v\n%s", err, log[max(0, len(log)-3000):])
	}
	t.Cleanup(func() { _ = local.Stop(context.Background()) })
	wcfg, rcfg := local.Writer(), local.Reader()
	wcfg.Password, rcfg.Password = writerPW, readerPW
	w, err := clickhouse.New(wcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := clickhouse.New(rcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE DATABASE herd_raw", "CREATE DATABASE herd", "CREATE TABLE herd_raw.events (x UInt8) ENGINE = Memory", "CREATE TABLE herd.kpis (x UInt8) ENGINE = Memory", "INSERT INTO herd.kpis VALUES (1)"} {
		if err := w.Exec(ctx, q); err != nil {
			t.Fatalf("writer with the deploy password: %s: %v", q, err)
		}
	}
	if err := r.Exec(ctx, "SELECT count() FROM herd.kpis"); err != nil {
		t.Fatalf("reader with the deploy password: %v", err)
	}
	// The reader's profile is the deploy file's, limits and all.
	readerLimits(t, r)
	if err := r.Exec(ctx, "SELECT count() FROM herd_raw.events"); err == nil {
		t.Fatal("the reader read herd_raw")
	}
	if err := r.Exec(ctx, "INSERT INTO herd.kpis VALUES (2)"); err == nil {
		t.Fatal("the reader wrote")
	}
	if err := r.Exec(ctx, "SELECT 1", clickhouse.WithSetting("readonly", "0")); err == nil {
		t.Fatal("the reader lifted readonly")
	}
}

// readerLimits checks that r, the dashboard's user, runs under the limits
// of what the dashboard needs, and that a runaway query is cut off.
func readerLimits(t *testing.T, r *clickhouse.Client) {
	t.Helper()
	ctx := context.Background()
	got := map[string]string{}
	if err := r.Select(ctx, "SELECT name, value FROM system.settings WHERE name IN ('readonly', 'max_memory_usage', 'max_execution_time', 'max_rows_to_read', 'max_result_rows', 'result_overflow_mode')",
		func(b *proto.Block) error {
			for i := 0; i < b.Rows(); i++ {
				got[clickhouse.Get[string](b, 0, i)] = clickhouse.Get[string](b, 1, i)
			}
			return nil
		}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"readonly": "1", "max_memory_usage": "1000000000", "max_execution_time": "20", "max_rows_to_read": "50000000", "max_result_rows": "200000", "result_overflow_mode": "throw"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("reader's %s = %q, want %s", k, got[k], v)
		}
	}
	// 60 million rows of system.numbers: stopped at the 50 million limit.
	start := time.Now()
	err := r.Exec(ctx, "SELECT count() FROM system.numbers WHERE number < 60000000")
	if err == nil || !strings.Contains(err.Error(), "158") && !strings.Contains(strings.ToLower(err.Error()), "limit for rows") {
		t.Errorf("a runaway query ran as the reader (%v after %v)", err, time.Since(start))
	}
}
