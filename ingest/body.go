package ingest

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"runtime"
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
	decompressing <- struct{}{}
	defer func() { <-decompressing }()
	out, err := readBounded(r, len(raw), MaxBodyBytes)
	if errors.Is(err, errBodyTooLarge) {
		return nil, err
	}
	if err != nil {
		return nil, badCompression(enc, err)
	}
	return out, nil
}

// decompressing bounds how many compressed bodies inflate at once: each
// holds up to MaxBodyBytes and its decoder's state while it does, so any
// number of concurrent bombs costs at most this many of them.
var decompressing = make(chan struct{}, 2*runtime.GOMAXPROCS(0))

// readBounded reads r to its end, refusing it past limit bytes. Its buffer
// starts from the compressed size and never grows past limit+1, so a body
// refused at the limit has cost about limit bytes, not the doubling
// buffer's twice that.
func readBounded(r io.Reader, compressed, limit int) ([]byte, error) {
	buf := make([]byte, 0, min(max(4*compressed, 4096), limit+1))
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return nil, errBodyTooLarge
			}
			grown := make([]byte, len(buf), min(2*cap(buf), limit+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return nil, errBodyTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func badCompression(enc string, err error) error {
	return Problem{Index: -1, Reason: "body is not valid " + enc + " data: " + truncate(err.Error(), 80)}
}
