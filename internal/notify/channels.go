package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/template"
	"time"

	mail "github.com/wneessen/go-mail"
)

// Sender delivers one rendered message to one recipient.
type Sender interface {
	Send(ctx context.Context, to Recipient, m Rendered) error
}

// Env gives senders their secrets and clock.
type Env struct {
	Getenv func(string) string
	HTTP   *http.Client
	Now    func() time.Time
}

func (e Env) getenv(k string) string {
	if e.Getenv == nil || k == "" {
		return ""
	}
	return e.Getenv(k)
}

// NewSender builds the sender for a channel.
func NewSender(ch ChannelConfig, env Env) (Sender, error) {
	if env.HTTP == nil {
		env.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	u := ch.URL
	if ch.URLEnv != "" {
		if v := env.getenv(ch.URLEnv); v != "" {
			u = v
		}
	}
	switch ch.Type {
	case "email":
		return &emailSender{ch: ch, env: env}, nil
	case "telegram":
		base := u
		if base == "" {
			base = "https://api.telegram.org"
		}
		tok := env.getenv(ch.TokenEnv)
		if tok == "" {
			return nil, fmt.Errorf("channel %s: environment variable %s (the Telegram bot token) is empty: set it", ch.Name, ch.TokenEnv)
		}
		return &telegramSender{base: strings.TrimRight(base, "/"), token: tok, env: env}, nil
	case "sms":
		if u == "" {
			return nil, fmt.Errorf("channel %s: no url: set url or url_env", ch.Name)
		}
		return newSMSSender(ch, u, env)
	case "webhook", "slack", "teams", "dingtalk", "wecom", "feishu":
		if u == "" {
			return nil, fmt.Errorf("channel %s: no url: set url or url_env", ch.Name)
		}
		return &hookSender{kind: ch.Type, url: u, secret: env.getenv(ch.SecretEnv), env: env}, nil
	}
	return nil, fmt.Errorf("channel %s: unknown type %q", ch.Name, ch.Type)
}

// DeliveryError is a failed delivery; Permanent marks errors that will
// not go away by themselves (a rejected token), though the outbox keeps
// retrying them too, more slowly, until the configuration is fixed.
type DeliveryError struct {
	Err       error
	Permanent bool
}

func (e *DeliveryError) Error() string { return e.Err.Error() }
func (e *DeliveryError) Unwrap() error { return e.Err }

// hookSender posts JSON to chat services' incoming webhooks and to
// generic webhooks.
type hookSender struct {
	kind, url, secret string
	env               Env
}

// Payload builds the exact body the service expects.
func (h *hookSender) Payload(m Rendered) (target string, body []byte, err error) {
	target = h.url
	var v any
	switch h.kind {
	case "slack":
		v = map[string]any{
			"text": m.Subject,
			"blocks": []any{
				map[string]any{"type": "header", "text": map[string]any{"type": "plain_text", "text": m.Subject}},
				map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": slackMarkdown(m.Markdown)}},
			},
		}
	case "teams":
		facts := []any{}
		for _, f := range m.Facts {
			facts = append(facts, map[string]string{"title": f.Title, "value": f.Value})
		}
		v = map[string]any{
			"type": "message",
			"attachments": []any{map[string]any{
				"contentType": "application/vnd.microsoft.card.adaptive",
				"contentUrl":  nil,
				"content": map[string]any{
					"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
					"type":    "AdaptiveCard",
					"version": "1.4",
					"body": []any{
						map[string]any{"type": "TextBlock", "text": m.Subject, "weight": "Bolder", "size": "Medium", "wrap": true},
						map[string]any{"type": "TextBlock", "text": m.Event.Message, "wrap": true},
						map[string]any{"type": "FactSet", "facts": facts},
					},
				},
			}},
		}
	case "dingtalk":
		v = map[string]any{"msgtype": "markdown", "markdown": map[string]string{"title": m.Subject, "text": m.Markdown}}
		if h.secret != "" {
			ts := strconv.FormatInt(h.env.Now().UnixMilli(), 10)
			mac := hmac.New(sha256.New, []byte(h.secret))
			mac.Write([]byte(ts + "\n" + h.secret))
			sign := base64.StdEncoding.EncodeToString(mac.Sum(nil))
			sep := "?"
			if strings.Contains(target, "?") {
				sep = "&"
			}
			target += sep + "timestamp=" + ts + "&sign=" + url.QueryEscape(sign)
		}
	case "wecom":
		v = map[string]any{"msgtype": "markdown", "markdown": map[string]string{"content": m.Markdown}}
	case "feishu":
		body := map[string]any{"msg_type": "text", "content": map[string]string{"text": m.Text}}
		if h.secret != "" {
			ts := strconv.FormatInt(h.env.Now().Unix(), 10)
			// Feishu signs with key = timestamp+"\n"+secret over an empty message.
			mac := hmac.New(sha256.New, []byte(ts+"\n"+h.secret))
			body["timestamp"] = ts
			body["sign"] = base64.StdEncoding.EncodeToString(mac.Sum(nil))
		}
		v = body
	default: // generic webhook
		v = map[string]any{
			"alert_id": m.AlertID, "subject": m.Subject, "text": m.Text, "lang": m.Lang, "level": m.Level,
			"event": m.Event,
		}
	}
	body, err = json.Marshal(v)
	return target, body, err
}

func (h *hookSender) Send(ctx context.Context, _ Recipient, m Rendered) error {
	target, body, err := h.Payload(m)
	if err != nil {
		return &DeliveryError{Err: err, Permanent: true}
	}
	resp, err := postJSON(ctx, h.env.HTTP, http.MethodPost, target, body, nil)
	if err != nil {
		return err
	}
	// DingTalk, WeCom and Feishu answer 200 with an error code in the body.
	var r struct {
		ErrCode *int   `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
		Code    *int   `json:"code"`
		Msg     string `json:"msg"`
	}
	if json.Unmarshal(resp, &r) == nil {
		if r.ErrCode != nil && *r.ErrCode != 0 {
			return &DeliveryError{Err: fmt.Errorf("%s refused the message: errcode %d: %s", h.kind, *r.ErrCode, r.ErrMsg), Permanent: true}
		}
		if r.Code != nil && *r.Code != 0 {
			return &DeliveryError{Err: fmt.Errorf("%s refused the message: code %d: %s", h.kind, *r.Code, r.Msg), Permanent: true}
		}
	}
	return nil
}

// slackMarkdown turns **bold** into Slack's *bold*.
func slackMarkdown(s string) string { return strings.ReplaceAll(s, "**", "*") }

func postJSON(ctx context.Context, c *http.Client, method, target string, body []byte, headers map[string]string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return nil, &DeliveryError{Err: fmt.Errorf("bad URL: %w", err), Permanent: true}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, &DeliveryError{Err: fmt.Errorf("send to %s: %w", redactURL(target), err)}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		perm := resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout
		return nil, &DeliveryError{Err: fmt.Errorf("send to %s: HTTP %s: %s", redactURL(target), resp.Status, strings.TrimSpace(string(data))), Permanent: perm}
	}
	return data, nil
}

// redactURL drops the query (webhook tokens live there) from messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(bad URL)"
	}
	u.RawQuery = ""
	u.User = nil
	p := u.String()
	// Telegram puts the token in the path.
	if i := strings.Index(p, "/bot"); i >= 0 {
		p = p[:i] + "/bot…"
	}
	return p
}

type telegramSender struct {
	base, token string
	env         Env
}

func (t *telegramSender) Send(ctx context.Context, to Recipient, m Rendered) error {
	body, _ := json.Marshal(map[string]any{"chat_id": to.Address, "text": m.Text, "disable_web_page_preview": true})
	resp, err := postJSON(ctx, t.env.HTTP, http.MethodPost, t.base+"/bot"+t.token+"/sendMessage", body, nil)
	if err != nil {
		return err
	}
	var r struct {
		OK          bool   `json:"ok"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal(resp, &r); err != nil || !r.OK {
		return &DeliveryError{Err: fmt.Errorf("telegram refused the message: %s", r.Description), Permanent: true}
	}
	return nil
}

type smsSender struct {
	method  string
	url     *template.Template
	body    *template.Template
	headers map[string]string
	env     Env
}

var smsFuncs = template.FuncMap{
	"urlquery": url.QueryEscape,
	"json": func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	},
}

func newSMSSender(ch ChannelConfig, u string, env Env) (*smsSender, error) {
	ut, err := template.New("url").Funcs(smsFuncs).Parse(u)
	if err != nil {
		return nil, fmt.Errorf("channel %s: url template: %w", ch.Name, err)
	}
	s := &smsSender{method: strings.ToUpper(ch.Method), url: ut, headers: ch.Headers, env: env}
	if s.method == "" {
		s.method = http.MethodPost
	}
	if ch.Body != "" {
		if s.body, err = template.New("body").Funcs(smsFuncs).Parse(ch.Body); err != nil {
			return nil, fmt.Errorf("channel %s: body template: %w", ch.Name, err)
		}
	}
	return s, nil
}

// smsText is the short form an SMS can carry: subject and message.
func smsText(m Rendered) string {
	t := m.Subject + ": " + m.Event.Message
	if m.AlertID != "" && m.Event.Kind != KindSuccess {
		t += " [" + m.AlertID + "]"
	}
	if r := []rune(t); len(r) > 300 {
		t = string(r[:300])
	}
	return t
}

func (s *smsSender) Send(ctx context.Context, to Recipient, m Rendered) error {
	data := map[string]string{"To": to.Address, "Text": smsText(m), "Subject": m.Subject}
	var u, b bytes.Buffer
	if err := s.url.Execute(&u, data); err != nil {
		return &DeliveryError{Err: fmt.Errorf("sms url template: %w", err), Permanent: true}
	}
	if s.body != nil {
		if err := s.body.Execute(&b, data); err != nil {
			return &DeliveryError{Err: fmt.Errorf("sms body template: %w", err), Permanent: true}
		}
	}
	_, err := postJSON(ctx, s.env.HTTP, s.method, u.String(), b.Bytes(), s.headers)
	return err
}

type emailSender struct {
	ch  ChannelConfig
	env Env
}

func (e *emailSender) Send(ctx context.Context, to Recipient, m Rendered) error {
	return e.send(ctx, to, m.Subject, m.Text, nil)
}

// send mails subject and body to one recipient, with files attached.
func (e *emailSender) send(ctx context.Context, to Recipient, subject, body string, files []string) error {
	msg := mail.NewMsg(mail.WithCharset(mail.CharsetUTF8))
	if err := msg.From(e.ch.From); err != nil {
		return &DeliveryError{Err: fmt.Errorf("email from %q: %w", e.ch.From, err), Permanent: true}
	}
	if err := msg.To(to.Address); err != nil {
		return &DeliveryError{Err: fmt.Errorf("email to %q: %w", to.Address, err), Permanent: true}
	}
	msg.Subject(subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(mail.TypeTextPlain, body)
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return &DeliveryError{Err: fmt.Errorf("email attachment: %w", err), Permanent: true}
		}
		msg.AttachFile(f)
	}
	port := e.ch.SMTPPort
	opts := []mail.Option{mail.WithTimeout(30 * time.Second)}
	tlsConf := &tls.Config{ServerName: e.ch.SMTPHost, MinVersion: tls.VersionTLS12}
	if e.ch.CAFile != "" {
		pem, err := os.ReadFile(e.ch.CAFile)
		if err != nil {
			return &DeliveryError{Err: fmt.Errorf("email: read ca_file: %w", err), Permanent: true}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return &DeliveryError{Err: fmt.Errorf("email: ca_file %s holds no PEM certificate", e.ch.CAFile), Permanent: true}
		}
		tlsConf.RootCAs = pool
	}
	opts = append(opts, mail.WithTLSConfig(tlsConf))
	switch e.ch.TLS {
	case "tls":
		if port == 0 {
			port = 465
		}
		opts = append(opts, mail.WithSSL())
	case "none":
		if port == 0 {
			port = 25
		}
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		if port == 0 {
			port = 587
		}
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	opts = append(opts, mail.WithPort(port))
	if e.ch.Username != "" {
		pw := e.env.getenv(e.ch.PasswordEnv)
		if e.ch.PasswordFile != "" {
			b, err := os.ReadFile(e.ch.PasswordFile)
			if err != nil {
				return &DeliveryError{Err: fmt.Errorf("email: read password_file: %w", err), Permanent: true}
			}
			pw = strings.TrimRight(string(b), "\r\n")
		}
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(e.ch.Username), mail.WithPassword(pw))
	}
	c, err := mail.NewClient(e.ch.SMTPHost, opts...)
	if err != nil {
		return &DeliveryError{Err: fmt.Errorf("email: %w", err), Permanent: true}
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return &DeliveryError{Err: fmt.Errorf("email via %s:%d: %w", e.ch.SMTPHost, port, err), Permanent: isPermanentSMTP(err)}
	}
	return nil
}

func isPermanentSMTP(err error) bool {
	var se *mail.SendError
	if errors.As(err, &se) {
		return !se.IsTemp()
	}
	return false
}

// MailFiles sends a message with attachments (a monthly report) to the
// named recipients, who must be on e-mail channels. It goes out at once,
// not through the outbox; the caller reports failures.
func MailFiles(ctx context.Context, cfg Config, env Env, recipients []string, subject, body string, files []string) error {
	chans := map[string]ChannelConfig{}
	for _, c := range cfg.Channels {
		chans[c.Name] = c
	}
	var errs []error
	for _, name := range recipients {
		var r *Recipient
		for i := range cfg.Recipients {
			if cfg.Recipients[i].Name == name {
				r = &cfg.Recipients[i]
			}
		}
		if r == nil {
			errs = append(errs, fmt.Errorf("no recipient named %q in the notifications section", name))
			continue
		}
		ch := chans[r.Channel]
		if ch.Type != "email" {
			errs = append(errs, fmt.Errorf("recipient %q is on channel %q (%s): reports are sent by e-mail only", name, r.Channel, ch.Type))
			continue
		}
		if err := (&emailSender{ch: ch, env: env}).send(ctx, *r, subject, body, files); err != nil {
			errs = append(errs, fmt.Errorf("mail report to %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
