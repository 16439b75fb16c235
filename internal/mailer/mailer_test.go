package mailer

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// relay is a real SMTP server (go-smtp) on loopback that keeps what it
// receives and checks a user's password.
type relay struct {
	mu       sync.Mutex
	messages []received
	rejectTo string
}

type received struct {
	from, user string
	to         []string
	data       []byte
}

type session struct {
	r    *relay
	cur  received
	user string
}

func (r *relay) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{r: r}, nil }

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != "reports" || pass != "s3cret" {
			return errors.New("bad credentials")
		}
		s.user = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.cur = received{from: from, user: s.user}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == s.r.rejectTo {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = b
	s.r.mu.Lock()
	s.r.messages = append(s.r.messages, s.cur)
	s.r.mu.Unlock()
	return nil
}

func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

func startRelay(t *testing.T) (*relay, string) {
	t.Helper()
	r := &relay{rejectTo: "nobody@shop.example"}
	srv := smtp.NewServer(r)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r, ln.Addr().String()
}

func TestSendDeliversTheAttachments(t *testing.T) {
	r, addr := startRelay(t)
	xlsx := bytes.Repeat([]byte{'P', 'K', 3, 4, 0, 0xff}, 5000)
	csv := []byte("section,item,metric,value\nKPIs,site,orders,924\n")
	cfg := Config{Addr: addr, From: "herd@shop.example", To: []string{"ops@shop.example", "ceo@shop.example"}, Username: "reports", Password: "s3cret"}
	err := cfg.Send(context.Background(), "herd weekly report — demo", "Attached: the weekly report.", []Attachment{
		{Name: "herd-demo-weekly-2026-11-23.xlsx", ContentType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", Data: xlsx},
		{Name: "herd-demo-weekly-2026-11-23.csv", ContentType: "text/csv", Data: csv},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.messages) != 1 {
		t.Fatalf("%d messages received", len(r.messages))
	}
	m := r.messages[0]
	if m.from != "herd@shop.example" || strings.Join(m.to, ",") != "ops@shop.example,ceo@shop.example" || m.user != "reports" {
		t.Errorf("envelope: %+v", m)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.data))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if subject != "herd weekly report — demo" {
		t.Errorf("subject %q", subject)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	got := map[string][]byte{}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(base64Reader(p))
		if err != nil {
			t.Fatal(err)
		}
		got[p.FileName()] = b
	}
	if string(got[""]) != "Attached: the weekly report." || !bytes.Equal(got["herd-demo-weekly-2026-11-23.xlsx"], xlsx) || !bytes.Equal(got["herd-demo-weekly-2026-11-23.csv"], csv) {
		t.Errorf("parts differ from what was sent: %d parts", len(got))
	}
}

func TestSendFailures(t *testing.T) {
	_, addr := startRelay(t)
	ctx := context.Background()
	base := Config{Addr: addr, From: "herd@shop.example", To: []string{"ops@shop.example"}}

	bad := base
	bad.Username, bad.Password = "reports", "wrong"
	if err := bad.Send(ctx, "s", "b", nil); err == nil || !strings.Contains(err.Error(), "auth") {
		t.Errorf("wrong password: %v", err)
	}
	rejected := base
	rejected.To = []string{"ops@shop.example", "nobody@shop.example"}
	if err := rejected.Send(ctx, "s", "b", nil); err == nil || !strings.Contains(err.Error(), "nobody@shop.example") {
		t.Errorf("rejected recipient: %v", err)
	}
	for _, c := range []Config{{Addr: "no-port", From: "a@b.c", To: []string{"d@e.f"}}, {Addr: addr, From: "not an address", To: []string{"d@e.f"}}, {Addr: addr, From: "a@b.c"}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: valid", c)
		}
	}

	// A relay that accepts the connection and never answers: the delivery
	// fails at its timeout instead of hanging.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	mute := base
	mute.Addr, mute.Timeout = ln.Addr().String(), 500*time.Millisecond
	start := time.Now()
	if err := mute.Send(ctx, "s", "b", nil); err == nil {
		t.Error("a mute relay took the message")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a mute relay held the delivery %v", took)
	}
	// Nothing listening.
	down := base
	down.Addr = "127.0.0.1:1"
	if err := down.Send(ctx, "s", "b", nil); err == nil {
		t.Error("delivered to a closed port")
	}
}

// base64Reader decodes a part written with Content-Transfer-Encoding
// base64 (multipart.Reader decodes only quoted-printable itself).
func base64Reader(p *multipart.Part) io.Reader {
	if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
		return base64.NewDecoder(base64.StdEncoding, p)
	}
	return p
}
