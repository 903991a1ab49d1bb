package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/einvault/einvault/internal/config"
)

func TestAlertsCommands(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var v map[string]any
		_ = json.Unmarshal(b, &v)
		mu.Lock()
		got = append(got, v)
		mu.Unlock()
		if strings.Contains(r.URL.Path, "broken") {
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "einvault.yaml")
	conf := `repository:
  location: ` + filepath.Join(dir, "repo") + `
notifications:
  channels:
    - {name: hook, type: webhook, url: "` + srv.URL + `/hook"}
    - {name: room, type: wecom, url_env: WECOM_URL}
  recipients:
    - {name: ops, channel: hook, lang: zh}
    - {name: chat, channel: room}
  rules:
    - {name: all, levels: [[ops], [chat]]}
`
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": dir, "WECOM_URL": srv.URL + "/broken"}
	state := filepath.Join(dir, "state")
	run := func(args ...string) (string, string, int) {
		return runRetention(t, env, append([]string{"--config", cfg, "--state-dir", state}, args...)...)
	}

	out, errs, code := run("alerts", "test", "ops")
	if code != 0 || !strings.Contains(out, "ops: sent") {
		t.Fatalf("test ops: exit %d\n%s%s", code, out, errs)
	}
	mu.Lock()
	if len(got) != 1 || got[0]["lang"] != "zh" || !strings.Contains(got[0]["text"].(string), "测试") {
		t.Fatalf("test message: %+v", got)
	}
	mu.Unlock()

	out, errs, code = run("alerts", "test", "chat", "--json")
	if code != 1 || !strings.Contains(out, `"ok":false`) || !strings.Contains(errs, "not accepted") {
		t.Fatalf("a refused test message must fail: exit %d\n%s%s", code, out, errs)
	}
	if strings.Contains(out+errs, "/broken?") {
		t.Fatal("webhook URL query leaked")
	}

	out, errs, code = run("alerts", "list", "--json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("list: exit %d\n%s%s", code, out, errs)
	}
	_, errs, code = run("alerts", "ack", "Anothere")
	if code != ExitUsage || !strings.Contains(errs, "no such alert") {
		t.Fatalf("ack unknown: exit %d %s", code, errs)
	}
	if out, errs, code = run("alerts", "test", "nobody"); code == 0 || !strings.Contains(out, "no recipient named") {
		t.Fatalf("unknown recipient: exit %d %s", code, errs)
	}
	if _, errs, code = run("alerts", "flush"); code != 0 {
		t.Fatalf("flush: exit %d %s", code, errs)
	}
}

func TestReportArgs(t *testing.T) {
	cfg := &config.Config{}
	if got := strings.Join(reportArgs(cfg, "/var/lib/einvault"), " "); got != "report monthly --out /var/lib/einvault/reports" {
		t.Fatalf("default: %s", got)
	}
	cfg.Daemon.Report = config.Report{Out: "/srv/r", Lang: "vi", Org: "Cty A", Recipients: []string{"boss", "it"}}
	if got := strings.Join(reportArgs(cfg, "/x"), " "); got != "report monthly --out /srv/r --lang vi --org Cty A --mail boss --mail it" {
		t.Fatalf("configured: %s", got)
	}
}
