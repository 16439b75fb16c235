package shopsim

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

func simulate(seed uint64, shoppers int) []Session {
	shop := New(Config{Seed: seed, Products: 500})
	r := rand.New(rand.NewPCG(seed, 1))
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var out []Session
	for range shoppers {
		sh := shop.NewShopper(r)
		for range 2 {
			out = append(out, shop.Session(r, sh, SessionStart(r, from, from.Add(7*24*time.Hour))))
		}
	}
	return out
}

func TestSameSeedSameShop(t *testing.T) {
	a, b := simulate(42, 200), simulate(42, 200)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different traffic")
	}
	if reflect.DeepEqual(a, simulate(43, 200)) {
		t.Fatal("different seeds, same traffic")
	}
}

// The structure the dashboard is meant to reveal is really in the data.
func TestTrafficHasStructure(t *testing.T) {
	sessions := simulate(7, 6000)
	var heroImp, heroClick [2]float64 // variant A, B
	var pos1, pos10 float64
	var views, adds, purchases, zero, searches float64
	var gpc, bots int
	hours := map[int]int{}
	checkoutByDevice := map[string][2]float64{} // step-1 reached, purchased
	for _, ss := range sessions {
		if ss.GPC {
			gpc++
		}
		if ss.Bot {
			bots++
		}
		hours[ss.Start.Hour()]++
		reached, bought := false, false
		for _, ev := range ss.Events {
			v := 0
			if ev.Variant == "B" {
				v = 1
			}
			switch ev.Type {
			case "slot_impression":
				if len(ev.Slot) > 9 && ev.Slot[:9] == "home-hero" {
					heroImp[v]++
				}
			case "product_click":
				if len(ev.Slot) > 9 && ev.Slot[:9] == "home-hero" {
					heroClick[v]++
				}
				if ev.Slot == "list" && ev.Product.Position == 1 {
					pos1++
				}
				if ev.Slot == "list" && ev.Product.Position == 10 {
					pos10++
				}
			case "product_view":
				views++
			case "add_to_cart":
				adds++
			case "purchase":
				purchases++
				bought = true
			case "checkout_step":
				if ev.Step == 1 {
					reached = true
				}
			case "search":
				searches++
				if ev.Search.Results == 0 {
					zero++
				}
			}
		}
		if reached {
			c := checkoutByDevice[ss.Device]
			c[0]++
			if bought {
				c[1]++
			}
			checkoutByDevice[ss.Device] = c
		}
	}
	if ctrA, ctrB := heroClick[0]/heroImp[0], heroClick[1]/heroImp[1]; ctrB < ctrA*1.15 {
		t.Errorf("hero CTR: A %.4f, B %.4f: B should clearly win", ctrA, ctrB)
	}
	if pos1 < 3*pos10 {
		t.Errorf("list clicks at position 1: %v, at 10: %v: CTR should decay", pos1, pos10)
	}
	if !(views > adds && adds > purchases && purchases > 0) {
		t.Errorf("funnel views %v → adds %v → purchases %v", views, adds, purchases)
	}
	d, m := checkoutByDevice["desktop"], checkoutByDevice["mobile"]
	if d[1]/d[0] <= m[1]/m[0] {
		t.Errorf("checkout completion desktop %.2f, mobile %.2f: mobile should drop more", d[1]/d[0], m[1]/m[0])
	}
	if zero == 0 || zero > searches/3 {
		t.Errorf("%v of %v searches found nothing", zero, searches)
	}
	if gpc == 0 || bots == 0 {
		t.Errorf("%d GPC and %d bot sessions", gpc, bots)
	}
	if hours[20] < 3*hours[4] {
		t.Errorf("sessions at 20h: %d, at 4h: %d: evenings should be busier", hours[20], hours[4])
	}
}

// Catalog names are spelt right: one dress, one scarf, a pair of trousers.
func TestCatalogNamesSingular(t *testing.T) {
	for cat, want := range map[string]string{"dresses": "dress", "scarves": "scarf", "watches": "watch", "shoes": "shoe", "bags": "bag",
		"sunglasses": "sunglasses", "trousers": "trousers", "knitwear": "knitwear", "swimwear": "swimwear", "belts": "belt"} {
		if got := singular(cat); got != want {
			t.Errorf("singular(%q) = %q, want %q", cat, got, want)
		}
	}
}
