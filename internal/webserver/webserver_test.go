package webserver

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
)

// A handler that panics or fails answers a JSON 500 without details, the
// process lives on, and the cause is in the log.
func TestFailingHandlersAnswer500AndAreLogged(t *testing.T) {
	var logs bytes.Buffer
	app := NewApp(AppConfig{Name: "t", Log: slog.New(slog.NewTextHandler(&logs, nil))}, nil)
	app.Get("/panic", func(*fiber.Ctx) error { panic("interface conversion: any is uint32, not uint64") })
	app.Get("/fail", func(*fiber.Ctx) error { return errors.New("clickhouse: decode result block") })
	for _, path := range []string{"/panic", "/fail"} {
		resp, err := app.Test(httptest.NewRequest("GET", path, nil))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 500 || string(body) != `{"error":"internal error"}` {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	for _, want := range []string{"route=/panic", "not uint64", "route=/fail", "decode result block"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}
