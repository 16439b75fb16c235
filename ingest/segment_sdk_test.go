package ingest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herd-analytics/herd/ingest/ingesttest"
	"github.com/herd-analytics/herd/internal/clickhouse/chtest"
)

// TestSegmentNodeSDK points the official @segment/analytics-node (installed
// by make test into testdata/segment-sdk) at herd and checks that its
// e-commerce events land with the right fields, and that identify calls and
// personal data do not.
func TestSegmentNodeSDK(t *testing.T) {
	sdk, err := filepath.Abs("testdata/segment-sdk")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(sdk, "node_modules", "@segment", "analytics-node")); err != nil {
		t.Fatalf("the Segment SDK is not installed (make test runs scripts/install-deps.sh, which runs npm ci in %s): %v", sdk, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed (make test installs it): %v", err)
	}

	sites := configuredSites(t, "sites:\n  - name: shop\n    domains: [shop.example]\n    write_keys: [wk-test-3f9a8c21d7e4]\n")
	db := chtest.Migrated(t)
	e := startEdgeWith(t, db, ingesttest.Options{Sites: sites})

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "send.mjs")
	cmd.Dir = sdk
	cmd.Env = append(os.Environ(), "HERD_HOST="+e.url, "WRITE_KEY=wk-test-3f9a8c21d7e4")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "flushed") || strings.Contains(string(out), "segment error") {
		t.Fatalf("node send.mjs: %v\n%s", err, out)
	}

	got := e.query(t, "SELECT site, type, path, utm_source, referrer_host, browser, os, product_id, product_category, product_price, position, list, step, order_value, currency, items, products, search_term FROM "+
		db.Names.Raw+".events ORDER BY type, product_id")
	want := strings.Join([]string{
		"shop\tpageview\t/product/p-42-linen-shirt\tnewsletter\tgoogle.com\tSafari\tMacOS\t\t\t0.00\t0\t\t0\t0.00\t\\0\\0\\0\t0\t[]\t",
		"shop\tproduct_list_view\t/product/p-42-linen-shirt\tnewsletter\tgoogle.com\tSafari\tMacOS\t\tshirts\t0.00\t0\tcategory:shirts\t0\t0.00\t\\0\\0\\0\t0\t['P-41','P-42']\t",
		"shop\tproduct_view\t/product/p-42-linen-shirt\tnewsletter\tgoogle.com\tSafari\tMacOS\tP-42\tshirts\t49.90\t3\t\t0\t0.00\t\\0\\0\\0\t0\t[]\t",
		"shop\tproduct_click\t/product/p-42-linen-shirt\tnewsletter\tgoogle.com\tSafari\tMacOS\tP-42\tshirts\t49.90\t3\tcategory:shirts\t0\t0.00\t\\0\\0\\0\t0\t[]\t",
		"shop\tadd_to_cart\t/product/p-42-linen-shirt\tnewsletter\tgoogle.com\tSafari\tMacOS\tP-42\tshirts\t49.90\t3\t\t0\t0.00\t\\0\\0\\0\t0\t[]\t",
		"shop\tcheckout_step\t/product/p-42-linen-shirt\tnewsletter\tgoogle.com\tSafari\tMacOS\t\t\t0.00\t0\t\t2\t0.00\t\\0\\0\\0\t0\t[]\t",
		"shop\tpurchase\t/product/p-42-linen-shirt\tnewsletter\tgoogle.com\tSafari\tMacOS\t\t\t0.00\t0\t\t0\t99.80\tEUR\t2\t['P-42','P-43']\t",
		"shop\tsearch\t/product/p-42-linen-shirt\tnewsletter\tgoogle.com\tSafari\tMacOS\t\t\t0.00\t0\t\t0\t0.00\t\\0\\0\\0\t0\t[]\tlinen shirt",
	}, "\n") + "\n"
	if got != want {
		t.Fatalf("rows from the Segment SDK:\n%s\nwant:\n%s", got, want)
	}
	// identify carries traits (an email) and is dropped whole; the query
	// string's email never reaches a column.
	if n := e.query(t, "SELECT count() FROM "+db.Names.Raw+".events WHERE position(path, '@') > 0 OR position(search_term, '@') > 0"); n != "0\n" {
		t.Fatalf("an email reached raw events: %s", n)
	}
}
