package aggregate

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/herd-analytics/herd/internal/clickhouse"
)

// A day's cells are computed in one pass over its raw events: ClickHouse
// streams them in ranges of the visitor pseudonym (the raw table's sort key,
// so each range reads only its own granules), herd puts each visitor-day's
// events in time order and hands the visit to every table's parts, which
// say which cells it counts in; contributions are bounded per visitor-day
// and summed per cell here. Nothing of a visit outlives its turn: no
// pseudonym is written anywhere, and memory holds one range at a time.

// EventType is an event's type: its number in the Enum8 of {raw}.events
// (schemas/migrations/0002_raw_events.sql; a test holds the two together).
type EventType uint8

const (
	evOther EventType = iota
	evPageview
	evProductListView
	evProductView
	evProductClick
	evAddToCart
	evRemoveFromCart
	evCheckoutStep
	evPurchase
	evSearch
	evSlotImpression
)

var eventTypeNames = []string{"", "pageview", "product_list_view", "product_view", "product_click", "add_to_cart",
	"remove_from_cart", "checkout_step", "purchase", "search", "slot_impression"}

// eventType is the type named name (evOther for a name herd does not know).
// Names are what schemas/ use.
func eventType(name string) EventType {
	if i := slices.Index(eventTypeNames, name); i > 0 {
		return EventType(i)
	}
	return evOther
}

// deviceNames are the devices of {raw}.events' Enum8 by number (the same
// test holds them to the migration): a device travels as its one byte.
var deviceNames = []string{"", "desktop", "mobile", "tablet", "other"}

// Event is one raw event of a visit: its time and type, and its other
// columns read where they were decoded (the block's buffers), only by the
// parts that need them.
type Event struct {
	// TS orders the visit's events: 512 ticks a second since the bucket's
	// start, the event's place in its request within the second.
	TS   uint32
	Type EventType
	row  uint32
	blk  *eventBlock
}

func (e *Event) Path() string     { return e.blk.path.Row(int(e.row)) }
func (e *Event) PageType() string { return e.blk.pageType.Row(int(e.row)) }
func (e *Event) Referrer() string { return e.blk.referrer.Row(int(e.row)) }
func (e *Event) Browser() string  { return e.blk.browser.Row(int(e.row)) }
func (e *Event) OS() string       { return e.blk.os.Row(int(e.row)) }
func (e *Event) Country() string  { return e.blk.country.Row(int(e.row)) }
func (e *Event) Device() string {
	if d := int(e.blk.device.Data[e.row]); d < len(deviceNames) {
		return deviceNames[d]
	}
	return ""
}
func (e *Event) Product() string     { return e.blk.product.Row(int(e.row)) }
func (e *Event) Category() string    { return e.blk.category.Row(int(e.row)) }
func (e *Event) Price() float64      { return e.blk.price.Data[e.row] }
func (e *Event) Position() uint16    { return e.blk.position.Data[e.row] }
func (e *Event) List() string        { return e.blk.list.Row(int(e.row)) }
func (e *Event) Slot() string        { return e.blk.slot.Row(int(e.row)) }
func (e *Event) Variant() string     { return e.blk.variant.Row(int(e.row)) }
func (e *Event) Step() uint8         { return e.blk.step.Data[e.row] }
func (e *Event) OrderValue() float64 { return e.blk.orderValue.Data[e.row] }
func (e *Event) ListLen() int        { return int(e.blk.listLen.Data[e.row]) }
func (e *Event) NoResults() bool     { return e.blk.noResults.Data[e.row] != 0 }
func (e *Event) received() uint32    { return e.blk.received.Data[e.row] }

// Term is a search's term, lower-cased.
func (e *Event) Term() string { return e.blk.term.Row(int(e.row)) }

// Products is a purchase's product ids, appended to dst.
func (e *Event) Products(dst []string) []string { return e.blk.products.Row(int(e.row), dst) }

// Hour is the hour (UTC) the event was received.
func (e *Event) Hour() int { return int(e.received() % 86400 / 3600) }

// Weekday is the day of the week (UTC) it was received: Monday 1 … Sunday 7.
func (e *Event) Weekday() int { return int((e.received()/86400+3)%7) + 1 } // 1970-01-01 was a Thursday

// Visit is one visitor-day: its events in time order and, per event, the
// number of its session in the day (from 0): more than 30 minutes without an
// event starts a new one.
type Visit struct {
	Visitor uint64
	Events  []Event
	Session []int
}

// Sessions is how many sessions the visit has.
func (v *Visit) Sessions() int {
	if len(v.Session) == 0 {
		return 0
	}
	return v.Session[len(v.Session)-1] + 1
}

// pageviewSessions calls fn for each session with pageviews: its number,
// the index of its first pageview and its pageviews.
func (v *Visit) pageviewSessions(fn func(s, entry, pageviews int)) {
	for i := 0; i < len(v.Events); {
		s, entry, pv := v.Session[i], -1, 0
		for ; i < len(v.Events) && v.Session[i] == s; i++ {
			if v.Events[i].Type == evPageview {
				if entry < 0 {
					entry = i
				}
				pv++
			}
		}
		if pv > 0 {
			fn(s, entry, pv)
		}
	}
}

// sessionize numbers the visit's sessions.
func (v *Visit) sessionize() {
	v.Session = v.Session[:0]
	s := 0
	for i, e := range v.Events {
		if i > 0 && e.TS-v.Events[i-1].TS > sessionGap {
			s++
		}
		v.Session = append(v.Session, s)
	}
}

// visitColumns are the columns of {raw}.events eventsSQL reads, checked
// against the purpose inventory at startup.
var visitColumns = []string{"event_id", "site", "received", "seq", "type", "visitor", "path", "page_type", "referrer_host",
	"browser", "os", "country", "device", "product_id", "product_category", "product_price", "position", "list", "slot",
	"variant", "step", "order_value", "products", "search_term", "search_results"}

// eventsSQL is the query of one visitor range of a bucket's events, each
// column as the visits read it.
func eventsSQL(raw string, b Bucket, lo, hi uint64) string {
	pageview := typeIs(evPageview)
	only := func(types, col, zero string) string { return "if(" + types + ", " + col + ", " + zero + ")" }
	return "SELECT visitor, toUInt32(received), seq, toUInt8(type), " +
		only(pageview, "path", "''") + ", page_type, " + only(pageview, "referrer_host", "''") + ", " + only(pageview, "browser", "''") + ", " +
		only(pageview, "os", "''") + ", " + only(pageview, "toStringCutToZero(country)", "''") + ", toUInt8(device), " +
		"product_id, product_category, toFloat64(product_price), position, " +
		only(typeIs(evProductListView, evProductClick), "list", "''") + ", slot, variant, step, toFloat64(order_value), " +
		only(typeIs(evPurchase), "products", "emptyArrayString()") + ", toUInt16(least(length(products), 65535)), " +
		only(typeIs(evSearch), "lowerUTF8(search_term)", "''") + ", toUInt8(" + typeIs(evSearch) + " AND search_results = 0), " +
		"reinterpretAsUInt64(reinterpretAsString(event_id))" +
		" FROM " + raw + ".events WHERE " + rangeWhere(b) +
		" AND visitor >= " + clickhouse.QuoteInt(lo) + " AND visitor <= " + clickhouse.QuoteInt(hi) +
		" SETTINGS max_block_size = " + clickhouse.QuoteInt(maxBlockRows)
}

// typeIs is the SQL condition "the event is of one of types", by the names
// the migration's Enum8 gives them (eventTypeNames, held to it by a test).
// A column only some types' parts read travels on those events alone: the
// parts read path, referrer, browser, os and country from a session's
// pageviews, lists from list views and clicks, and so on.
func typeIs(types ...EventType) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = clickhouse.Quote(eventTypeNames[t])
	}
	return "type IN (" + strings.Join(names, ", ") + ")"
}

// eventBlock is one decoded block of eventsSQL's answer.
type eventBlock struct {
	received     *clickhouse.Number[uint32]
	vis, eventID *clickhouse.Number[uint64]
	seq          *clickhouse.Number[uint16]
	typ, step    *clickhouse.Number[uint8]
	path, pageType, referrer, browser, os, country,
	product, category *clickhouse.Strings
	device              *clickhouse.Number[uint8]
	price, orderValue   *clickhouse.Number[float64]
	position            *clickhouse.Number[uint16]
	list, slot, variant *clickhouse.Strings
	products            *clickhouse.StringArrays
	listLen             *clickhouse.Number[uint16]
	term                *clickhouse.Strings
	noResults           *clickhouse.Number[uint8]
	rows                int
}

func newEventBlock() *eventBlock {
	s := func() *clickhouse.Strings { return new(clickhouse.Strings) }
	return &eventBlock{
		vis: clickhouse.NewNumber[uint64]("UInt64"), received: clickhouse.NewNumber[uint32]("UInt32"), seq: clickhouse.NewNumber[uint16]("UInt16"),
		typ: clickhouse.NewNumber[uint8]("UInt8"), path: s(), pageType: s(), referrer: s(), browser: s(), os: s(), country: s(), device: clickhouse.NewNumber[uint8]("UInt8"),
		product: s(), category: s(), price: clickhouse.NewNumber[float64]("Float64"), position: clickhouse.NewNumber[uint16]("UInt16"),
		list: s(), slot: s(), variant: s(), step: clickhouse.NewNumber[uint8]("UInt8"), orderValue: clickhouse.NewNumber[float64]("Float64"),
		products: new(clickhouse.StringArrays), listLen: clickhouse.NewNumber[uint16]("UInt16"), term: s(), noResults: clickhouse.NewNumber[uint8]("UInt8"),
		eventID: clickhouse.NewNumber[uint64]("UInt64"),
	}
}

func (b *eventBlock) columns() []clickhouse.Column {
	return []clickhouse.Column{b.vis, b.received, b.seq, b.typ, b.path, b.pageType, b.referrer, b.browser, b.os, b.country, b.device,
		b.product, b.category, b.price, b.position, b.list, b.slot, b.variant, b.step, b.orderValue, b.products, b.listLen, b.term, b.noResults, b.eventID}
}

// rangeEvents is about how many events one visitor range holds. Three
// ranges are in memory at a time (one read, two worked on; ~150 bytes an
// event), whatever the day's size.
const rangeEvents = 500_000

// scanWorkers work on ranges side by side.
const scanWorkers = 2

// ref points at one event of a range: block and row in at, 16 bits each.
type ref struct {
	visitor uint64
	ts, at  uint32
}

// maxBlockRows bounds the rows of an answer's block, so that a row's
// place fits a ref.
const maxBlockRows = 1 << 16

// blocks recycles decoded blocks, buffers and all, from range to range.
var blocks sync.Pool

// visitRange is one visitor range's events as read, or why they could not be.
type visitRange struct {
	lo, hi uint64
	blocks []*eventBlock
	err    error
}

// scanVisits streams bucket b's visits, one visitor range at a time, to
// the functions in workers, each on its own goroutine (a range's visits all
// go to one of them), and returns how many distinct events they held: an
// event stored twice (a replay cut short, until a merge folds the copies)
// counts once.
func (p *Publisher) scanVisits(ctx context.Context, b Bucket, workers []func(v *Visit)) (uint64, error) {
	var events uint64
	err := p.c.Select(ctx, "SELECT count() FROM "+p.dbs.Raw+".events WHERE "+rangeWhere(b), func(blk *proto.Block) error {
		events = clickhouse.Get[uint64](blk, 0, 0)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count raw events of %s: %w", b, err)
	}
	ranges := max(1, int((events+rangeEvents-1)/rangeEvents))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan visitRange)
	go func() {
		defer close(next)
		step := math.MaxUint64 / uint64(ranges)
		for r := range ranges {
			vr := visitRange{lo: uint64(r) * step, hi: uint64(r+1)*step - 1}
			if r == ranges-1 {
				vr.hi = math.MaxUint64
			}
			vr.err = p.c.SelectColumns(ctx, eventsSQL(p.dbs.Raw, b, vr.lo, vr.hi), func() []clickhouse.Column {
				blk, _ := blocks.Get().(*eventBlock)
				if blk == nil {
					blk = newEventBlock()
				}
				vr.blocks = append(vr.blocks, blk)
				return blk.columns()
			}, func(rows int) error {
				vr.blocks[len(vr.blocks)-1].rows = rows
				return nil
			})
			select {
			case next <- vr:
			case <-ctx.Done():
				return
			}
			if vr.err != nil {
				return
			}
		}
	}()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		distinct uint64
		errs     []error
	)
	for _, fn := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sc visitScanner
			for vr := range next {
				n, err := uint64(0), vr.err
				if err == nil {
					n, err = sc.visits(vr, b.Start.Unix(), fn)
				}
				for _, blk := range vr.blocks {
					blocks.Put(blk) // its buffers serve a later range
				}
				mu.Lock()
				distinct += n
				if err != nil {
					errs = append(errs, fmt.Errorf("read raw events of %s: %w", b, err))
				}
				mu.Unlock()
				if err != nil {
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return 0, errs[0]
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return distinct, nil
}

// visitScanner turns ranges into visits, reusing its buffers.
type visitScanner struct {
	refs, sorted []ref
	counts       []int
	visit        Visit
}

// visits hands each visit of range vr to fn and returns how many distinct
// events they held.
func (sc *visitScanner) visits(vr visitRange, start int64, fn func(v *Visit)) (uint64, error) {
	sc.refs = sc.refs[:0]
	for bi, blk := range vr.blocks {
		for i := range blk.rows {
			ts := uint32(int64(blk.received.Data[i])-start)*tsPerSecond + uint32(min(blk.seq.Data[i], tsPerSecond-1))
			sc.refs = append(sc.refs, ref{blk.vis.Data[i], ts, uint32(bi)<<16 | uint32(i)})
		}
	}
	if len(vr.blocks) > maxBlockRows {
		return 0, fmt.Errorf("visitors %d to %d: %d blocks, more than a ref can point at", vr.lo, vr.hi, len(vr.blocks))
	}
	id := func(r ref) uint64 { return vr.blocks[r.at>>16].eventID.Data[r.at&0xffff] }
	refs := sc.sort(vr.lo, vr.hi, id)
	var distinct uint64
	v := &sc.visit
	for i := 0; i < len(refs); {
		j := i
		v.Visitor, v.Events = refs[i].visitor, v.Events[:0]
		for ; j < len(refs) && refs[j].visitor == v.Visitor; j++ {
			r := refs[j]
			if j > i && refs[j-1].ts == r.ts && id(refs[j-1]) == id(r) {
				continue // the same event stored twice
			}
			blk := vr.blocks[r.at>>16]
			row := r.at & 0xffff
			v.Events = append(v.Events, Event{TS: r.ts, Type: EventType(blk.typ.Data[row]), row: row, blk: blk})
		}
		distinct += uint64(len(v.Events))
		v.sessionize()
		fn(v)
		i = j
	}
	return distinct, nil
}

// sort orders the range's refs by visitor, time and event: pseudonyms are
// uniform hashes, so a counting pass over [lo, hi] cut into about one
// bucket per visitor leaves only each bucket's few events to sort.
func (sc *visitScanner) sort(lo, hi uint64, id func(ref) uint64) []ref {
	n := len(sc.refs)
	buckets := max(1, n/16)
	width := max((hi-lo)/uint64(buckets), 1)
	bucket := func(v uint64) int { return min(int((v-lo)/width), buckets-1) }
	sc.counts = append(sc.counts[:0], make([]int, buckets+1)...)
	for _, r := range sc.refs {
		sc.counts[bucket(r.visitor)+1]++
	}
	for i := 1; i <= buckets; i++ {
		sc.counts[i] += sc.counts[i-1]
	}
	sc.sorted = slices.Grow(sc.sorted[:0], n)[:n]
	pos := sc.counts[:buckets]
	for _, r := range sc.refs {
		k := bucket(r.visitor)
		sc.sorted[pos[k]] = r
		pos[k]++
	}
	// pos[k] is now where bucket k ends.
	from := 0
	for _, to := range pos {
		if to-from > 1 {
			slices.SortFunc(sc.sorted[from:to], func(a, b ref) int {
				if c := cmp.Compare(a.visitor, b.visitor); c != 0 {
					return c
				}
				if c := cmp.Compare(a.ts, b.ts); c != 0 {
					return c
				}
				return cmp.Compare(id(a), id(b))
			})
		}
		from = to
	}
	return sc.sorted
}
