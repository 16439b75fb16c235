package ingest

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/gofiber/fiber/v2"
)

// Body errors, each with its own answer.
var (
	errBodyTooLarge        = errors.New("body over 1 MiB")
	errUnsupportedEncoding = errors.New("unsupported content encoding")
)

// requestBody returns a request's body, decompressed once through a bounded
// reader when the client compressed it (Content-Encoding gzip, deflate or
// br): a body that inflates beyond MaxBodyBytes is refused as soon as it
// gets there, so a small compressed bomb costs at most MaxBodyBytes of
// memory. (Fiber's own Ctx.Body decompresses without a bound.)
func requestBody(c *fiber.Ctx) ([]byte, error) {
	raw := c.Request().Body()
	enc := strings.ToLower(strings.TrimSpace(c.Get(fiber.HeaderContentEncoding)))
	var r io.Reader
	switch enc {
	case "", "identity":
		return raw, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, badCompression(enc, err)
		}
		r = zr
	case "deflate":
		// RFC 9110's deflate is zlib-wrapped; some clients send raw deflate.
		if zr, err := zlib.NewReader(bytes.NewReader(raw)); err == nil {
			r = zr
		} else {
			r = flate.NewReader(bytes.NewReader(raw))
		}
	case "br":
		r = brotli.NewReader(bytes.NewReader(raw))
	default:
		return nil, errUnsupportedEncoding
	}
	var out bytes.Buffer
	n, err := out.ReadFrom(io.LimitReader(r, MaxBodyBytes+1))
	if n > MaxBodyBytes {
		return nil, errBodyTooLarge
	}
	if err != nil {
		return nil, badCompression(enc, err)
	}
	return out.Bytes(), nil
}

func badCompression(enc string, err error) error {
	return Problem{Index: -1, Reason: "body is not valid " + enc + " data: " + truncate(err.Error(), 80)}
}
