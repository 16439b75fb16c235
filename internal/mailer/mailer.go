// Package mailer sends scheduled reports through the shop's SMTP relay:
// one message per report with its files attached (MIME multipart, base64).
// STARTTLS is used whenever the relay offers it; credentials are sent only
// over TLS (or to a relay on loopback), as net/smtp's PLAIN auth insists.
package mailer

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// Config is the relay and the envelope.
type Config struct {
	// Addr is the relay, host:port.
	Addr string
	// From is the sender address; To the recipients.
	From string
	To   []string
	// Username and Password authenticate (PLAIN) when Username is set.
	Username, Password string
	// Timeout bounds one delivery (default 30 s).
	Timeout time.Duration
	// TLS configures STARTTLS (default: verify the relay's host name).
	TLS *tls.Config
}

// Attachment is one file of a message.
type Attachment struct {
	Name, ContentType string
	Data              []byte
}

// Validate checks the addresses before the first delivery is due.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("smtp relay %q: want host:port: %w", c.Addr, err)
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("mail sender %q: %w", c.From, err)
	}
	if len(c.To) == 0 {
		return errors.New("mail: no recipients")
	}
	for _, to := range c.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return fmt.Errorf("mail recipient %q: %w", to, err)
		}
	}
	return nil
}

// Send delivers one message to every recipient.
func (c Config) Send(ctx context.Context, subject, body string, files []Attachment) error {
	if err := c.Validate(); err != nil {
		return err
	}
	msg, err := c.message(subject, body, files, time.Now())
	if err != nil {
		return err
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", c.Addr, err)
	}
	// The whole conversation ends with ctx: a relay that stops answering
	// fails the delivery instead of holding the scheduler.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	host, _, _ := net.SplitHostPort(c.Addr)
	cl, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp %s: %w", c.Addr, err)
	}
	defer cl.Close()
	if err := c.deliver(cl, host, msg); err != nil {
		return fmt.Errorf("smtp %s: %w", c.Addr, err)
	}
	return nil
}

func (c Config) deliver(cl *smtp.Client, host string, msg []byte) error {
	if err := cl.Hello("herd"); err != nil {
		return err
	}
	if ok, _ := cl.Extension("STARTTLS"); ok {
		cfg := c.TLS
		if cfg == nil {
			cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		if err := cl.StartTLS(cfg); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	}
	if c.Username != "" {
		if err := cl.Auth(smtp.PlainAuth("", c.Username, c.Password, host)); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := cl.Mail(c.From); err != nil {
		return err
	}
	for _, to := range c.To {
		if err := cl.Rcpt(to); err != nil {
			return fmt.Errorf("recipient %s: %w", to, err)
		}
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return cl.Quit()
}

// message is the RFC 5322 message: a text part and the attachments.
func (c Config) message(subject, body string, files []Attachment, now time.Time) ([]byte, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	_, domain, _ := strings.Cut(c.From, "@")
	head := []string{
		"From: " + c.From,
		"To: " + strings.Join(c.To, ", "),
		"Subject: " + mime.QEncoding.Encode("utf-8", subject),
		"Date: " + now.UTC().Format(time.RFC1123Z),
		"Message-ID: <" + hex.EncodeToString(id) + "@" + strings.Trim(domain, "<> ") + ">",
		"MIME-Version: 1.0",
		"Content-Type: multipart/mixed; boundary=" + mw.Boundary(),
	}
	var out bytes.Buffer
	out.WriteString(strings.Join(head, "\r\n") + "\r\n\r\n")
	text, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}, "Content-Transfer-Encoding": {"base64"}})
	if err != nil {
		return nil, err
	}
	if err := writeBase64(text, []byte(body)); err != nil {
		return nil, err
	}
	for _, f := range files {
		part, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {cmp.Or(f.ContentType, "application/octet-stream")},
			"Content-Transfer-Encoding": {"base64"},
			"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": f.Name})},
		})
		if err != nil {
			return nil, err
		}
		if err := writeBase64(part, f.Data); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	out.Write(buf.Bytes())
	return out.Bytes(), nil
}

// writeBase64 writes data base64-encoded in lines of 76 characters.
func writeBase64(w interface{ Write([]byte) (int, error) }, data []byte) error {
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		if _, err := w.Write([]byte(enc[:76] + "\r\n")); err != nil {
			return err
		}
		enc = enc[76:]
	}
	_, err := w.Write([]byte(enc + "\r\n"))
	return err
}
