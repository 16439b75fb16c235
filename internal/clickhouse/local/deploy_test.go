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
	// The reader's profile is the deploy file's (the managed server's own
	// users.xml caps memory at 4 GiB, the deploy file at 4 GB).
	var limit string
	if err := r.Select(ctx, "SELECT value FROM system.settings WHERE name = 'max_memory_usage'", func(b *proto.Block) error {
		if b.Rows() > 0 {
			limit = clickhouse.Get[string](b, 0, 0)
		}
		return nil
	}); err != nil || limit != "4000000000" {
		t.Fatalf("reader's max_memory_usage %q (%v): users.d/herd.xml not in force", limit, err)
	}
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
