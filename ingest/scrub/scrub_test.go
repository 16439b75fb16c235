package scrub

import (
	"net"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSanitizeURL(t *testing.T) {
	f := func(raw string, want SanitizedURL) {
		t.Helper()
		if got := URL(raw); got != want {
			t.Fatalf("URL(%q) =\n%+v\nwant\n%+v", raw, got, want)
		}
	}
	f("", SanitizedURL{})
	f("https://shop.example/", SanitizedURL{Path: "/"})
	f("https://shop.example/product/blue-jacket-2024-xl?ref=abc#top", SanitizedURL{Path: "/product/blue-jacket-2024-xl"})
	f("/category/shoes?utm_source=news&utm_medium=email&utm_campaign=bf&session=x", SanitizedURL{Path: "/category/shoes", UTMSource: "news", UTMMedium: "email", UTMCampaign: "bf"})
	f("https://u:p@shop.example/search?q=Red+Shoes", SanitizedURL{Path: "/search", SearchTerm: "red shoes", HasSearch: true})
	f("/account/jane.doe@mail.example/orders", SanitizedURL{Path: "/account/:redacted/orders"})
	f("/account/jane.doe%40mail.example", SanitizedURL{Path: "/account/:redacted"})
	f("/account/jane.doe%2540mail.example", SanitizedURL{Path: "/account/:redacted"})
	f("/call/+49 170 1234567", SanitizedURL{Path: "/call/:redacted"})
	f("/order/4111-1111-1111-1111", SanitizedURL{Path: "/order/:redacted"})
	f("/order/123456789012", SanitizedURL{Path: "/order/:redacted"})
	f("/reset/550e8400-e29b-41d4-a716-446655440000", SanitizedURL{Path: "/reset/:redacted"})
	f("/auth/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc123", SanitizedURL{Path: "/auth/:redacted"})
	f("/s/9f86d081884c7d659a2feaa0c55ad015", SanitizedURL{Path: "/s/:redacted"})
	f("/confirm/Ab3dEf7hIj9kLm2nOp4qRs", SanitizedURL{Path: "/confirm/:redacted"})
	f("/ip/192.168.1.20", SanitizedURL{Path: "/ip/:redacted"})
	f("/p/B07XJ8C8F5", SanitizedURL{Path: "/p/B07XJ8C8F5"})
	f("/search?q=john@example.com", SanitizedURL{Path: "/search", SearchTerm: ":redacted", HasSearch: true})
	f("/search?q=call+me+0170+123+4567", SanitizedURL{Path: "/search", SearchTerm: ":redacted", HasSearch: true})
	f("/search?q=size+42+boots", SanitizedURL{Path: "/search", SearchTerm: "size 42 boots", HasSearch: true})
	f("/x/%ff%fe", SanitizedURL{Path: "/x/:redacted"})
	f("/x/a%00b", SanitizedURL{Path: "/x/:redacted"})
	f("http://[::1", SanitizedURL{Path: "/:redacted"})
	// Numbers written with any separator, or split across segments.
	f("/order/4111_1111_1111_1111", SanitizedURL{Path: "/order/:redacted"})
	f("/order/4111,1111,1111,1111", SanitizedURL{Path: "/order/:redacted"})
	f("/order/4111:1111:1111:1111", SanitizedURL{Path: "/order/:redacted"})
	f("/order/4111*1111*1111*1111", SanitizedURL{Path: "/order/:redacted"})
	f("/card/4111/1111/1111/1111", SanitizedURL{Path: "/card/:redacted/:redacted/:redacted/:redacted"})
	f("/call/+49/170/1234/567", SanitizedURL{Path: "/call/:redacted/:redacted/:redacted/:redacted"})
	f("/c/+44-7700/900-123", SanitizedURL{Path: "/c/:redacted/:redacted"})
	f("/blog/2024/01/15/new-boots", SanitizedURL{Path: "/blog/2024/01/15/new-boots"})
	f("/x?utm_campaign=4111_1111_1111_1111", SanitizedURL{Path: "/x", UTMCampaign: ":redacted"})
	// Disguised emails.
	f("/u/jane.doe＠example.com", SanitizedURL{Path: "/u/:redacted"})
	f("/u/jane.doe(at)example.com", SanitizedURL{Path: "/u/:redacted"})
	f("/search?q=jane.doe%26%2364%3Bexample.com", SanitizedURL{Path: "/search", SearchTerm: ":redacted", HasSearch: true})
}

func TestReferrerHost(t *testing.T) {
	own := []string{"shop.example"}
	cases := map[string]string{
		"":                                          "",
		"https://www.google.com/search?q=x":         "google.com",
		"https://news.bbc.co.uk/a/b":                "bbc.co.uk",
		"https://shop.example/cart":                 ReferrerInternal,
		"https://m.shop.example/":                   ReferrerInternal,
		"http://192.168.0.1:8080/admin":             ReferrerIP,
		"http://[2001:db8::1]/":                     ReferrerIP,
		"android-app://com.google.android.gm":       "android.gm",
		"not a url":                                 "",
		"https://4111_1111_1111_1111.blogspot.com/": Redacted,
		"https://localhost:3000/":                   "localhost",
	}
	for in, want := range cases {
		if got := ReferrerHost(in, own); got != want {
			t.Errorf("ReferrerHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// The scrubbers must never let a personal-looking value through, whatever
// the input, and must always return valid UTF-8 within their caps.
func FuzzSanitizeURL(f *testing.F) {
	for _, s := range []string{"/a/b?q=x", "/u/a%40b.c", "https://h/p?utm_source=a@b.c", "/%2540", "/x?q=+49+170+1234567", "http://[::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u := URL(raw)
		for _, v := range []string{u.Path, u.UTMSource, u.UTMMedium, u.UTMCampaign, u.SearchTerm} {
			checkClean(t, raw, v)
		}
		if len(u.Path) > maxPath || len(u.SearchTerm) > maxTerm {
			t.Fatalf("over cap: %q", raw)
		}
	})
}

func FuzzScrubTerm(f *testing.F) {
	for _, s := range []string{"red shoes", "a@b.c", "0170 123 4567", "%40", "eyJhbGciOiJI.eyJzdWIi.x", "ü\xff"} {
		f.Add(s)
	}
	f.Add("EyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJl")
	f.Add("token eyjhbgcioijiuzi1nij9.eyjzdwiioijjyw5hcnkifq.c2lnbmf0dxjl")
	f.Fuzz(func(t *testing.T, raw string) {
		// Detectors are case-blind: every casing of the input is as clean.
		for _, in := range []string{raw, strings.ToLower(raw), strings.ToUpper(raw), swapCase(raw)} {
			checkClean(t, in, Term(in))
			checkClean(t, in, Field(in, MaxField))
		}
	})
}

func FuzzReferrerHost(f *testing.F) {
	for _, s := range []string{"https://a.b.com/x", "http://1.2.3.4/", "https://shop.example/", "https://a@b.com@c.d/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		checkClean(t, raw, ReferrerHost(raw, []string{"shop.example"}))
	})
}

// swapCase turns every ASCII letter's case.
func swapCase(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - 32
		case c >= 'A' && c <= 'Z':
			b[i] = c + 32
		}
	}
	return string(b)
}

// patterns are Patterns compiled: what herd audit looks for.
var patterns = func() []*regexp.Regexp {
	var out []*regexp.Regexp
	for _, p := range Patterns {
		out = append(out, regexp.MustCompile(p.RE))
	}
	return out
}()

func checkClean(t *testing.T, in, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("%q → invalid UTF-8 %q", in, out)
	}
	for i, re := range patterns {
		if re.MatchString(out) {
			t.Fatalf("%q → %q, which herd audit reads as %s", in, out, Patterns[i].Name)
		}
	}
	if j := judged(out); strings.Contains(j, "@") || longDigitRun(j) {
		t.Fatalf("%q → personal-looking %q", in, out)
	}
	for _, w := range strings.FieldsFunc(out, func(r rune) bool { return r == '/' || r == ' ' }) {
		if w != Redacted && looksPersonal(w) {
			t.Fatalf("%q → personal-looking word %q in %q", in, w, out)
		}
	}
}

// The scrubbers take shortcuts for input that needs no change (no split,
// no map of the query, no IP parse of words that cannot be addresses). The
// references below are the plain versions; the shortcuts must agree with
// them on every input.

func refScrubWords(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	words := strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
	for i, w := range words {
		if looksPersonal(w) {
			words[i] = Redacted
		}
	}
	joined := strings.Join(words, " ")
	if longDigitRun(judged(joined)) {
		return Redacted
	}
	return truncateUTF8(joined, max)
}

func refWordsPersonal(s string) bool {
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || strings.ContainsRune(",;=&|", r) }) {
		if looksPersonal(w) {
			return true
		}
	}
	return false
}

func refSanitizePath(escaped string) string {
	if escaped == "" {
		return "/"
	}
	segs := strings.Split(escaped, "/")
	for i, seg := range segs {
		if seg == "" {
			continue
		}
		dec := unescapeAll(seg)
		if looksPersonal(dec) || wordsPersonal(dec) || !utf8.ValidString(dec) || hasControl(dec) {
			segs[i] = Redacted
			continue
		}
		segs[i] = dec
	}
	redactRunsAcross(segs)
	p := strings.Join(segs, "/")
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return truncateUTF8(p, maxPath)
}

func FuzzScrubShortcutsMatchReference(f *testing.F) {
	for _, s := range []string{"", "blue shoes", " a  b ", "call 0151 2345 6789", "/product/p1", "/a//b/", "/p/a%40b.c", "10.0.0.1", "::1", "fe80::1%eth0", "dead:beef", "x\u00a0y",
		"utm_source=news&q=red+boots", "q=a&q=b", "s=%zz&q=ok", "a;b=1&term=x", "utm_campaign=%2540x&keyword=k%20w"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := scrubWords(s, maxTerm), refScrubWords(s, maxTerm); got != want {
			t.Fatalf("scrubWords(%q) = %q, reference %q", s, got, want)
		}
		if got, want := sanitizePath(s), refSanitizePath(s); got != want {
			t.Fatalf("sanitizePath(%q) = %q, reference %q", s, got, want)
		}
		if got, want := wordsPersonal(s), refWordsPersonal(s); got != want {
			t.Fatalf("wordsPersonal(%q) = %v, reference %v", s, got, want)
		}
		if got, want := isIP(s), net.ParseIP(s) != nil; got != want {
			t.Fatalf("isIP(%q) = %v, net.ParseIP says %v", s, got, want)
		}
		q := scanQuery(s)
		ref, _ := url.ParseQuery(s)
		for _, key := range append([]string{"utm_source", "utm_medium", "utm_campaign"}, SearchParams...) {
			i := wantedParam(key)
			if q.has[i] != ref.Has(key) || q.values[i] != ref.Get(key) {
				t.Fatalf("scanQuery(%q)[%s] = %v %q, url.ParseQuery: %v %q", s, key, q.has[i], q.values[i], ref.Has(key), ref.Get(key))
			}
		}
	})
}

// A value cut at its cap must not end in a new personal-looking word.
func TestCapDropsCutToken(t *testing.T) {
	hex := strings.Repeat("a", 31) + "00" // 33 hex digits: not a hash; 32 would be
	term := strings.Repeat("x", maxTerm-33) + " " + hex
	if got := Term(term); strings.Contains(got, hex[:32]) {
		t.Errorf("Term kept the cut word: %q", got)
	}
	path := "/" + strings.Repeat("p", maxPath-32-2) + "/" + hex
	if got := URL(path).Path; strings.HasSuffix(got, hex[:32]) || len(got) > maxPath {
		t.Errorf("URL kept the cut segment: %q", got)
	}
}
