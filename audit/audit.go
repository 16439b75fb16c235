// Package audit is herd audit: it checks, against the live databases, that
// the privacy model holds — the k floor recomputed from raw events, the ε
// budget, raw retention, pseudonym key lifetime, a scan of every stored
// string for personal data, the dashboard user's grants, and the purpose
// inventory both ways.
package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/aggregate"
	"github.com/herd-analytics/herd/ingest/keyring"
	"github.com/herd-analytics/herd/ingest/scrub"
	"github.com/herd-analytics/herd/internal/clickhouse"
	"github.com/herd-analytics/herd/internal/privacy"
	"github.com/herd-analytics/herd/schemas"
)

// Auditor checks, against the live databases, that the privacy model holds.
type Auditor struct {
	Publisher *aggregate.Publisher
	// Reader is the dashboard's ClickHouse user; it must not read raw events.
	Reader *clickhouse.Client
	// KeyFile is ingest's day-key file; empty when ingest runs elsewhere,
	// and then the key check says it was not run.
	KeyFile string
	// SharedKeys, on a cluster, lists the days whose keys the ingest nodes
	// share (coord.Conn, without the secret); nil when there are none.
	SharedKeys interface {
		ListDayKeys(ctx context.Context) ([]string, error)
	}
	Now func() time.Time
}

// Check is one audit check's outcome. Findings name tables, columns and
// counts, never the offending values.
type Check struct {
	Name     string   `json:"name"`
	OK       bool     `json:"ok"`
	NotRun   string   `json:"not_run,omitempty"`
	Detail   string   `json:"detail"`
	Findings []string `json:"findings,omitempty"`
}

// Report is the audit: every check, the privacy statement and the purpose
// inventory.
type Report struct {
	OK        bool               `json:"ok"`
	Checks    []Check            `json:"checks"`
	Statement privacy.Statement  `json:"statement"`
	Inventory *schemas.Inventory `json:"inventory"`
}

// Audit runs every check. A check that cannot run (ClickHouse error) fails.
func (a *Auditor) Audit(ctx context.Context) (*Report, error) {
	now := time.Now().UTC()
	if a.Now != nil {
		now = a.Now().UTC()
	}
	inv, err := schemas.Purposes()
	if err != nil {
		return nil, err
	}
	rep := &Report{OK: true, Inventory: inv}
	checks := []func(context.Context, time.Time) Check{a.checkKFloor, a.checkBudget, a.checkConsistent, a.checkRetention}
	if a.Publisher.Databases().Cluster != "" {
		checks = append(checks, a.checkReplicas)
	}
	checks = append(checks, a.checkKeys)
	if a.SharedKeys != nil {
		checks = append(checks, a.checkSharedKeys)
	}
	checks = append(checks, a.checkStrings, a.checkRawCopies, a.checkReader,
		func(ctx context.Context, _ time.Time) Check { return a.checkExact(ctx, inv) },
		func(ctx context.Context, _ time.Time) Check { return a.checkInventory(ctx, inv) },
	)
	for _, f := range checks {
		c := f(ctx, now)
		if !c.OK && c.NotRun == "" {
			rep.OK = false
		}
		rep.Checks = append(rep.Checks, c)
	}
	if rep.Statement, err = aggregate.BuildStatement(ctx, a.Publisher.Client(), a.Publisher.Databases().Pub, a.Publisher.Config(), a.Publisher.Tables()); err != nil {
		return nil, err
	}
	if err := a.Publisher.OperatorFigures(ctx, &rep.Statement); err != nil {
		return nil, err
	}
	return rep, nil
}

func failed(name string, err error) Check {
	return Check{Name: name, Detail: "could not run: " + err.Error()}
}

// checkKFloor recomputes every published cell's true visitor-days — and
// every other row's — for every day whose raw hours still exist and every
// week and month whose days' partial sums still exist.
func (a *Auditor) checkKFloor(ctx context.Context, now time.Time) Check {
	const name = "k floor"
	p := a.Publisher
	hours, err := p.RawHours(ctx, now)
	if err != nil {
		return failed(name, err)
	}
	oldestPartial, err := p.OldestPartialDay(ctx)
	if err != nil {
		return failed(name, err)
	}
	c := Check{Name: name, OK: true}
	var oldestRaw time.Time
	for _, h := range hours {
		if oldestRaw.IsZero() || h.Hour.Before(oldestRaw) {
			oldestRaw = h.Hour
		}
	}
	recomputable := func(b aggregate.Bucket) bool {
		if b.Grain == aggregate.Day {
			return !oldestRaw.IsZero() && !b.Start.Before(oldestRaw)
		}
		return b.Grain != aggregate.Hour && !oldestPartial.IsZero() && !b.Start.Before(oldestPartial)
	}
	cells, buckets := 0, 0
	days := map[aggregate.Bucket]*aggregate.DayEvents{} // each day read once for all tables
	for _, t := range p.Tables() {
		var bs []aggregate.Bucket
		err := p.Client().Select(ctx, "SELECT DISTINCT site, toUInt8(grain), bucket FROM "+p.Databases().Pub+"."+t.Name, func(b *proto.Block) error {
			for i := 0; i < b.Rows(); i++ {
				bk := aggregate.Bucket{Site: clickhouse.Get[string](b, 0, i), Grain: aggregate.Grain(clickhouse.Get[uint8](b, 1, i)), Start: clickhouse.Get[time.Time](b, 2, i).UTC()}
				if recomputable(bk) {
					bs = append(bs, bk)
				}
			}
			return nil
		})
		if err != nil {
			return failed(name, err)
		}
		for _, b := range bs {
			var day *aggregate.DayEvents
			if b.Grain == aggregate.Day {
				if day = days[b]; day == nil {
					day = p.Day(b)
					days[b] = day
				}
			}
			n, findings, err := p.CheckFloor(ctx, t, b, day)
			if err != nil {
				return failed(name, err)
			}
			buckets++
			cells += n
			if len(findings) > 0 {
				c.OK = false
				c.Findings = append(c.Findings, findings...)
			}
		}
	}
	c.Detail = fmt.Sprintf("%d published cells and other rows in %d buckets recomputed from raw events (days) and partial sums (weeks, months)", cells, buckets)
	return a.storedFloor(ctx, c)
}

// storedFloor: every published cell, whatever its age, states at least k
// visitor-days (the publisher never shows fewer). Raw events are gone after
// the retention; this part of the check is not.
func (a *Auditor) storedFloor(ctx context.Context, c Check) Check {
	p := a.Publisher
	k := p.Config().K
	for _, t := range p.Tables() {
		q := "SELECT count(), min(visitors) FROM " + p.Databases().Pub + "." + t.Name + " WHERE visitors < " + clickhouse.QuoteInt(k)
		err := p.Client().Select(ctx, q, func(b *proto.Block) error {
			if n := clickhouse.Get[uint64](b, 0, 0); n > 0 {
				c.OK = false
				c.Findings = append(c.Findings, fmt.Sprintf("%s: %d published cells state fewer than k = %d visitor-days (as few as %d)", t.Name, n, k, clickhouse.Get[uint64](b, 1, 0)))
			}
			return nil
		})
		if err != nil {
			return failed(c.Name, err)
		}
	}
	c.Detail += fmt.Sprintf("; every stored cell of %d tables states ≥ %d visitor-days", len(p.Tables()), k)
	return c
}

// checkBudget: for every site and day, the ρ of every release covering that
// day (its day, the week and the month holding it, in every table) adds up
// to no more than the budget, whatever configuration each release ran with.
// Any release counts, even one whose cells never landed.
func (a *Auditor) checkBudget(ctx context.Context, _ time.Time) Check {
	const name = "privacy budget"
	p := a.Publisher
	budget := p.Budget()
	type siteDay struct {
		site string
		day  time.Time
	}
	spent := map[siteDay]float64{}
	q := "SELECT site, toUInt8(grain), bucket, max(rho) FROM " + p.Databases().Pub + ".rollup_runs WHERE state != 'failed' AND grain != 'hour'" +
		" GROUP BY table_name, site, grain, bucket"
	err := p.Client().Select(ctx, q, func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			bk := aggregate.Bucket{Site: clickhouse.Get[string](b, 0, i), Grain: aggregate.Grain(clickhouse.Get[uint8](b, 1, i)), Start: clickhouse.Get[time.Time](b, 2, i).UTC()}
			for _, d := range bk.Days() {
				spent[siteDay{bk.Site, d}] += clickhouse.Get[float64](b, 3, i)
			}
		}
		return nil
	})
	if err != nil {
		return failed(name, err)
	}
	c := Check{Name: name, OK: true}
	var most float64
	for sd, rho := range spent {
		most = max(most, rho)
		if rho > budget.Rho*(1+1e-9) {
			c.OK = false
			c.Findings = append(c.Findings, fmt.Sprintf("%s %s: ρ %.4f spent (ε %.3f), budget ρ %.4f (ε %g)", sd.site, sd.day.Format(time.DateOnly),
				rho, aggregate.EpsilonFor(rho, budget.NoiseDelta), budget.Rho, budget.Epsilon))
		}
	}
	sort.Strings(c.Findings)
	c.Detail = fmt.Sprintf("per visitor-day, every release of every table and grain together within ρ = %.4f (ε = %g, δ = %g); the most any day spent: ρ = %.4f over %d site-days",
		budget.Rho, budget.Epsilon, budget.Delta, most, len(spent))
	return c
}

// checkConsistent: no published row holds a value no shop can have.
func (a *Auditor) checkConsistent(ctx context.Context, _ time.Time) Check {
	const name = "consistent values"
	n, findings, err := a.Publisher.Impossible(ctx)
	if err != nil {
		return failed(name, err)
	}
	return Check{Name: name, OK: n == 0, Findings: findings,
		Detail: "no published row with an impossible value (ordered metrics out of order, revenue without purchases, growing funnel steps, fewer than k visitor-days)"}
}

// checkRetention: no raw hour older than the 7-day maximum; none older than
// the retention once published (the job runs every few minutes, so an hour of
// slack).
func (a *Auditor) checkRetention(ctx context.Context, now time.Time) Check {
	const name = "raw retention"
	p := a.Publisher
	hours, err := p.RawHours(ctx, now)
	if err != nil {
		return failed(name, err)
	}
	retention := p.Config().RawRetention
	c := Check{Name: name, OK: true}
	for _, h := range hours {
		end := h.Hour.Add(time.Hour)
		switch {
		case h.Hour.After(time.Now().Add(time.Hour)): // the wall clock, as retention uses
			c.OK = false
			c.Findings = append(c.Findings, fmt.Sprintf("raw hour %s (%d rows) is dated in the future", h.Hour.Format(time.DateTime), h.Rows))
		case !end.After(now.Add(-aggregate.MaxRawRetention)):
			c.OK = false
			c.Findings = append(c.Findings, fmt.Sprintf("raw hour %s (%d rows) is older than the 7-day maximum", h.Hour.Format(time.DateTime), h.Rows))
		case !end.After(now.Add(-retention-time.Hour)) && h.Published:
			c.OK = false
			c.Findings = append(c.Findings, fmt.Sprintf("raw hour %s (%d rows) is published and older than the retention %v", h.Hour.Format(time.DateTime), h.Rows, retention))
		}
	}
	c.Detail = fmt.Sprintf("%d raw hours present, retention %v, maximum %v", len(hours), retention, aggregate.MaxRawRetention)
	// Partial sums: never past their 40 days (retention drops them earlier,
	// once their weeks and months are published).
	oldest, err := p.OldestPartialDay(ctx)
	if err != nil {
		return failed(name, err)
	}
	if !oldest.IsZero() && !oldest.After(now.Add(-aggregate.MaxPartialRetention-24*time.Hour)) {
		c.OK = false
		c.Findings = append(c.Findings, fmt.Sprintf("partial sums of %s are older than the %v maximum", oldest.Format(time.DateOnly), aggregate.MaxPartialRetention))
	}
	if !oldest.IsZero() {
		c.Detail += fmt.Sprintf("; partial sums since %s (maximum %v)", oldest.Format(time.DateOnly), aggregate.MaxPartialRetention)
	}
	return c
}

func (a *Auditor) checkKeys(_ context.Context, now time.Time) Check {
	const name = "pseudonym keys"
	if a.KeyFile == "" {
		return Check{Name: name, NotRun: "no key file given (ingest runs elsewhere: audit it there with --data-dir)"}
	}
	days, expired, future, mode, err := keyring.InspectKeyFile(a.KeyFile, now)
	if os.IsNotExist(err) {
		return Check{Name: name, OK: true, Detail: "no key file: no keys exist"}
	}
	if err != nil {
		return failed(name, err)
	}
	c := Check{Name: name, OK: true, Detail: fmt.Sprintf("keys for %d days (%s), each destroyed %.0f h after its day", len(days), strings.Join(days, ", "), privacy.KeyLifetime.Hours())}
	for _, d := range expired {
		c.OK = false
		c.Findings = append(c.Findings, "the key of "+d+" is past its lifetime and still exists")
	}
	for _, d := range future {
		c.OK = false
		c.Findings = append(c.Findings, "a key exists for "+d+", a day still to come")
	}
	if mode&0o077 != 0 {
		c.OK = false
		c.Findings = append(c.Findings, fmt.Sprintf("key file mode %v: readable beyond its owner", mode))
	}
	return c
}

// checkSharedKeys (with ZooKeeper): the keys the ingest nodes of a cluster
// share exist only for days within their lifetime.
func (a *Auditor) checkSharedKeys(ctx context.Context, now time.Time) Check {
	const name = "shared pseudonym keys"
	days, err := a.SharedKeys.ListDayKeys(ctx)
	if err != nil {
		return failed(name, err)
	}
	c := Check{Name: name, OK: true, Detail: fmt.Sprintf("ZooKeeper holds keys for %d days (%s)", len(days), strings.Join(days, ", "))}
	tomorrow := now.Add(keyring.MaxSkew).Format(time.DateOnly)
	for _, d := range days {
		day, err := time.Parse(time.DateOnly, d)
		switch {
		case err != nil:
			c.OK = false
			c.Findings = append(c.Findings, fmt.Sprintf("a key node %q that names no day", d))
		case !now.Before(day.Add(24*time.Hour + privacy.KeyLifetime)):
			c.OK = false
			c.Findings = append(c.Findings, "the shared key of "+d+" is past its lifetime and still exists")
		case d > tomorrow:
			c.OK = false
			c.Findings = append(c.Findings, "a shared key exists for "+d+", a day still to come")
		}
	}
	return c
}

// checkReplicas (on a cluster) looks at every replica's raw partitions: a
// partition that retention dropped must be gone from each replica, and none
// may outlive the 7-day maximum anywhere.
func (a *Auditor) checkReplicas(ctx context.Context, now time.Time) Check {
	const name = "raw retention on every replica"
	p := a.Publisher
	from := p.Databases().ReplicaParts()
	hours, err := p.RawHours(ctx, now)
	if err != nil {
		return failed(name, err)
	}
	kept := map[time.Time]bool{}
	for _, h := range hours {
		kept[h.Hour] = true
	}
	c := Check{Name: name, OK: true}
	partitions := 0
	err = p.Client().Select(ctx, "SELECT partition, sum(rows) FROM "+from+" WHERE database = "+clickhouse.Quote(p.Databases().Raw)+
		" AND table = 'events"+clickhouse.LocalSuffix+"' AND active GROUP BY partition ORDER BY partition", func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			partitions++
			h, err := time.Parse(time.DateTime, clickhouse.Get[string](b, 0, i))
			if err != nil {
				return err
			}
			rows := clickhouse.Get[uint64](b, 1, i)
			switch {
			case !h.Add(time.Hour).After(now.Add(-aggregate.MaxRawRetention)):
				c.OK = false
				c.Findings = append(c.Findings, fmt.Sprintf("raw hour %s (%d rows) is older than the 7-day maximum on a replica", h.Format(time.DateTime), rows))
			case !kept[h.UTC()]:
				c.OK = false
				c.Findings = append(c.Findings, fmt.Sprintf("raw hour %s (%d rows) survives on a replica after retention dropped it", h.Format(time.DateTime), rows))
			}
		}
		return nil
	})
	if err != nil {
		return failed(name, err)
	}
	c.Detail = fmt.Sprintf("%d raw hours across the replicas", partitions)
	return c
}

// personalPatterns are what must never appear in a stored string: the
// scrubbers' own definition, and a raw user agent (which the pipeline
// parses and never stores).
var personalPatterns = append(slices.Clone(scrub.Patterns),
	scrub.Pattern{Name: "user agent", RE: `Mozilla/[0-9]|AppleWebKit/|Gecko/20|Chrome/[0-9]+\.|Safari/[0-9]+\.|(?i:[a-z]bot/[0-9])|python-requests/`})

// herdTables is a condition on system.columns' table: herd's own tables. On
// a cluster those are the Distributed tables, which read every shard; the
// shard-local tables under them hold the same columns, and the mirrors of
// system.parts hold ClickHouse's data, not herd's.
func (a *Auditor) herdTables() string {
	if a.Publisher.Databases().Cluster == "" {
		return "1"
	}
	return "NOT endsWith(table, " + clickhouse.Quote(clickhouse.LocalSuffix) + ") AND table NOT IN ('cluster_parts', 'replica_parts')"
}

// rawColumns are columns only raw events have: a table elsewhere with two
// of them is a copy of raw events, out of retention's reach.
var rawColumns = []string{"event_id", "visitor", "session"}

// checkRawCopies looks in every database of the server but herd's raw one
// (and ClickHouse's own) for tables holding raw events' pseudonym columns:
// an operator's copy ("SELECT * INTO backup…") keeps pseudonymous rows past
// the 48 h retention the audit proves for the raw database.
func (a *Auditor) checkRawCopies(ctx context.Context, _ time.Time) Check {
	const name = "raw events outside the raw database"
	raw := a.Publisher.Databases().Raw
	quoted := make([]string, len(rawColumns))
	for i, c := range rawColumns {
		quoted[i] = clickhouse.Quote(c)
	}
	c := Check{Name: name, OK: true}
	var dbs uint64
	err := a.Publisher.Client().Select(ctx, "SELECT database, table, arrayStringConcat(groupArray(name), ', ') FROM system.columns WHERE database NOT IN ('system', "+clickhouse.Quote(raw)+
		") AND name IN ("+strings.Join(quoted, ", ")+") GROUP BY database, table HAVING count() >= 2 ORDER BY database, table", func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			c.OK = false
			c.Findings = append(c.Findings, fmt.Sprintf("%s.%s holds raw events' columns (%s): a copy outside %s escapes its retention",
				clickhouse.Get[string](b, 0, i), clickhouse.Get[string](b, 1, i), clickhouse.Get[string](b, 2, i), raw))
		}
		return nil
	})
	if err == nil {
		err = a.Publisher.Client().Select(ctx, "SELECT count() FROM system.databases WHERE name NOT IN ('system', "+clickhouse.Quote(raw)+")", func(b *proto.Block) error {
			dbs = clickhouse.Get[uint64](b, 0, 0)
			return nil
		})
	}
	if err != nil {
		return failed(name, err)
	}
	c.Detail = fmt.Sprintf("%d other databases looked through for tables with two of %s", dbs, strings.Join(rawColumns, ", "))
	return c
}

// checkStrings scans every string column of both databases.
func (a *Auditor) checkStrings(ctx context.Context, _ time.Time) Check {
	const name = "personal data scan"
	dbs := a.Publisher.Databases()
	type col struct{ db, table, name, typ string }
	var cols []col
	err := a.Publisher.Client().Select(ctx, "SELECT database, table, name, type FROM system.columns WHERE "+a.herdTables()+" AND database IN ("+
		clickhouse.Quote(dbs.Raw)+", "+clickhouse.Quote(dbs.Pub)+") AND (type = 'String' OR type LIKE 'FixedString%' OR type = 'Array(String)') ORDER BY database, table, name",
		func(b *proto.Block) error {
			for i := 0; i < b.Rows(); i++ {
				cols = append(cols, col{clickhouse.Get[string](b, 0, i), clickhouse.Get[string](b, 1, i),
					clickhouse.Get[string](b, 2, i), clickhouse.Get[string](b, 3, i)})
			}
			return nil
		})
	if err != nil {
		return failed(name, err)
	}
	c := Check{Name: name, OK: true}
	for _, cl := range cols {
		ident := "`" + cl.name + "`"
		var sel []string
		for _, pat := range personalPatterns {
			m := "match(" + ident + ", " + clickhouse.Quote(pat.RE) + ")"
			switch {
			case cl.typ == "Array(String)":
				m = "arrayExists(x -> match(x, " + clickhouse.Quote(pat.RE) + "), " + ident + ")"
			case strings.HasPrefix(cl.typ, "FixedString"):
				m = "match(toString(" + ident + "), " + clickhouse.Quote(pat.RE) + ")"
			}
			sel = append(sel, "countIf("+m+")")
		}
		err := a.Publisher.Client().Select(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+cl.db+".`"+cl.table+"`", func(b *proto.Block) error {
			for i := 0; i < b.Rows(); i++ {
				for j, pat := range personalPatterns {
					if n := clickhouse.Get[uint64](b, j, i); n > 0 {
						c.OK = false
						c.Findings = append(c.Findings, fmt.Sprintf("%s.%s.%s: %d values look like %s", cl.db, cl.table, cl.name, n, pat.Name))
					}
				}
			}
			return nil
		})
		if err != nil {
			return failed(name, fmt.Errorf("%s.%s.%s: %w", cl.db, cl.table, cl.name, err))
		}
	}
	c.Detail = fmt.Sprintf("%d string columns scanned for %d patterns", len(cols), len(personalPatterns))
	return c
}

func (a *Auditor) checkReader(ctx context.Context, _ time.Time) Check {
	const name = "reader cannot read raw events"
	if a.Reader == nil {
		return Check{Name: name, NotRun: "no reader connection given"}
	}
	raw := a.Publisher.Databases().Raw
	err := a.Reader.Exec(ctx, "SELECT count() FROM "+raw+".events")
	switch {
	case err == nil:
		return Check{Name: name, Detail: "the dashboard's user read " + raw + ".events", Findings: []string{"reader can read " + raw}}
	case clickhouse.IsCode(err, 291, 497, 516):
		return Check{Name: name, OK: true, Detail: "refused: " + firstLine(err.Error())}
	default:
		var ex *clickhouse.Exception
		if errors.As(err, &ex) {
			// Any refusal by the server counts; a network error does not.
			return Check{Name: name, OK: true, Detail: "refused: " + firstLine(err.Error())}
		}
		return failed(name, err)
	}
}

// checkInventory compares schemas/purposes.yaml with the live columns, both
// ways. Lock tables (lock_*) are transient bookkeeping with two columns.
func (a *Auditor) checkInventory(ctx context.Context, inv *schemas.Inventory) Check {
	const name = "purpose inventory"
	dbs := a.Publisher.Databases()
	live := map[string]map[string]bool{}
	err := a.Publisher.Client().Select(ctx, "SELECT database, table, name FROM system.columns WHERE "+a.herdTables()+" AND database IN ("+
		clickhouse.Quote(dbs.Raw)+", "+clickhouse.Quote(dbs.Pub)+")", func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			db, table := clickhouse.Get[string](b, 0, i), clickhouse.Get[string](b, 1, i)
			key := "{herd}." + table
			if db == dbs.Raw {
				key = "{raw}." + table
			}
			if strings.HasPrefix(table, "lock_") {
				key = "{lock}"
			}
			if live[key] == nil {
				live[key] = map[string]bool{}
			}
			live[key][clickhouse.Get[string](b, 2, i)] = true
		}
		return nil
	})
	if err != nil {
		return failed(name, err)
	}
	c := Check{Name: name, OK: true}
	var findings []string
	for table, cols := range live {
		if table == "{lock}" {
			for col := range cols {
				if col != "owner" && col != "expires" {
					findings = append(findings, "lock table column "+col+" is not in the inventory")
				}
			}
			continue
		}
		for col := range cols {
			if _, ok := inv.Tables[table].Columns[col]; !ok {
				findings = append(findings, table+"."+col+" is stored but not in the inventory")
			}
		}
	}
	ncols := 0
	for table, t := range inv.Tables {
		for col := range t.Columns {
			ncols++
			if !live[table][col] {
				findings = append(findings, table+"."+col+" is in the inventory but not in the database")
			}
		}
	}
	sort.Strings(findings)
	c.Findings, c.OK = findings, len(findings) == 0
	c.Detail = fmt.Sprintf("%d inventoried columns in %d tables, each with a category and purposes (%d purposes in the policy)", ncols, len(inv.Tables), len(inv.Purposes))
	return c
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// checkExact: exact operational figures (the inventory's category "exact")
// are stored only where the dashboard's user cannot read them, and no table
// it can read holds a column of that name.
func (a *Auditor) checkExact(ctx context.Context, inv *schemas.Inventory) Check {
	const name = "exact figures"
	dbs := a.Publisher.Databases()
	c := Check{Name: name, OK: true}
	exact := map[string]bool{}
	var tables []string
	for table, t := range inv.Tables {
		for col, cd := range t.Columns {
			if cd.Category != "exact" {
				continue
			}
			exact[col] = true
			if !strings.HasPrefix(table, "{raw}.") {
				c.Findings = append(c.Findings, "the inventory puts exact figure "+table+"."+col+" where the dashboard's user reads")
			}
			if !slices.Contains(tables, table) {
				tables = append(tables, table)
			}
		}
	}
	err := a.Publisher.Client().Select(ctx, "SELECT table, name FROM system.columns WHERE "+a.herdTables()+" AND database = "+clickhouse.Quote(dbs.Pub), func(b *proto.Block) error {
		for i := 0; i < b.Rows(); i++ {
			if col := clickhouse.Get[string](b, 1, i); exact[col] {
				c.Findings = append(c.Findings, "{herd}."+clickhouse.Get[string](b, 0, i)+"."+col+" holds an exact figure the dashboard's user can read")
			}
		}
		return nil
	})
	if err != nil {
		return failed(name, err)
	}
	if a.Reader != nil {
		sort.Strings(tables)
		for _, t := range tables {
			real := strings.NewReplacer("{raw}", dbs.Raw, "{herd}", dbs.Pub).Replace(t)
			if err := a.Reader.Exec(ctx, "SELECT count() FROM "+real); err == nil {
				c.Findings = append(c.Findings, "the dashboard's user read "+real)
			}
		}
	}
	sort.Strings(c.Findings)
	c.OK = len(c.Findings) == 0
	c.Detail = fmt.Sprintf("%d exact columns in %d tables, none readable by the dashboard's user", len(exact), len(tables))
	return c
}
