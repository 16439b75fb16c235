package dashboard

import (
	"math"
	"strconv"
	"time"

	"golang.org/x/text/currency"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/herd-analytics/herd/internal/abtest"
)

// languages are the number formats offered; the reader's Accept-Language
// picks one (English when nothing matches).
var languages = language.NewMatcher([]language.Tag{
	language.English, language.BritishEnglish, language.German, language.French, language.Spanish,
	language.Italian, language.Dutch, language.Polish, language.Swedish, language.Danish,
})

// numbers formats a page's numbers for its reader: digit grouping and
// decimal mark of the reader's language, the shop's currency.
type numbers struct {
	p        *message.Printer
	english  bool
	currency string // the currency's symbol
}

func newNumbers(tag language.Tag, iso string) numbers {
	unit, err := currency.ParseISO(iso)
	if err != nil {
		unit = currency.EUR
	}
	p := message.NewPrinter(tag)
	base, _ := tag.Base()
	return numbers{p: p, english: base.String() == "en", currency: p.Sprint(currency.Symbol(unit))}
}

// Count is a whole number with digit grouping: 37,026.
func (n numbers) Count(x float64) string { return n.p.Sprintf("%d", int64(math.Round(x))) }

// Money is an amount in the shop's currency: €117,733.16 (117.733,16 €).
func (n numbers) Money(x float64) string {
	v := n.p.Sprintf("%.2f", x)
	if n.english {
		if x < 0 {
			return "−" + n.currency + v[1:]
		}
		return n.currency + v
	}
	return v + "\u00a0" + n.currency
}

// Percent is a share (0.125) as a percentage with one decimal: 12.5%.
func (n numbers) Percent(x float64) string { return n.p.Sprintf("%.1f%%", 100*x) }

// Points is a difference of two rates in percentage points: 1.20 pp.
func (n numbers) Points(x float64) string { return n.p.Sprintf("%.2f pp", 100*x) }

// Noisy is a published figure with the noise it carries (σ): the figure
// when its 95% interval is within half of it, else the interval ("≈ 20–60"),
// or "too few to tell" when the interval reaches 0. A figure whose σ is
// unknown (0) is shown as published.
func (n numbers) Noisy(x, sigma float64, format func(float64) string) string {
	h := abtest.Z95 * sigma
	switch {
	case sigma <= 0 || h <= x/2:
		return format(x)
	case x-h <= 0:
		return "too few to tell (< " + format(x+h) + ")"
	}
	return "≈ " + format(x-h) + "–" + format(x+h)
}

// Date is a day as the page writes it: 4 Nov 2026.
func (n numbers) Date(t time.Time) string { return t.UTC().Format("2 Jan 2006") }

func u(v uint64) string { return strconv.FormatUint(v, 10) }

func round2(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }

// money2 is an amount as a CSV or API cell: two decimals, no symbol.
func money2(x float64) string { return strconv.FormatFloat(x, 'f', 2, 64) }
