package notify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	smtp "github.com/emersion/go-smtp"
)

// clock is a controllable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var t0 = time.Date(2026, 11, 20, 14, 5, 0, 0, time.FixedZone("ICT", 7*3600))

// hookServer records the requests an HTTP receiver gets.
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	paths  []string
	status int
	reply  string
}

func newHookServer(t *testing.T, reply string) *hookServer {
	h := &hookServer{status: 200, reply: reply}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var v map[string]any
		_ = json.Unmarshal(b, &v)
		h.mu.Lock()
		h.bodies = append(h.bodies, v)
		h.paths = append(h.paths, r.URL.RequestURI())
		st := h.status
		h.mu.Unlock()
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") && r.Method == http.MethodPost && len(b) > 0 && b[0] == '{' {
			t.Errorf("content type %q", ct)
		}
		w.WriteHeader(st)
		io.WriteString(w, h.reply)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) got() ([]map[string]any, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.bodies...), append([]string(nil), h.paths...)
}

func testEvent() Event {
	return Event{Kind: KindFailure, Severity: SeverityCritical, Job: "invoices-hourly", Op: "backup", Host: "srv1",
		Message: "backup failed: copy nas: no space left", Time: t0, Fields: map[string]string{"copy": "nas"}}
}

func TestChatPayloads(t *testing.T) {
	m := Render("A1", testEvent(), "en", 0, "")
	tests := []struct {
		kind, reply string
		secret      string
		check       func(t *testing.T, body map[string]any, path string)
	}{
		{"slack", "ok", "", func(t *testing.T, b map[string]any, _ string) {
			if b["text"] != m.Subject {
				t.Errorf("text %v", b["text"])
			}
			blocks := b["blocks"].([]any)
			sec := blocks[1].(map[string]any)["text"].(map[string]any)
			if sec["type"] != "mrkdwn" || !strings.Contains(sec["text"].(string), "*Job:* invoices-hourly") {
				t.Errorf("section %v", sec)
			}
		}},
		{"teams", "1", "", func(t *testing.T, b map[string]any, _ string) {
			att := b["attachments"].([]any)[0].(map[string]any)
			if b["type"] != "message" || att["contentType"] != "application/vnd.microsoft.card.adaptive" {
				t.Errorf("envelope %v", b)
			}
			card := att["content"].(map[string]any)
			if card["type"] != "AdaptiveCard" || card["version"] != "1.4" {
				t.Errorf("card %v", card)
			}
			facts := card["body"].([]any)[2].(map[string]any)["facts"].([]any)
			if facts[1].(map[string]any)["title"] != "Job" || facts[1].(map[string]any)["value"] != "invoices-hourly" {
				t.Errorf("facts %v", facts)
			}
		}},
		{"dingtalk", `{"errcode":0,"errmsg":"ok"}`, "SECdemo", func(t *testing.T, b map[string]any, path string) {
			md := b["markdown"].(map[string]any)
			if b["msgtype"] != "markdown" || md["title"] != m.Subject || !strings.Contains(md["text"].(string), "no space left") {
				t.Errorf("body %v", b)
			}
			ts := t0.UnixMilli()
			mac := hmac.New(sha256.New, []byte("SECdemo"))
			mac.Write([]byte(big.NewInt(ts).String() + "\nSECdemo"))
			want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
			if !strings.Contains(path, "timestamp="+big.NewInt(ts).String()) || !strings.Contains(path, "sign="+urlEscape(want)) {
				t.Errorf("signature missing or wrong: %s (want sign %s)", path, want)
			}
		}},
		{"wecom", `{"errcode":0,"errmsg":"ok"}`, "", func(t *testing.T, b map[string]any, _ string) {
			if b["msgtype"] != "markdown" || !strings.Contains(b["markdown"].(map[string]any)["content"].(string), "invoices-hourly") {
				t.Errorf("body %v", b)
			}
		}},
		{"feishu", `{"code":0,"msg":"success"}`, "fsecret", func(t *testing.T, b map[string]any, _ string) {
			if b["msg_type"] != "text" || !strings.Contains(b["content"].(map[string]any)["text"].(string), "no space left") {
				t.Errorf("body %v", b)
			}
			ts := big.NewInt(t0.Unix()).String()
			mac := hmac.New(sha256.New, []byte(ts+"\nfsecret"))
			if b["timestamp"] != ts || b["sign"] != base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
				t.Errorf("sign %v %v", b["timestamp"], b["sign"])
			}
		}},
		{"webhook", "", "", func(t *testing.T, b map[string]any, _ string) {
			if b["alert_id"] != "A1" || b["event"].(map[string]any)["job"] != "invoices-hourly" || b["lang"] != "en" {
				t.Errorf("body %v", b)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			srv := newHookServer(t, tt.reply)
			env := Env{Getenv: func(k string) string { return map[string]string{"SECRET": tt.secret}[k] }, Now: func() time.Time { return t0 }}
			s, err := NewSender(ChannelConfig{Name: "c", Type: tt.kind, URL: srv.URL + "/hook?access_token=x", SecretEnv: "SECRET"}, env)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(context.Background(), Recipient{Name: "r"}, m); err != nil {
				t.Fatal(err)
			}
			bodies, paths := srv.got()
			if len(bodies) != 1 {
				t.Fatalf("%d requests", len(bodies))
			}
			tt.check(t, bodies[0], paths[0])
		})
	}
}

func urlEscape(s string) string {
	r := strings.NewReplacer("+", "%2B", "/", "%2F", "=", "%3D")
	return r.Replace(s)
}

func TestServiceErrorCodes(t *testing.T) {
	for _, tc := range []struct{ kind, reply string }{
		{"dingtalk", `{"errcode":310000,"errmsg":"sign not match"}`},
		{"wecom", `{"errcode":93000,"errmsg":"invalid webhook url"}`},
		{"feishu", `{"code":19021,"msg":"sign match fail"}`},
	} {
		srv := newHookServer(t, tc.reply)
		s, _ := NewSender(ChannelConfig{Name: "c", Type: tc.kind, URL: srv.URL}, Env{})
		err := s.Send(context.Background(), Recipient{}, Render("A1", testEvent(), "en", 0, ""))
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s: error %v", tc.kind, err)
		}
	}
	srv := newHookServer(t, "")
	srv.status = 503
	s, _ := NewSender(ChannelConfig{Name: "c", Type: "slack", URL: srv.URL + "/x?token=secret"}, Env{})
	err := s.Send(context.Background(), Recipient{}, Render("A1", testEvent(), "en", 0, ""))
	de, ok := err.(*DeliveryError)
	if !ok || de.Permanent || strings.Contains(err.Error(), "secret") {
		t.Errorf("503 must be a transient error without the token: %v", err)
	}
}

func TestTelegramAndSMS(t *testing.T) {
	tg := newHookServer(t, `{"ok":true,"result":{}}`)
	s, err := NewSender(ChannelConfig{Name: "tg", Type: "telegram", URL: tg.URL, TokenEnv: "TG"}, Env{Getenv: func(string) string { return "123:ABC" }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), Recipient{Address: "-100200"}, Render("A1", testEvent(), "vi", 0, "")); err != nil {
		t.Fatal(err)
	}
	b, p := tg.got()
	if p[0] != "/bot123:ABC/sendMessage" || b[0]["chat_id"] != "-100200" || !strings.Contains(b[0]["text"].(string), "THẤT BẠI") {
		t.Errorf("telegram: %v %v", p, b)
	}

	sms := newHookServer(t, "queued")
	s, err = NewSender(ChannelConfig{Name: "sms", Type: "sms", URL: sms.URL + "/send?to={{urlquery .To}}",
		Body: `{"phone":{{json .To}},"message":{{json .Text}}}`, Headers: map[string]string{"X-Api-Key": "k"}}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), Recipient{Address: "+84901234567"}, Render("A7", testEvent(), "zh", 0, "")); err != nil {
		t.Fatal(err)
	}
	b, p = sms.got()
	if p[0] != "/send?to=%2B84901234567" || b[0]["phone"] != "+84901234567" || !strings.Contains(b[0]["message"].(string), "失败") || !strings.Contains(b[0]["message"].(string), "[A7]") {
		t.Errorf("sms: %v %v", p, b)
	}
}

func TestRenderLanguages(t *testing.T) {
	for lang, want := range map[string][]string{
		"en": {"[einvault] FAILED: invoices-hourly @ srv1", "Job: invoices-hourly", "einvault alerts ack A1"},
		"vi": {"THẤT BẠI", "Tác vụ: invoices-hourly", "Máy chủ: srv1", "einvault alerts ack A1"},
		"zh": {"失败", "作业: invoices-hourly", "主机: srv1", "einvault alerts ack A1"},
		"xx": {"FAILED"},
	} {
		m := Render("A1", testEvent(), lang, 2, "30m0s")
		for _, w := range want {
			if !strings.Contains(m.Text, w) {
				t.Errorf("%s: %q missing in\n%s", lang, w, m.Text)
			}
		}
	}
	if m := Render("A1", testEvent(), "vi", 2, "30m0s"); !strings.Contains(m.Text, "cấp 2") {
		t.Errorf("escalation line missing: %s", m.Text)
	}
}

// smtpServer is a real SMTP server (emersion/go-smtp) on loopback with
// STARTTLS, recording what it receives.
type smtpServer struct {
	srv    *smtp.Server
	addr   string
	caFile string
	mu     sync.Mutex
	msgs   []smtpMsg
	ln     net.Listener
	tlsCfg *tls.Config
}

type smtpMsg struct {
	from string
	to   []string
	data string
}

type smtpBackend struct{ s *smtpServer }

func (b smtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{s: b.s}, nil }

type smtpSession struct {
	s   *smtpServer
	msg smtpMsg
}

func (x *smtpSession) Reset()        { x.msg = smtpMsg{} }
func (x *smtpSession) Logout() error { return nil }
func (x *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	x.msg.from = from
	return nil
}
func (x *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.msg.to = append(x.msg.to, to)
	return nil
}
func (x *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.msg.data = string(b)
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, x.msg)
	x.s.mu.Unlock()
	return nil
}

func startSMTP(t *testing.T, addr string) *smtpServer {
	t.Helper()
	s := &smtpServer{}
	s.tlsCfg, s.caFile = selfSignedTLS(t)
	s.start(t, addr)
	return s
}

func (s *smtpServer) start(t *testing.T, addr string) {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	s.addr = ln.Addr().String()
	s.srv = smtp.NewServer(smtpBackend{s})
	s.srv.Domain = "localhost"
	s.srv.TLSConfig = s.tlsCfg
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
}

func (s *smtpServer) stop() { s.srv.Close(); s.ln.Close() }

func (s *smtpServer) received() []smtpMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smtpMsg(nil), s.msgs...)
}

func selfSignedTLS(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, _ := x509.MarshalECPrivateKey(key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}, ca
}

func emailConfig(s *smtpServer) Config {
	host, port, _ := net.SplitHostPort(s.addr)
	p, _ := net.LookupPort("tcp", port)
	return Config{
		Channels: []ChannelConfig{{Name: "mail", Type: "email", SMTPHost: host, SMTPPort: p, TLS: "starttls", CAFile: s.caFile, From: "einvault@example.vn"}},
		Recipients: []Recipient{
			{Name: "oncall", Channel: "mail", Address: "oncall@example.vn", Lang: "vi"},
			{Name: "lead", Channel: "mail", Address: "lead@example.vn", Lang: "en"},
			{Name: "cto", Channel: "mail", Address: "cto@example.cn", Lang: "zh"},
		},
		Rules: []Rule{{Name: "failures", Kinds: []Kind{KindFailure, KindDegraded}, Levels: [][]string{{"oncall"}, {"lead"}, {"cto"}}}},
	}
}

func TestEmailEscalationAndAck(t *testing.T) {
	ctx := context.Background()
	s := startSMTP(t, "")
	clk := &clock{t: t0}
	d, err := Open(ctx, filepath.Join(t.TempDir(), "alerts.db"), emailConfig(s), Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	id, err := d.Notify(ctx, testEvent())
	if err != nil || id == "" {
		t.Fatalf("notify: %q %v", id, err)
	}
	msgs := s.received()
	if len(msgs) != 1 || msgs[0].to[0] != "oncall@example.vn" || !strings.Contains(decodeMail(t, msgs[0].data), "THẤT BẠI") {
		t.Fatalf("level 0: %+v", msgs)
	}
	clk.Advance(14 * time.Minute)
	if err := d.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(s.received()); n != 1 {
		t.Fatalf("escalated too early: %d messages", n)
	}
	clk.Advance(time.Minute)
	if err := d.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	msgs = s.received()
	if len(msgs) != 2 || msgs[1].to[0] != "lead@example.vn" || !strings.Contains(decodeMail(t, msgs[1].data), "escalated to level 1") {
		t.Fatalf("level 1: %+v", msgs)
	}
	if err := d.Ack(ctx, id, "lead"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if err := d.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(s.received()); n != 2 {
		t.Fatalf("acknowledged alert escalated: %d messages", n)
	}
	if err := d.Ack(ctx, "Anope", "x"); err == nil {
		t.Fatal("unknown alert acknowledged")
	}
	list, err := d.List(ctx, true)
	if err != nil || len(list) != 1 || list[0].AckedBy != "lead" || len(list[0].Deliveries) != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
}

func decodeMail(t *testing.T, raw string) string {
	t.Helper()
	// Bodies are quoted-printable or base64; look at the decoded text.
	_, body, _ := strings.Cut(raw, "\r\n\r\n")
	if strings.Contains(raw, "Content-Transfer-Encoding: base64") {
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(body), ""))
		if err == nil {
			return string(b)
		}
	}
	if strings.Contains(raw, "quoted-printable") {
		b, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
		if err == nil {
			return string(b)
		}
	}
	return body
}

func TestSMTPDownQueuedAndRetried(t *testing.T) {
	ctx := context.Background()
	s := startSMTP(t, "")
	addr := s.addr
	s.stop() // the mail server is down when the alert happens
	clk := &clock{t: t0}
	store := filepath.Join(t.TempDir(), "alerts.db")
	d, err := Open(ctx, store, emailConfig(s), Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { d.Close() }()
	id, err := d.Notify(ctx, testEvent())
	if err != nil || id == "" {
		t.Fatalf("an alert must be recorded even when delivery fails: %q %v", id, err)
	}
	list, _ := d.List(ctx, false)
	if len(list) != 1 || list[0].Deliveries[0].DeliveredAt != nil || list[0].Deliveries[0].LastError == "" {
		t.Fatalf("undelivered alert not queued: %+v", list)
	}
	// Reopen (a daemon restart): the outbox survives.
	d.Close()
	d, err = Open(ctx, store, emailConfig(s), Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	s.start(t, addr) // the server is back
	if err := d.Tick(ctx); err != nil {
		t.Fatalf("retry before its time: %v", err)
	}
	if n := len(s.received()); n != 0 {
		t.Fatalf("retried before the backoff: %d", n)
	}
	clk.Advance(31 * time.Second)
	if err := d.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if msgs := s.received(); len(msgs) != 1 || msgs[0].to[0] != "oncall@example.vn" {
		t.Fatalf("queued alert not delivered after the server came back: %+v", msgs)
	}
}

func TestValidate(t *testing.T) {
	good := Config{
		Channels:   []ChannelConfig{{Name: "mail", Type: "email", SMTPHost: "smtp", From: "a@b"}, {Name: "ding", Type: "dingtalk", URLEnv: "DING"}},
		Recipients: []Recipient{{Name: "it", Channel: "mail", Address: "it@x", Lang: "vi"}, {Name: "room", Channel: "ding"}},
		Rules:      []Rule{{Kinds: []Kind{KindFailure}, Levels: [][]string{{"room"}, {"it"}}}},
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	tests := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"unknown type", func(c *Config) { c.Channels[0].Type = "pager" }, "unknown type"},
		{"email without host", func(c *Config) { c.Channels[0].SMTPHost = "" }, "smtp_host"},
		{"bad tls", func(c *Config) { c.Channels[0].TLS = "maybe" }, "tls"},
		{"hook without url", func(c *Config) { c.Channels[1].URLEnv = "" }, "url"},
		{"recipient without address", func(c *Config) { c.Recipients[0].Address = "" }, "address"},
		{"bad language", func(c *Config) { c.Recipients[0].Lang = "fr" }, "language"},
		{"unknown recipient", func(c *Config) { c.Rules[0].Levels[1] = []string{"boss"} }, "boss"},
		{"unknown channel", func(c *Config) { c.Recipients[1].Channel = "fax" }, "fax"},
		{"unknown kind", func(c *Config) { c.Rules[0].Kinds = []Kind{"oops"} }, "oops"},
		{"too many levels", func(c *Config) { c.Rules[0].Levels = [][]string{{"it"}, {"it"}, {"it"}, {"it"}, {"it"}} }, "levels"},
		{"schedule not increasing", func(c *Config) { c.Escalation = []Duration{0, Duration(time.Hour), Duration(time.Minute)} }, "not after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			c.Channels = append([]ChannelConfig(nil), good.Channels...)
			c.Recipients = append([]Recipient(nil), good.Recipients...)
			c.Rules = []Rule{{Kinds: good.Rules[0].Kinds, Levels: [][]string{{"room"}, {"it"}}}}
			tt.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want mention of %q", err, tt.want)
			}
		})
	}
}

func TestRulesAndDigest(t *testing.T) {
	ctx := context.Background()
	hook := newHookServer(t, "ok")
	clk := &clock{t: t0}
	cfg := Config{
		Channels:   []ChannelConfig{{Name: "slack", Type: "slack", URL: hook.URL}},
		Recipients: []Recipient{{Name: "ops", Channel: "slack"}, {Name: "boss", Channel: "slack"}},
		Rules: []Rule{
			{Name: "critical", MinSeverity: SeverityCritical, Levels: [][]string{{"ops"}, {"boss"}}},
			{Name: "digest", Kinds: []Kind{KindSuccess}, Jobs: []string{"nightly"}, Levels: [][]string{{"ops"}, {"boss"}}},
		},
	}
	d, err := Open(ctx, filepath.Join(t.TempDir(), "a.db"), cfg, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if id, _ := d.Notify(ctx, Event{Kind: KindDegraded, Severity: SeverityWarning, Job: "x", Message: "m"}); id != "" {
		t.Fatal("a warning matched a critical-only rule")
	}
	if id, _ := d.Notify(ctx, Event{Kind: KindSuccess, Severity: SeverityInfo, Job: "other", Message: "m"}); id != "" {
		t.Fatal("digest rule ignored its job filter")
	}
	if id, _ := d.Notify(ctx, Event{Kind: KindSuccess, Severity: SeverityInfo, Job: "nightly", Message: "all good"}); id == "" {
		t.Fatal("digest not sent")
	}
	clk.Advance(2 * time.Hour)
	if err := d.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if b, _ := hook.got(); len(b) != 1 {
		t.Fatalf("a success digest must not escalate: %d messages", len(b))
	}
}

func TestMailFiles(t *testing.T) {
	s := startSMTP(t, "")
	cfg := emailConfig(s)
	cfg.Channels = append(cfg.Channels, ChannelConfig{Name: "hook", Type: "webhook", URL: "http://127.0.0.1:1/x"})
	cfg.Recipients = append(cfg.Recipients, Recipient{Name: "room", Channel: "hook"})
	f := filepath.Join(t.TempDir(), "einvault-report-2026-10.pdf")
	if err := os.WriteFile(f, []byte("%PDF-1.4 test"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := MailFiles(context.Background(), cfg, Env{}, []string{"lead", "room", "ghost"}, "Monthly report 2026-10", "Attached.", []string{f})
	if err == nil || !strings.Contains(err.Error(), "e-mail only") || !strings.Contains(err.Error(), `"ghost"`) {
		t.Fatalf("errors for the webhook and unknown recipients expected: %v", err)
	}
	msgs := s.received()
	if len(msgs) != 1 || msgs[0].to[0] != "lead@example.vn" || !strings.Contains(msgs[0].data, `einvault-report-2026-10.pdf`) ||
		!strings.Contains(msgs[0].data, "Monthly report 2026-10") {
		t.Fatalf("report mail: %+v", msgs)
	}
}
