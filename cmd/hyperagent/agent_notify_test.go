package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hypersdk/hyperagent/agent/notify"
	"github.com/hypersdk/hyperagent/schema"
)

// hookSecret is the webhook's signing secret, from a sensitive variable.
const hookSecret = "hk-0a1b2c3d4e5f6a7b8c9d"

// webhookReceiver is a receiver on loopback as a user would write one: it
// checks each request's signature with its secret (when it has one),
// refuses while down or for its first failFirst requests, and keeps
// what it acknowledged.
type webhookReceiver struct {
	t      *testing.T
	url    string
	secret string
	mu     sync.Mutex
	// requests counts every request; ids every delivery id seen.
	requests  int
	ids       []string
	failFirst int
	down      bool
	acked     [][]byte
}

func newWebhookReceiver(t *testing.T, secret string, failFirst int) *webhookReceiver {
	r := &webhookReceiver{t: t, secret: secret, failFirst: failFirst}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		for _, s := range []string{apiSecret, hookSecret} {
			if strings.Contains(string(b), s) || strings.Contains(fmt.Sprint(req.Header), s) {
				t.Errorf("a request carries a secret: %v %s", req.Header, b)
			}
		}
		if r.secret != "" {
			if err := notify.Verify(r.secret, req.Header.Get(notify.HeaderTimestamp), req.Header.Get(notify.HeaderSignature), b); err != nil {
				t.Errorf("signature: %v", err)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.requests++
		r.ids = append(r.ids, req.Header.Get(notify.HeaderDelivery))
		if r.down || r.requests <= r.failFirst {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		r.acked = append(r.acked, b)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *webhookReceiver) events() []notify.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []notify.Event
	for _, b := range r.acked {
		var ev notify.Event
		if err := json.Unmarshal(b, &ev); err != nil || ev.FormatVersion != notify.FormatVersion {
			r.t.Errorf("not a version 1 event: %s", b)
		}
		out = append(out, ev)
	}
	return out
}

func (r *webhookReceiver) count() (requests, acked int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, len(r.acked)
}

func notifyBlocks(ops, chat string) string {
	return fmt.Sprintf(`
variable "hook_secret" {
  sensitive = true
  default   = %q
}
notify "webhook" "ops" {
  url    = "%s/hooks/ops"
  secret = var.hook_secret
}
notify "webhook" "chat" {
  url    = %q
  events = ["failed"]
  format = "slack"
}
`, hookSecret, ops, chat)
}

// TestAgentNotifications runs the agent (the real binary, fakes for
// plugins) with two webhooks on loopback: "ops" gets every event, signed,
// from a receiver that refuses its first two requests; "chat" gets the
// failures as Slack-style text. Each migration that is defined and the
// failing export are told once, with no secret in any request, log line,
// or file of the outbox; the metrics (promtool-checked) count it all.
func TestAgentNotifications(t *testing.T) {
	ops := newWebhookReceiver(t, hookSecret, 2)
	chat := newWebhookReceiver(t, "", 0)
	dir := apiRepo(t, onDemandAgent+notifyBlocks(ops.url, chat.url))
	a := startAgent(t, dir, []string{"HYPERAGENT_AGENT_NO_EVENTS=1"})
	c := unixAPI(t, a.sock)
	eventually(t, "the first pass", func() bool { return c.status().Passes >= 1 })
	for i := 0; !defined(loadState(t, dir), "migration.db", `migration.web["a"]`, `migration.web["b"]`); i++ {
		if i > 20 {
			t.Fatalf("not converged after %d passes: %+v", i, c.status())
		}
		c.reconcile()
	}
	eventually(t, "4 events acknowledged by ops, 1 by chat", func() bool {
		_, o := ops.count()
		_, ch := chat.count()
		return o == 4 && ch == 1
	})
	c.reconcile() // a pass that changes nothing tells nothing
	got := map[string]string{}
	for _, ev := range ops.events() {
		if prev, dup := got[ev.Address]; dup {
			t.Errorf("%s told twice: %s and %s", ev.Address, prev, ev.Type)
		}
		got[ev.Address] = ev.Type
		if ev.Type == schema.NotifyFailed && (ev.Step != "export" || !strings.Contains(ev.Error, "login refused for token (sensitive value)")) {
			t.Errorf("the failure event: %+v", ev)
		}
	}
	want := map[string]string{"migration.db": "migrated", `migration.web["a"]`: "migrated", `migration.web["b"]`: "migrated", "migration.bad": "failed"}
	for addr, typ := range want {
		if got[addr] != typ {
			t.Errorf("%s: %q, want %q (all: %v)", addr, got[addr], typ, got)
		}
	}
	ops.mu.Lock()
	if ops.requests != 6 || ops.ids[0] != ops.ids[2] {
		t.Errorf("ops got %d requests with ids %v: want the first event refused twice, then acknowledged, then three more", ops.requests, ops.ids)
	}
	ops.mu.Unlock()
	chat.mu.Lock()
	var text map[string]string
	if err := json.Unmarshal(chat.acked[0], &text); err != nil || len(text) != 1 ||
		!strings.HasPrefix(text["text"], "hyperagent: migration.bad failed at export: export migration.bad:") ||
		!strings.HasSuffix(text["text"], "login refused for token (sensitive value)") {
		t.Errorf("chat got %s", chat.acked[0])
	}
	chat.mu.Unlock()

	checkMetrics(t, c, map[string]float64{
		`hyperagent_notifications_delivered_total{webhook="ops"}`:  4,
		`hyperagent_notifications_delivered_total{webhook="chat"}`: 1,
		`hyperagent_notification_failures_total{webhook="ops"}`:    2,
		`hyperagent_notification_failures_total{webhook="chat"}`:   0,
		`hyperagent_notification_outbox_events{webhook="ops"}`:     0,
	})
	if code := a.stopAndWait(t); code != 0 {
		t.Errorf("the agent exited %d:\n%s", code, a.stderr.String())
	}
	log := a.stderr.String()
	for _, s := range []string{apiSecret, hookSecret} {
		if strings.Contains(log, s) {
			t.Errorf("the agent's log carries %q", s)
		}
	}
	if !strings.Contains(log, "notification not delivered; retrying") || !strings.Contains(log, "503 Service Unavailable") {
		t.Errorf("the refusals are not logged:\n%s", log)
	}
	nd := filepath.Join(dir, ".hyperagent", "notify")
	_ = filepath.WalkDir(nd, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			if p != filepath.Join(nd, "ledger.json") {
				t.Errorf("%s left in the outbox", p)
			}
			if strings.Contains(string(b), apiSecret) || strings.Contains(string(b), hookSecret) {
				t.Errorf("%s carries a secret", p)
			}
		}
		return nil
	})
}

// TestAgentNotificationAcrossRestart: an event queued while its receiver
// is down survives the agent's SIGKILL in its outbox, and the restarted
// agent delivers it, under the id the first attempts carried.
func TestAgentNotificationAcrossRestart(t *testing.T) {
	rcv := newWebhookReceiver(t, "", 0)
	rcv.down = true
	dir := fakeRepo(t, 0, agentBlock+oneMigration("web")+fmt.Sprintf(`
notify "webhook" "ops" {
  url    = %q
  events = ["migrated"]
}
`, rcv.url))
	rewrite(t, dir, `interval   = "200ms"`, `interval   = "1h"`)
	a := startAgent(t, dir, nil)
	outbox := filepath.Join(dir, ".hyperagent", "notify", "outbox", "ops")
	eventually(t, "the event refused at least once", func() bool {
		n, _ := rcv.count()
		return n >= 1 && defined(loadState(t, dir), "migration.web")
	})
	files, err := os.ReadDir(outbox)
	if err != nil || len(files) != 1 {
		t.Fatalf("outbox %v (%v), want the pending event", files, err)
	}
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	rcv.mu.Lock()
	firstID, tried := rcv.ids[0], rcv.requests
	rcv.down = false
	rcv.mu.Unlock()
	if files[0].Name() != firstID+".json" {
		t.Errorf("outbox file %s for event %s", files[0].Name(), firstID)
	}

	b := startAgent(t, dir, nil)
	eventually(t, "delivered after the restart", func() bool { _, n := rcv.count(); return n == 1 })
	eventually(t, "the outbox emptied", func() bool { fs, _ := os.ReadDir(outbox); return len(fs) == 0 })
	rcv.mu.Lock()
	after := rcv.ids[tried:]
	rcv.mu.Unlock()
	if len(after) != 1 || after[0] != firstID {
		t.Errorf("requests after the restart carried ids %v, want only %s", after, firstID)
	}
	if ev := rcv.events()[0]; ev.Type != schema.NotifyMigrated || ev.Address != "migration.web" {
		t.Errorf("event %+v", ev)
	}
	if code := b.stopAndWait(t); code != 0 {
		t.Errorf("the agent exited %d:\n%s", code, b.stderr.String())
	}
}
