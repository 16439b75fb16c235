package mailer_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/herd-analytics/herd/internal/mailer"
	"github.com/herd-analytics/herd/internal/mailer/mailtest"
)

func TestSendDeliversTheAttachments(t *testing.T) {
	r := mailtest.Start(t)
	xlsx := bytes.Repeat([]byte{'P', 'K', 3, 4, 0, 0xff}, 5000)
	csv := []byte("section,item,metric,value\nKPIs,site,orders,924\n")
	cfg := mailer.Config{Addr: r.Addr, From: "herd@shop.example", To: []string{"ops@shop.example", "ceo@shop.example"}, Username: mailtest.User, Password: mailtest.Password}
	err := cfg.Send(context.Background(), "herd weekly report — demo", "Attached: the weekly report.", []mailer.Attachment{
		{Name: "herd-demo-weekly-2026-11-23.xlsx", ContentType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", Data: xlsx},
		{Name: "herd-demo-weekly-2026-11-23.csv", ContentType: "text/csv", Data: csv},
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := r.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages received", len(msgs))
	}
	m := msgs[0]
	if m.From != "herd@shop.example" || strings.Join(m.To, ",") != "ops@shop.example,ceo@shop.example" || m.User != mailtest.User {
		t.Errorf("envelope: %+v", m)
	}
	subject, got, err := m.Parts()
	if err != nil {
		t.Fatal(err)
	}
	if subject != "herd weekly report — demo" {
		t.Errorf("subject %q", subject)
	}
	if string(got[""]) != "Attached: the weekly report." || !bytes.Equal(got["herd-demo-weekly-2026-11-23.xlsx"], xlsx) || !bytes.Equal(got["herd-demo-weekly-2026-11-23.csv"], csv) {
		t.Errorf("parts differ from what was sent: %d parts", len(got))
	}
}

func TestSendFailures(t *testing.T) {
	r := mailtest.Start(t)
	ctx := context.Background()
	base := mailer.Config{Addr: r.Addr, From: "herd@shop.example", To: []string{"ops@shop.example"}}

	bad := base
	bad.Username, bad.Password = mailtest.User, "wrong"
	if err := bad.Send(ctx, "s", "b", nil); err == nil || !strings.Contains(err.Error(), "auth") {
		t.Errorf("wrong password: %v", err)
	}
	rejected := base
	rejected.To = []string{"ops@shop.example", mailtest.Refused}
	if err := rejected.Send(ctx, "s", "b", nil); err == nil || !strings.Contains(err.Error(), mailtest.Refused) {
		t.Errorf("refused recipient: %v", err)
	}
	if n := len(r.Messages()); n != 0 {
		t.Errorf("%d messages accepted from failed deliveries", n)
	}
	for _, c := range []mailer.Config{{Addr: "no-port", From: "a@b.c", To: []string{"d@e.f"}}, {Addr: r.Addr, From: "not an address", To: []string{"d@e.f"}}, {Addr: r.Addr, From: "a@b.c"}} {
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
		var held []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
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
	down := base
	down.Addr = "127.0.0.1:1"
	if err := down.Send(ctx, "s", "b", nil); err == nil {
		t.Error("delivered to a closed port")
	}
}
