// Command benchreport runs herd's whole-system benchmarks against a managed
// ClickHouse and writes the numbers into docs/benchmarks.md (`make bench`).
//
// The machine is shared and noisy, so every figure is a ratio of two things
// measured side by side, alternating A B A B, in one run.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/google/uuid"

	"github.com/herd-analytics/herd/ingest"
	"github.com/herd-analytics/herd/ingest/spool"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/clickhouse/local"
	"github.com/herd-analytics/herd/schemas"
)

func main() {
	out := flag.String("out", "docs/benchmarks.md", "markdown file whose marked sections are rewritten")
	rows := flag.Int("rows", 1_000_000, "rows per insert")
	runs := flag.Int("runs", 5, "measured pairs")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	floor := flag.Bool("serve-floor", false, "serve the ingest benchmark's floor (an empty Fiber handler) until stdin closes")
	flag.Parse()
	if *floor {
		if err := serveFloor(); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	// Interrupted, the run stops its ClickHouse (a kept -dir stays usable).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *out, *rows, *runs); err != nil {
		pprof.StopCPUProfile()
		log.Fatal(err)
	}
}

func run(ctx context.Context, out string, rows, runs int) error {
	dir := *workDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "herd-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	srv, err := local.Start(ctx, local.Config{Dir: filepath.Join(dir, "clickhouse")})
	if err != nil {
		return err
	}
	defer srv.Stop(context.Background())
	c, err := clickhouse.New(srv.Writer(), nil)
	if err != nil {
		return err
	}
	ms, err := clickhouse.LoadMigrations(schemas.Migrations, schemas.MigrationsDir)
	if err != nil {
		return err
	}
	if err := clickhouse.Migrate(ctx, c, clickhouse.DefaultDatabases, ms, nil); err != nil {
		return err
	}
	if *only == "" || *only == "insert" {
		section, err := benchInsert(ctx, c, srv, dir, rows, runs)
		if err != nil {
			return err
		}
		if err := writeSection(out, "clickhouse-insert", section); err != nil {
			return err
		}
	}
	if *only == "" || *only == "ingest" {
		section, err := benchIngest(ctx, c, srv, dir)
		if err != nil {
			return err
		}
		if err := writeSection(out, "ingest", section); err != nil {
			return err
		}
	}
	if *only == "" || *only == "ingest" || *only == "pipeline" {
		section, err := benchPipeline(ctx)
		if err != nil {
			return err
		}
		if err := writeSection(out, "pipeline", section); err != nil {
			return err
		}
	}
	if *only == "" || *only == "dashboard" {
		section, err := benchDashboard(ctx, c, srv, dir, 40)
		if err != nil {
			return err
		}
		if err := writeSection(out, "dashboard", section); err != nil {
			return err
		}
	}
	if *only == "" || *only == "utility" {
		sizes, err := intList(*utilitySizes)
		if err != nil {
			return err
		}
		eps, err := floatList(*utilityEpsilons)
		if err != nil {
			return err
		}
		section, results, err := benchUtility(ctx, c, dir, filepath.Join(filepath.Dir(out), "utility-results.json"), sizes, eps, 28, *utilityDraws)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(filepath.Dir(out), "utility-frontier.svg"), []byte(frontierSVG(results)), 0o644); err != nil {
			return err
		}
		if err := writeSection(out, "utility", section); err != nil {
			return err
		}
	}
	if *only == "" || *only == "cluster" {
		section, err := benchCluster(ctx, c, dir, *clusterEvents)
		if err != nil {
			return err
		}
		if err := writeSection(out, "cluster", section); err != nil {
			return err
		}
	}
	if *only == "" || *only == "publish" {
		section, err := benchPublish(ctx, c, *publishEvents, 3)
		if err != nil {
			return err
		}
		if err := writeSection(out, "publish", section); err != nil {
			return err
		}
	}
	return nil
}

var (
	only            = flag.String("only", "", "run one benchmark: insert, ingest (with pipeline), pipeline, publish, utility, dashboard or cluster")
	clusterEvents   = flag.Int("cluster-events", 2_000_000, "raw events of the day the cluster benchmark publishes")
	publishEvents   = flag.Int("publish-events", 10_000_000, "raw events in the publish benchmark's day")
	utilitySizes    = flag.String("utility-sizes", "1500,10000", "reference shops of the utility benchmark, in visitor-days a day (100000 takes about an hour more)")
	workDir         = flag.String("dir", "", "working directory kept between runs, its ClickHouse and the utility shops' imports reused (default: a temporary one, removed)")
	utilityDraws    = flag.Int("utility-draws", 3, "publications of each shop at each budget, each with its own noise")
	utilityEpsilons = flag.String("utility-epsilons", "1,2,4,8", "total budgets per visitor-day the utility benchmark publishes at")
)

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("list %q: %q is not a positive integer", s, f)
		}
		out = append(out, n)
	}
	return out, nil
}

func floatList(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || x <= 0 {
			return nil, fmt.Errorf("list %q: %q is not a positive number", s, f)
		}
		out = append(out, x)
	}
	return out, nil
}

// benchInsert compares inserting rows of the raw-events shape through
// internal/clickhouse (encode a Native block, POST it over HTTP) with
// clickhouse-client sending the same rows, pre-encoded in a file, over the
// native TCP protocol.
func benchInsert(ctx context.Context, c *clickhouse.Client, srv *local.Server, dir string, rows, runs int) (string, error) {
	block, err := rawEventsBlock(rows)
	if err != nil {
		return "", err
	}
	var buf chproto.Buffer
	if err := block.Encode(&buf, 0); err != nil {
		return "", err
	}
	file := filepath.Join(dir, "events.native")
	if err := os.WriteFile(file, buf.Buf, 0o600); err != nil {
		return "", err
	}
	size := len(buf.Buf)
	client, err := exec.LookPath("clickhouse-client")
	if err != nil {
		return "", fmt.Errorf("clickhouse-client: %w; install it with: %s", err, local.InstallHint)
	}

	fresh := func(table string) error {
		if err := c.Exec(ctx, "DROP TABLE IF EXISTS herd_raw."+table); err != nil {
			return err
		}
		return c.Exec(ctx, "CREATE TABLE herd_raw."+table+" AS herd_raw.events")
	}
	count := func(table string) (uint64, error) {
		var n uint64
		err := c.Select(ctx, "SELECT count() FROM herd_raw."+table, func(b *proto.Block) error {
			n = clickhouse.Get[uint64](b, 0, 0)
			return nil
		})
		return n, err
	}
	herd := func() (time.Duration, error) {
		if err := fresh("bench_a"); err != nil {
			return 0, err
		}
		start := time.Now()
		if err := c.Insert(ctx, "herd_raw.bench_a", block); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
	cli := func() (time.Duration, error) {
		if err := fresh("bench_b"); err != nil {
			return 0, err
		}
		in, err := os.Open(file)
		if err != nil {
			return 0, err
		}
		defer in.Close()
		w := srv.Writer()
		cmd := exec.CommandContext(ctx, client, "--host", "127.0.0.1", "--port", strconv.Itoa(srv.TCPPort()),
			"--user", w.User, "--password", w.Password, "--query", "INSERT INTO herd_raw.bench_b FORMAT Native")
		cmd.Stdin = in
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("clickhouse-client: %w: %s", err, stderr.String())
		}
		return time.Since(start), nil
	}

	// One warm-up pair, then the measured pairs.
	var ratios, aRates, bRates []float64
	for i := 0; i <= runs; i++ {
		a, err := herd()
		if err != nil {
			return "", err
		}
		b, err := cli()
		if err != nil {
			return "", err
		}
		for _, t := range []string{"bench_a", "bench_b"} {
			n, err := count(t)
			if err != nil {
				return "", err
			}
			if n != uint64(rows) {
				return "", fmt.Errorf("%s has %d rows after insert, want %d", t, n, rows)
			}
		}
		if i == 0 {
			continue
		}
		ra, rb := float64(rows)/a.Seconds(), float64(rows)/b.Seconds()
		aRates, bRates, ratios = append(aRates, ra), append(bRates, rb), append(ratios, ra/rb)
		fmt.Fprintf(os.Stderr, "pair %d: herd %.0f rows/s, clickhouse-client %.0f rows/s, ratio %.3f\n", i, ra, rb, ra/rb)
	}
	v, _ := c.Version(ctx)
	var s strings.Builder
	fmt.Fprintf(&s, "Measured %s on %s/%s, %d cores, ClickHouse %s (managed, loopback), %d pairs after one warm-up, alternating.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), v, runs)
	fmt.Fprintf(&s, "%d rows of the `herd_raw.events` shape (%d columns, %.1f MiB as Native) into a fresh table per run.\n\n",
		rows, len(block.Columns), float64(size)/(1<<20))
	s.WriteString("| path | rows/s median | min | max |\n|---|---|---|---|\n")
	fmt.Fprintf(&s, "| A: `internal/clickhouse` Insert (encode block + HTTP POST, Native) | %s | %s | %s |\n", f0(median(aRates)), f0(slices.Min(aRates)), f0(slices.Max(aRates)))
	fmt.Fprintf(&s, "| B: `clickhouse-client --query \"INSERT ... FORMAT Native\"` < file (native TCP) | %s | %s | %s |\n", f0(median(bRates)), f0(slices.Min(bRates)), f0(slices.Max(bRates)))
	fmt.Fprintf(&s, "\n**Ratio A/B (pair by pair): median %.2f** (min %.2f, max %.2f). Aim: ≥ 0.9.\n", median(ratios), slices.Min(ratios), slices.Max(ratios))
	return s.String(), nil
}

func f0(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// rawEventsBlock builds n plausible pseudonymous events (a shop's paths,
// products with a skewed popularity, a mix of event types and devices) and
// encodes them exactly as ingest does.
func rawEventsBlock(n int) (*proto.Block, error) {
	r := rand.New(rand.NewPCG(42, 7))
	zipf := rand.NewZipf(r, 1.1, 1, 4999)
	types := []ingest.EventType{ingest.Pageview, ingest.ProductListView, ingest.ProductView, ingest.ProductClick, ingest.AddToCart, ingest.CheckoutStep, ingest.Purchase, ingest.Search, ingest.SlotImpression}
	devices := []string{"desktop", "mobile", "mobile", "tablet"}
	browsers := []string{"Chrome", "Safari", "Firefox", "Edge"}
	cats := []string{"shoes", "shirts", "bags", "jackets", "hats", "socks"}
	base := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	rows := make([]spool.Row, n)
	for i := range rows {
		p := zipf.Uint64()
		id := uuid.New()
		row := spool.Row{
			EventID: id, Site: "demo", Received: base.Add(time.Duration(r.Int64N(int64(time.Hour)))).Truncate(time.Second),
			Seq: uint16(i % 20), Type: uint8(types[r.IntN(len(types))]), Visitor: r.Uint64(), Session: r.Uint64(),
			Path: "/product/" + strconv.FormatUint(p, 10), PageType: "product",
			ReferrerHost: []string{"", "google.com", "instagram.com"}[r.IntN(3)],
			Browser:      browsers[r.IntN(len(browsers))], BrowserMajor: uint16(100 + r.IntN(30)),
			OS:     []string{"Windows", "iOS", "Android", "macOS"}[r.IntN(4)],
			Device: devices[r.IntN(len(devices))], Country: []string{"DE", "FR", "US", "GB"}[r.IntN(4)],
			ProductID: "p" + strconv.FormatUint(p, 10), ProductCategory: cats[p%uint64(len(cats))],
			ProductPrice: int64(500 + p*37%20000), Position: uint16(r.IntN(48)), List: "category",
			Variant: []string{"A", "B"}[r.IntN(2)], SearchResults: -1,
		}
		if row.Type == uint8(ingest.Purchase) {
			row.OrderValue, row.Currency = row.ProductPrice*int64(1+r.IntN(3)), "EUR"
		}
		rows[i] = row
	}
	return spool.EncodeRows(rows)
}

// writeSection replaces the text between <!-- bench:NAME --> and
// <!-- /bench:NAME --> in path, or appends the section.
func writeSection(path, name, body string) error {
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	open, end := "<!-- bench:"+name+" -->", "<!-- /bench:"+name+" -->"
	text := string(data)
	block := open + "\n" + body + end
	i, j := strings.Index(text, open), strings.Index(text, end)
	if i >= 0 && j > i {
		text = text[:i] + block + text[j+len(end):]
	} else {
		text += "\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(text), 0o644)
}
