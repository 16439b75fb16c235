package clickhouse

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// Client sends queries to one ClickHouse server as one user. It is safe for
// concurrent use; copies made with WithDatabase share its connections.
type Client struct {
	cfg   Config
	base  string
	hc    *http.Client
	log   *slog.Logger
	kills chan struct{} // background kills in flight (killAfterCancel)
}

// DefaultTimeout bounds a request when Config.Timeout is zero: no call to
// ClickHouse waits forever, even on a server that stopped answering. The
// longest herd runs are publication queries over a day of raw events.
const DefaultTimeout = 10 * time.Minute

// New builds a client. It does not connect; call Ping to check the server.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("clickhouse: Config.Addr is empty")
	}
	if cfg.Database != "" && !validIdent(cfg.Database) {
		return nil, fmt.Errorf("clickhouse: Config.Database %q: %w", cfg.Database, ErrIdent)
	}
	for k := range cfg.Settings {
		if !validIdent(k) {
			return nil, fmt.Errorf("clickhouse: setting %q: %w", k, ErrIdent)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dialTimeout := cfg.DialTimeout
	if dialTimeout == 0 {
		dialTimeout = 5 * time.Second
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		// ClickHouse closes idle keep-alive connections after a few seconds
		// (keep_alive_timeout, 3 s by default); reusing one it has just closed
		// fails the request, so give them up sooner.
		IdleConnTimeout:   2 * time.Second,
		ForceAttemptHTTP2: false,
	}
	scheme := "http"
	if cfg.Secure {
		scheme = "https"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Client{
		cfg:   cfg,
		base:  scheme + "://" + cfg.Addr + "/",
		hc:    &http.Client{Transport: tr},
		log:   log.With("clickhouse", cfg.Addr, "user", cfg.User),
		kills: make(chan struct{}, maxKills),
	}, nil
}

// Config returns the client's configuration.
func (c *Client) Config() Config { return c.cfg }

// Database returns the default database ("" for the server's).
func (c *Client) Database() string { return c.cfg.Database }

// WithDatabase returns a client that shares c's connections but uses db as its
// default database.
func (c *Client) WithDatabase(db string) (*Client, error) {
	if _, err := Ident(db); err != nil {
		return nil, fmt.Errorf("clickhouse: database: %w", err)
	}
	cc := *c
	cc.cfg.Database = db
	return &cc, nil
}

// Close releases idle connections.
func (c *Client) Close() {
	c.hc.CloseIdleConnections()
}

// Option adjusts one query.
type Option func(*request)

// WithQueryID sets the query_id the server knows the query by (system.processes,
// KILL QUERY, query_log). Without it the client makes one up.
func WithQueryID(id string) Option { return func(r *request) { r.queryID = id } }

// WithSetting sets a ClickHouse setting for this query only.
func WithSetting(name, value string) Option {
	return func(r *request) {
		if r.settings == nil {
			r.settings = map[string]string{}
		}
		r.settings[name] = value
	}
}

// Idempotent marks a statement as safe to send again when the connection
// fails before an answer arrives. Selects are idempotent already.
func Idempotent() Option { return func(r *request) { r.idempotent = true } }

type request struct {
	query      string // in the body, or in the URL when body is set
	body       []byte // insert data
	queryID    string
	settings   map[string]string
	idempotent bool
	isKill     bool // a KILL QUERY: never itself followed by a kill
}

// Exec runs a statement that returns no rows (DDL, INSERT ... SELECT, ALTER).
func (c *Client) Exec(ctx context.Context, query string, opts ...Option) error {
	r := c.newRequest(query, nil, opts)
	return c.do(ctx, r, func(resp *http.Response) error {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	})
}

// Select runs a query and hands each result block to fn as it arrives. The
// block and its columns are valid only during the call. " FORMAT Native" is
// appended to query, which must not name a format itself. If fn returns an
// error, the query is cancelled on the server and Select returns that error.
func (c *Client) Select(ctx context.Context, query string, fn func(*proto.Block) error, opts ...Option) error {
	r := c.newRequest(query+"\nFORMAT Native", nil, append([]Option{Idempotent()}, opts...))
	return c.do(ctx, r, func(resp *http.Response) error {
		return decodeBlocks(resp.Body, fn)
	})
}

// Raw runs query as written and copies the server's answer, in whatever
// format the query asks for (TabSeparated by default), to w.
func (c *Client) Raw(ctx context.Context, query string, w io.Writer, opts ...Option) error {
	r := c.newRequest(query, nil, opts)
	return c.do(ctx, r, func(resp *http.Response) error {
		_, err := io.Copy(w, resp.Body)
		return err
	})
}

// Insert writes block into table ("db.table", or "table" in the default
// database) in one request. The block's column names name the table's
// columns; columns the block lacks get their defaults. Inserts are not
// retried: the caller decides whether sending the same rows again is safe.
func (c *Client) Insert(ctx context.Context, table string, block *proto.Block, opts ...Option) error {
	if err := validTableName(table); err != nil {
		return err
	}
	// Names from the columns themselves: a block may be built from
	// ready-made columns rather than AddColumn.
	names := make([]string, len(block.Columns))
	for i, col := range block.Columns {
		names[i] = col.Name()
	}
	for _, n := range names {
		if !validIdent(n) {
			return fmt.Errorf("clickhouse: insert into %s: column %q: %w", table, n, ErrIdent)
		}
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if err := block.Encode(buf, 0); err != nil {
		return fmt.Errorf("clickhouse: encode block for %s: %w", table, err)
	}
	q := "INSERT INTO " + table + " (" + strings.Join(names, ", ") + ") FORMAT Native"
	r := c.newRequest(q, buf.Buf, opts)
	return c.do(ctx, r, func(resp *http.Response) error {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	})
}

// Encode buffers are kept on a short free list rather than a sync.Pool:
// an insert's buffer is tens of MiB, and a pool would hand it to the garbage
// collector at the next cycle, making every insert grow a new one.
var buffers = make(chan *chproto.Buffer, 4)

func getBuffer() *chproto.Buffer {
	select {
	case b := <-buffers:
		return b
	default:
		return new(chproto.Buffer)
	}
}

func putBuffer(b *chproto.Buffer) {
	b.Reset()
	select {
	case buffers <- b:
	default:
	}
}

// Ping checks that the server answers and accepts the credentials.
func (c *Client) Ping(ctx context.Context) error {
	return c.Exec(ctx, "SELECT 1", Idempotent())
}

// Version returns the server's version string ("18.16.1").
func (c *Client) Version(ctx context.Context) (string, error) {
	var v string
	err := c.Select(ctx, "SELECT version()", func(b *proto.Block) error {
		if b.Rows() > 0 {
			v = Get[string](b, 0, 0)
		}
		return nil
	})
	return v, err
}

// Kill asks the server to stop the query with the given id. It returns once
// the server has been told, not when the query has ended.
func (c *Client) Kill(ctx context.Context, queryID string) error {
	r := c.newRequest("KILL QUERY WHERE query_id = "+Quote(queryID)+" ASYNC FORMAT Null", nil, nil)
	r.isKill = true
	return c.do(ctx, r, func(resp *http.Response) error {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	})
}

func (c *Client) newRequest(query string, body []byte, opts []Option) *request {
	r := &request{query: query, body: body}
	for _, o := range opts {
		o(r)
	}
	return r
}

func (c *Client) do(ctx context.Context, r *request, read func(*http.Response) error) error {
	if c.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	userID := r.queryID
	var err error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			wait, again := retryAfter(err, attempt)
			if !r.idempotent || !again {
				return err
			}
			c.log.Warn("clickhouse: retrying", "query_id", r.queryID, "attempt", attempt+1, "wait", wait, "err", err)
			select {
			case <-ctx.Done():
				return fmt.Errorf("clickhouse: %w (after %v)", ctx.Err(), err)
			case <-time.After(wait):
			}
		}
		r.queryID = userID
		if r.queryID == "" {
			r.queryID = newQueryID()
		}
		var sent bool
		sent, err = c.once(ctx, r, read)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			if sent && !r.isKill {
				c.killAfterCancel(r.queryID)
			}
			return fmt.Errorf("clickhouse: query %s: %w", r.queryID, ctx.Err())
		}
	}
}

// killAfterCancel tells the server to stop a query whose caller went away.
// Closing the connection is not enough: 18.16 only notices a gone client when
// it next writes to it, which for a long aggregation may be minutes later.
//
// The kill runs in the background with its own deadline, so a caller's
// deadline is kept even when the server does not answer (a frozen server
// would hold the caller for the kill's deadline too), and a kill that
// fails is never followed by another. At most maxKills run at once; beyond
// that a server is not answering anyway, and the rest are dropped.
func (c *Client) killAfterCancel(queryID string) {
	select {
	case c.kills <- struct{}{}:
	default:
		c.log.Warn("clickhouse: cancelled query not killed: too many kills pending", "query_id", queryID)
		return
	}
	go func() {
		defer func() { <-c.kills }()
		ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
		defer cancel()
		if err := c.Kill(ctx, queryID); err != nil {
			c.log.Warn("clickhouse: kill cancelled query", "query_id", queryID, "err", err)
		}
	}()
}

const (
	maxKills    = 8
	killTimeout = 5 * time.Second
)

// once sends the request one time. sent reports whether the server may have
// started the query.
func (c *Client) once(ctx context.Context, r *request, read func(*http.Response) error) (sent bool, err error) {
	params := url.Values{}
	if c.cfg.Database != "" {
		params.Set("database", c.cfg.Database)
	}
	params.Set("query_id", r.queryID)
	for k, v := range c.cfg.Settings {
		params.Set(k, v)
	}
	for k, v := range r.settings {
		if !validIdent(k) {
			return false, fmt.Errorf("clickhouse: setting %q: %w", k, ErrIdent)
		}
		params.Set(k, v)
	}
	body := r.body
	if body == nil {
		body = []byte(r.query)
	} else {
		params.Set("query", r.query)
	}
	if c.cfg.Compress {
		params.Set("enable_http_compression", "1")
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		if _, err := zw.Write(body); err != nil {
			return false, fmt.Errorf("clickhouse: gzip body: %w", err)
		}
		if err := zw.Close(); err != nil {
			return false, fmt.Errorf("clickhouse: gzip body: %w", err)
		}
		body = zb.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"?"+params.Encode(), bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("clickhouse: build request: %w", err)
	}
	if c.cfg.User != "" {
		req.Header.Set("X-ClickHouse-User", c.cfg.User)
	}
	if c.cfg.Password != "" {
		req.Header.Set("X-ClickHouse-Key", c.cfg.Password)
	}
	if c.cfg.Compress {
		req.Header.Set("Content-Encoding", "gzip")
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	// Lets net/http resend a request whose pooled connection turns out to
	// be dead (the server restarted) before any answer came: the server
	// never saw it. Safe for inserts too: raw events dedupe on event_id.
	req.Header.Set("X-Idempotency-Key", r.queryID)
	resp, err := c.hc.Do(req)
	if err != nil {
		return true, &transportError{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return true, parseException(resp.StatusCode, resp.Header.Get("X-ClickHouse-Exception-Code"), data)
	}
	if err := read(resp); err != nil {
		var ex *Exception
		if errors.As(err, &ex) || ctx.Err() != nil {
			return true, err
		}
		// The caller gave up on the stream (fn failed) or the stream broke:
		// either way the server may still be working for nobody.
		if !r.isKill {
			c.killAfterCancel(r.queryID)
		}
		return true, err
	}
	return true, nil
}

// transportError is a failure to exchange bytes with the server, as opposed
// to an answer from it. Only these are retried, and only when idempotent.
type transportError struct{ err error }

func (e *transportError) Error() string { return "clickhouse: " + e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// retryAfter says whether an idempotent request that failed with err on
// its attempt-th try (1 for the first) is worth another, and after how
// long. A lost connection or a full server is worth two more, soon. Every
// replica of a shard stale is worth waiting for longer: a replica back
// from an outage, or one whose fetches queue behind merges on a loaded
// machine, catches up in seconds, and the caller asked never to read a
// stale one. Only a refusal before the first row is retried (a local
// shard's rows may already have reached the reader otherwise).
func retryAfter(err error, attempt int) (time.Duration, bool) {
	var te *transportError
	var ex *Exception
	switch {
	case errors.As(err, &te) || IsCode(err, CodeTooManyQueries):
		return time.Duration(100<<(2*(attempt-1))) * time.Millisecond, attempt < 3
	case IsCode(err, CodeAllReplicasStale) && errors.As(err, &ex) && ex.Status != http.StatusOK:
		return time.Second << (attempt - 1), attempt < 6
	}
	return 0, false
}

func newQueryID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "herd-" + hex.EncodeToString(b[:])
}

// decodeBlocks reads Native blocks until the stream ends. ClickHouse reports an
// error that happens after the first bytes were sent by appending its text to
// the stream; the last bytes read are kept so that text can be recovered.
func decodeBlocks(body io.Reader, fn func(*proto.Block) error) error {
	tail := &tailReader{r: body}
	// chproto.NewReader keeps a bufio.Reader of this size as it is, so Peek
	// below sees exactly what the decoder will read next.
	br := bufio.NewReaderSize(tail, 128<<10)
	rd := chproto.NewReader(br)
	for {
		if _, err := br.Peek(1); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			// Not a transportError: blocks may have been handed out already,
			// so sending the query again would deliver them twice.
			return fmt.Errorf("clickhouse: read result: %w", err)
		}
		block := proto.Block{ServerContext: &column.ServerContext{Timezone: time.UTC}}
		if err := block.Decode(rd, 0); err != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(br, tailSize))
			if e := exceptionIn(tail.last()); e != nil {
				return e
			}
			return fmt.Errorf("clickhouse: decode result block: %w", err)
		}
		if err := callScan(fn, &block); err != nil {
			return err
		}
	}
}

// exceptionIn finds the exception ClickHouse appended to an answer it
// could not finish (the status line was sent long before), or nil.
func exceptionIn(text []byte) error {
	if i := bytes.LastIndex(text, []byte("Code: ")); i >= 0 {
		return parseException(http.StatusOK, "", text[i:])
	}
	return nil
}

// tailReader remembers the last tailSize bytes it has passed on.
type tailReader struct {
	r   io.Reader
	buf []byte
}

const tailSize = 1 << 16

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.buf = append(t.buf, p[:n]...)
		if len(t.buf) > 2*tailSize {
			t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
		}
	}
	return n, err
}

func (t *tailReader) last() []byte {
	if len(t.buf) > tailSize {
		return t.buf[len(t.buf)-tailSize:]
	}
	return t.buf
}

func validTableName(name string) error {
	db, table, ok := strings.Cut(name, ".")
	if !ok {
		db, table = "x", db
	}
	if !validIdent(db) || !validIdent(table) {
		return fmt.Errorf("clickhouse: table %q: %w", name, ErrIdent)
	}
	return nil
}
