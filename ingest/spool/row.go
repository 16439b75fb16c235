package spool

import "time"

// Row is one event as stored in herd_raw.events: desensitized and
// pseudonymized. Nothing in it identifies a shopper without the day key.
type Row struct {
	EventID         [16]byte
	Site            string
	Received        time.Time
	Seq             uint16
	Type            uint8 // the event type's number, the Enum8 value of herd_raw.events.type
	Visitor         uint64
	Session         uint64 // always 0: sessions are derived at publication
	Path            string
	PageType        string
	UTMSource       string
	UTMMedium       string
	UTMCampaign     string
	ReferrerHost    string
	Browser         string
	BrowserMajor    uint16
	OS              string
	Device          string // desktop, mobile, tablet, other
	Country         string // ISO 3166 alpha-2 or ""
	ProductID       string
	ProductCategory string
	ProductPrice    int64 // cents
	Position        uint16
	List            string
	Slot            string
	Variant         string
	Step            uint8
	OrderValue      int64 // cents
	Currency        string
	Items           uint16
	Products        []string
	SearchTerm      string
	SearchResults   int32 // -1 unknown
	Imported        bool
}

// maxHoursPerInsert keeps an insert under current ClickHouse releases'
// max_partitions_per_insert_block (100): the table is partitioned by hour,
// and history imports can span weeks in one batch.
const maxHoursPerInsert = 90

// splitByHours cuts rows into groups that each touch at most max distinct
// hours. Live traffic is one group; only imports are ever cut.
func splitByHours(rows []Row, max int) [][]Row {
	hours := map[int64]int{}
	for i := range rows {
		h := rows[i].Received.Unix() / 3600
		if _, ok := hours[h]; !ok {
			hours[h] = len(hours) / max
		}
	}
	if len(hours) <= max {
		return [][]Row{rows}
	}
	groups := make([][]Row, (len(hours)+max-1)/max)
	for _, r := range rows {
		g := hours[r.Received.Unix()/3600]
		groups[g] = append(groups[g], r)
	}
	return groups
}
