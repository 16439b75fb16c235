// Package scrub desensitizes what a client sends before anything is stored:
// page URLs (path kept, personal-looking segments redacted, campaign
// parameters and the site-search term kept), referrers (registrable host
// only), search terms and short identifier fields.
package scrub

import (
	"html"
	"net"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/publicsuffix"
	"golang.org/x/text/unicode/norm"
)

// Redacted replaces a path segment or word that looks personal.
const Redacted = ":redacted"

// Length caps of stored strings, in bytes.
const (
	maxPath  = 512
	MaxField = 128
	maxTerm  = 100
)

// SanitizedURL is what analytics needs of a page URL and nothing personal:
// the path with personal-looking segments redacted, the allowlisted campaign
// parameters, and the site-search term (scrubbed) if a search parameter is
// present. Query string, fragment, user info and host are dropped.
type SanitizedURL struct {
	Path        string
	UTMSource   string
	UTMMedium   string
	UTMCampaign string
	SearchTerm  string
	HasSearch   bool
}

// SearchParams are the query parameters that carry a site-search term.
var SearchParams = []string{"q", "query", "search", "s", "term", "keyword"}

// URL desensitizes a page URL (absolute or a bare path).
func URL(raw string) SanitizedURL {
	var out SanitizedURL
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return out
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Unparseable: keep nothing of it but a marker, never the text.
		out.Path = "/" + Redacted
		return out
	}
	out.Path = sanitizePath(u.EscapedPath())
	q := scanQuery(u.RawQuery)
	out.UTMSource = Field(q.values[qUTMSource], MaxField)
	out.UTMMedium = Field(q.values[qUTMMedium], MaxField)
	out.UTMCampaign = Field(q.values[qUTMCampaign], MaxField)
	for i := range SearchParams {
		if q.has[qSearch+i] {
			out.HasSearch = true
			out.SearchTerm = Term(q.values[qSearch+i])
			break
		}
	}
	return out
}

// The query parameters SanitizeURL reads: the campaign ones, then
// SearchParams in order.
const (
	qUTMSource = iota
	qUTMMedium
	qUTMCampaign
	qSearch
	qParams = qSearch + 6
)

// wantedQuery holds the first value of each parameter SanitizeURL reads.
type wantedQuery struct {
	values [qParams]string
	has    [qParams]bool
}

func wantedParam(key string) int {
	switch key {
	case "utm_source":
		return qUTMSource
	case "utm_medium":
		return qUTMMedium
	case "utm_campaign":
		return qUTMCampaign
	}
	for i, p := range SearchParams {
		if key == p {
			return qSearch + i
		}
	}
	return -1
}

// scanQuery reads the wanted parameters of a raw query the way
// url.ParseQuery does (pairs split on &, a pair with a semicolon or a bad
// escape skipped, the first value wins) without building a map of all of
// them.
func scanQuery(raw string) wantedQuery {
	var q wantedQuery
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(key, "%+") {
			var err error
			if key, err = url.QueryUnescape(key); err != nil {
				continue
			}
		}
		i := wantedParam(key)
		if i < 0 || q.has[i] {
			continue
		}
		if strings.ContainsAny(value, "%+") {
			var err error
			if value, err = url.QueryUnescape(value); err != nil {
				continue
			}
		}
		q.values[i], q.has[i] = value, true
	}
	return q
}

// sanitizePath redacts every segment that looks personal. Segments are
// percent-decoded (repeatedly, so %2540 is seen as @) before they are judged;
// kept segments are stored decoded.
func sanitizePath(escaped string) string {
	if escaped == "" {
		return "/"
	}
	if cleanPath(escaped) {
		return capParts(escaped, maxPath, '/')
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
	return capParts(p, maxPath, '/')
}

// redactRunsAcross redacts the segments a number spans when it is split
// across them (/card/4111/1111/1111/1111, /call/+49/170/1234/567): each
// segment alone looks harmless, the path does not.
func redactRunsAcross(segs []string) {
	joined := strings.Join(segs, "/")
	runs := digitRuns(judged(joined), false)
	if len(runs) == 0 {
		return
	}
	if judged(joined) != joined {
		// Offsets moved with the normalisation: judge segment by segment
		// and redact every segment that holds digits.
		for i, seg := range segs {
			if digitCount(judged(seg)) > 0 {
				segs[i] = Redacted
			}
		}
		return
	}
	start := 0
	for i, seg := range segs {
		end := start + len(seg)
		for _, r := range runs {
			if r[0] < end && r[1] > start {
				segs[i] = Redacted
			}
		}
		start = end + 1
	}
}

// cleanPath reports whether sanitizePath would keep a path exactly as it
// is: it starts with "/", has nothing escaped, no segment looks personal,
// and no number runs across segments.
func cleanPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "%") || !utf8.ValidString(p) || hasControl(p) || longDigitRun(judged(p)) {
		return false
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if looksPersonal(seg) || wordsPersonal(seg) {
			return false
		}
	}
	return true
}

// wordsPersonal reports whether any word of a segment ("order 12 for
// a@b.c", "id=...") looks personal.
func wordsPersonal(s string) bool {
	if !hasWordSeparator(s) {
		return looksPersonal(s) // one word: itself
	}
	for w := range strings.FieldsFuncSeq(s, func(r rune) bool { return unicode.IsSpace(r) || strings.ContainsRune(",;=&|", r) }) {
		if looksPersonal(w) {
			return true
		}
	}
	return false
}

// hasWordSeparator reports whether s may hold a byte wordsPersonal splits
// on: ASCII space or ",;=&|", or any non-ASCII byte (Unicode spaces),
// conservatively.
func hasWordSeparator(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 0x80, c == ' ', c >= '\t' && c <= '\r', c == ',', c == ';', c == '=', c == '&', c == '|':
			return true
		}
	}
	return false
}

// Term prepares a site-search term: decoded, lowercased, whitespace
// folded, every personal-looking word redacted, capped.
//
// Words are judged as sent, before lowercasing, which would hide what case
// tells (a JWT's "eyJ", a token's mixed case); the detectors themselves are
// case-blind besides.
func Term(s string) string {
	s = scrubWords(unescapeAll(strings.ReplaceAll(s, "+", " ")), maxTerm)
	return capWords(strings.ToLower(s), maxTerm) // a few runes grow when lowercased
}

// Field prepares a short free-text value (campaign, category, list,
// slot): personal-looking words redacted, capped.
func Field(s string, max int) string {
	return scrubWords(unescapeAll(s), max)
}

func scrubWords(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "")
	}
	if plainWords(s) {
		// Already single-spaced words, none personal: joining them again
		// would give s back.
		if longDigitRun(judged(s)) {
			return Redacted
		}
		return capWords(s, max)
	}
	words := strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
	for i, w := range words {
		if looksPersonal(w) {
			words[i] = Redacted
		}
	}
	// A phone or card number written with spaces is personal only as a whole.
	joined := strings.Join(words, " ")
	if longDigitRun(judged(joined)) {
		return Redacted
	}
	return capWords(joined, max)
}

// capWords cuts space-separated words to max bytes.
func capWords(s string, max int) string { return capParts(s, max, ' ') }

// capParts cuts s, parts separated by sep, to max bytes. A part cut in two
// is a new part and may look personal where the whole did not (33 hex
// digits cut to 32): then it is dropped.
func capParts(s string, max int, sep byte) string {
	t := truncateUTF8(s, max)
	if len(t) == len(s) {
		return t
	}
	i := strings.LastIndexByte(t, sep)
	if looksPersonal(t[i+1:]) {
		return strings.TrimRight(t[:i+1], string(sep))
	}
	return t
}

// plainWords reports whether s is words separated by single ASCII spaces,
// with no other space or control character, and no word looks personal.
func plainWords(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' || strings.Contains(s, "  ") {
		return s == ""
	}
	for _, r := range s {
		if r != ' ' && (unicode.IsSpace(r) || unicode.IsControl(r)) {
			return false
		}
	}
	for w := range strings.SplitSeq(s, " ") {
		if looksPersonal(w) {
			return false
		}
	}
	return true
}

// looksPersonal reports whether s looks like an email, phone or card number,
// long number, UUID, JWT, IP address or opaque token.
func looksPersonal(s string) bool {
	if s == "" {
		return false
	}
	s = judged(s)
	if strings.Contains(s, "@") {
		return true // emails, and anything else with an at sign
	}
	if strings.Contains(s, "/") {
		// "/10.0.0.1" or "a/2001:db8::1": each part is judged on its own.
		for part := range strings.SplitSeq(s, "/") {
			if looksPersonal(part) {
				return true
			}
		}
	}
	if isIP(strings.Trim(s, "[]")) {
		return true
	}
	if longDigitRun(s) {
		return true
	}
	if isUUID(s) || isJWT(s) || isToken(s) {
		return true
	}
	return false
}

// judged is s as it reads to a person: Unicode compatibility forms folded
// (＠ is @, full-width digits are digits), HTML entities decoded (&#64;),
// and the usual spellings of an at sign ("(at)", "[at]", "{at}") as "@".
// Only the judgement uses it; what is stored is never rewritten this way.
func judged(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || c == '&' || c == '(' || c == '[' || c == '{' {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	s = norm.NFKC.String(html.UnescapeString(s))
	return atSpellings.Replace(s)
}

var atSpellings = strings.NewReplacer("(at)", "@", "[at]", "@", "{at}", "@", "(AT)", "@", "[AT]", "@", "{AT}", "@", "(At)", "@", " (at) ", "@", " [at] ", "@")

// isIP is net.ParseIP(s) != nil, without parsing (and allocating an
// error for) strings that cannot be an address.
func isIP(s string) bool {
	if len(s) < 2 || len(s) > 45 {
		return false
	}
	sep := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.' || c == ':':
			sep = true
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return sep && net.ParseIP(s) != nil
}

// longDigitRun finds 9 or more digits with at most separators between
// them, or a "+" followed by 7 or more: phone, card, account and order
// numbers, however they are written (4111 1111…, 4111_1111…, 4111*1111…,
// +49/170/…).
func longDigitRun(s string) bool {
	return len(digitRuns(s, true)) > 0
}

// digitRuns returns the byte spans [start, end) of the long digit runs in
// s (see longDigitRun); with first set it stops at the first.
func digitRuns(s string, first bool) [][2]int {
	var out [][2]int
	digits, plus, start, end := 0, false, -1, 0
	flush := func() {
		if digits >= 9 || (plus && digits >= 7) {
			out = append(out, [2]int{start, end})
		}
		digits, plus, start = 0, false, -1
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if start < 0 {
				start = i
			}
			digits++
			end = i + 1
			if first && (digits >= 9 || (plus && digits >= 7)) {
				return [][2]int{{start, end}}
			}
		case isNumberSeparator(c):
			// inside a number
		case c == '+':
			flush()
			plus, start = true, i
		default:
			flush()
		}
	}
	flush()
	return out
}

// isNumberSeparator: what people and systems put between the digit groups
// of phone and card numbers.
func isNumberSeparator(c byte) bool {
	switch c {
	case ' ', '-', '.', '(', ')', '/', '_', ',', ':', '*', '\t':
		return true
	}
	return false
}

func digitCount(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}

func isUUID(s string) bool {
	if len(s) != 36 && len(s) != 32 {
		return false
	}
	hex := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
			hex++
		case c == '-' && len(s) == 36 && (i == 8 || i == 13 || i == 18 || i == 23):
		default:
			return false
		}
	}
	return hex == 32
}

// isJWT reports whether s holds a JWT (header.payload[.signature] in
// base64url, the header a JSON object: "eyJ"), in any case: lowercased it
// decodes no more, but it is still the credential as someone wrote it. It
// is the audit's own pattern (Patterns), behind a cheap look for "eyj".
func isJWT(s string) bool {
	for i := 0; i+3 <= len(s); i++ {
		if (s[i] == 'e' || s[i] == 'E') && (s[i+1] == 'y' || s[i+1] == 'Y') && (s[i+2] == 'j' || s[i+2] == 'J') {
			return jwtPattern.MatchString(s)
		}
	}
	return false
}

// isToken matches opaque credentials (session ids, API keys, reset tokens):
// a run of 16 or more base64/hex characters that mixes letters and digits, or
// upper and lower case. Slugs ("blue-jacket-2024-xl") are short runs between
// separators and are kept.
func isToken(s string) bool {
	if len(s) < 16 {
		return false
	}
	run, letters, digits, upper, lower := 0, 0, 0, 0, 0
	check := func() bool {
		mixed := (letters >= 3 && digits >= 3) || (upper >= 4 && lower >= 4 && run >= 20)
		return run >= 16 && mixed
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'z':
			letters++
			lower++
		case c >= 'A' && c <= 'Z':
			letters++
			upper++
		default:
			if check() {
				return true
			}
			run, letters, digits, upper, lower = 0, 0, 0, 0, 0
			continue
		}
		run++
	}
	return check()
}

func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// unescapeAll percent-decodes up to three times, so double-encoded text is
// judged as what it finally means. Undecodable input is returned as it is.
func unescapeAll(s string) string {
	for range 3 {
		if !strings.Contains(s, "%") {
			return s
		}
		d, err := url.PathUnescape(s)
		if err != nil || d == s {
			return s
		}
		s = d
	}
	return s
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// Referrer kinds stored instead of a host.
const (
	ReferrerInternal = "internal"
	ReferrerIP       = ":ip"
)

// ReferrerHost reduces a referrer URL to its registrable domain
// ("news.google.com" → "google.com"). A referrer on one of the site's own
// hosts becomes "internal"; an IP address is never stored.
func ReferrerHost(raw string, siteDomains []string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if isIP(host) {
		return ReferrerIP
	}
	reg, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		reg = host // localhost, single-label intranet names
	}
	for _, d := range siteDomains {
		if reg == d || host == d || strings.HasSuffix(host, "."+d) {
			return ReferrerInternal
		}
	}
	if looksPersonal(reg) || len(reg) > MaxField {
		return Redacted
	}
	return reg
}

// A Pattern is a kind of personal data as RE2 (Go's regexp and
// ClickHouse's match() read it alike): what `herd audit` looks for in every
// stored string, and what no scrubber's output may hold (their fuzz targets
// check it, in every case).
type Pattern struct{ Name, RE string }

// Patterns are the personal data the scrubbers remove.
var Patterns = []Pattern{
	jwt,
	{"email", `[A-Za-z0-9._%+-]+(@|%40|%2540|＠|﹫|\((?i:at)\)|\[(?i:at)\]|\{(?i:at)\}|&#64;|&#x40;|&commat;)[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}`},
	{"phone", `\+[0-9]{1,3}[ ./_:,*-]?\(?[0-9]{2,4}\)?[ ./_:,*-]?[0-9]{3,4}[ ./_:,*-]?[0-9]{3,5}`},
	// Not ':' between groups: date-times ("2026-11-24 00:00:00", retention's
	// own records) would read as card numbers. The scrubbers redact those too.
	{"card", `(?:^|[^0-9])(?:[0-9][ ./_,*-]?){12,18}[0-9](?:[^0-9]|$)`},
	{"ipv4", `\b(?:(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\b`},
	{"ipv6", `\b(?:[0-9A-Fa-f]{1,4}:){4,7}[0-9A-Fa-f]{1,4}\b|\b[0-9A-Fa-f]{1,4}::(?:[0-9A-Fa-f]{1,4}:){1,5}[0-9A-Fa-f]{1,4}\b`},
}

var (
	// Case spelled out, not (?i): ClickHouse looks for a pattern's literal
	// part ("eyJ") case-sensitively before it runs RE2.
	jwt        = Pattern{"jwt", `[eE][yY][jJ][A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}`}
	jwtPattern = regexp.MustCompile(jwt.RE)
)
