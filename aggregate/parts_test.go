package aggregate

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/herd-analytics/herd/schemas"
)

// The publisher reads an event's type and device as their Enum8 numbers:
// the numbers must be the migration's.
func TestEventTypesAreTheMigrations(t *testing.T) {
	sql, err := schemas.Migrations.ReadFile(schemas.MigrationsDir + "/0002_raw_events.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		column string
		names  []string
	}{{"type", eventTypeNames}, {"device", deviceNames}} {
		enum := regexp.MustCompile(c.column + `\s+Enum8\(([^)]*)\)`).FindSubmatch(sql)
		if enum == nil {
			t.Fatalf("no %s Enum8 in the raw events migration", c.column)
		}
		values := regexp.MustCompile(`'(\w+)' = (\d+)`).FindAllSubmatch(enum[1], -1)
		if len(values) != len(c.names)-1 {
			t.Fatalf("the migration has %d values of %s, herd knows %d", len(values), c.column, len(c.names)-1)
		}
		for _, v := range values {
			n, _ := strconv.Atoi(string(v[2]))
			if got := slices.Index(c.names, string(v[1])); got != n {
				t.Errorf("%s %s is %d in the migration, %d here", c.column, v[1], n, got)
			}
		}
	}
}

// A visit's cells are found again by their values, however many there are
// (past indexFrom they are found through a map), and no two value lists
// share a key.
func TestVisitorCellsKeys(t *testing.T) {
	var vc VisitorCells
	vc.reset(1)
	tricky := [][]string{{"a", "bc"}, {"ab", "c"}, {"a\x00b", "c"}, {"a", "\x00bc"}, {"", "abc"}, {"abc", ""}}
	for i := range 3 * indexFrom {
		tricky = append(tricky, []string{fmt.Sprint("p", i), strconv.Itoa(i % 7)})
	}
	for round := range 2 {
		for _, dims := range tricky {
			vc.Add(dims...)[0]++
		}
		if len(vc.cells) != len(tricky) {
			t.Fatalf("round %d: %d cells for %d distinct value lists", round, len(vc.cells), len(tricky))
		}
	}
	for i, dims := range tricky {
		if got := splitKey(vc.key(i)); !slices.Equal(got, dims) {
			t.Errorf("cell %d: key holds %q, want %q", i, got, dims)
		}
		if vc.vals[i] != 2 {
			t.Errorf("cell %q counted %g times, want 2", dims, vc.vals[i])
		}
	}
	vc.reset(1)
	if len(vc.cells) != 0 || vc.Add("a", "bc")[0] != 0 {
		t.Error("reset kept cells")
	}
}
