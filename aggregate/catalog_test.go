package aggregate_test

import (
	"strings"
	"testing"

	"github.com/herd-analytics/herd/aggregate"
)

func TestReadCatalog(t *testing.T) {
	items, err := aggregate.ReadCatalog(strings.NewReader("price,name,product_id,category\n12.5,Linen shirt,P-1,shirts\n80,\"Trail shoe, waterproof\",P-2,shoes\n"), "demo")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[1] != (aggregate.CatalogItem{Site: "demo", ProductID: "P-2", Name: "Trail shoe, waterproof", Category: "shoes", Price: 80}) {
		t.Fatalf("items: %+v", items)
	}
	sited, err := aggregate.ReadCatalog(strings.NewReader("site,product_id,name,category,price\nshop-b,X,x,c,1\n"), "demo")
	if err != nil || sited[0].Site != "shop-b" {
		t.Fatalf("site column: %+v, %v", sited, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"product_id,name,price\nP,n,1\n", "no category column"},
		{"product_id,name,category,price\n", "no products"},
		{"product_id,name,category,price\nP-1,a,c,1\nP-1,b,c,2\n", "line 3: product \"P-1\" listed twice"},
		{"product_id,name,category,price\nP-1,a,c,-3\n", "line 2: price"},
		{"product_id,name,category,price\nP-1,a,c,NaN\n", "line 2: price"},
		{"product_id,name,category,price\n,a,c,1\n", "line 2: product_id"},
		{"product_id,name,category,price\nunlisted,a,c,1\n", "reserved"},
		{"product_id,name,category,price\nP-1,a,c\n", "wrong number of fields"},
	} {
		if _, err := aggregate.ReadCatalog(strings.NewReader(tc.in), "demo"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error saying %q", tc.in, err, tc.want)
		}
	}
}
