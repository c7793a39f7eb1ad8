package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema"
)

const (
	campaign   = "0b7a9e4c-3d2f-4a51-9c8e-1f2e3d4c5b6a"
	hookSecret = "wh-s3cret-7f6e5d4c3b2a1908"
)

// delivery is one request a receiver got.
type delivery struct {
	header http.Header
	body   []byte
	status int // what the receiver answered
}

// receiver is a webhook receiver on loopback: it answers fail (a status)
// to the first failFirst requests, then 200, and keeps every request.
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []delivery
	// failFirst requests are answered failStatus.
	failFirst, failStatus int
	// down answers every request 503 while set.
	down bool
}

func newReceiver(t *testing.T, failFirst int) *receiver {
	r := &receiver{failFirst: failFirst, failStatus: http.StatusInternalServerError}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		status := http.StatusNoContent
		switch {
		case req.Method != http.MethodPost:
			status = http.StatusMethodNotAllowed
		case r.down:
			status = http.StatusServiceUnavailable
		case len(r.got) < r.failFirst:
			status = r.failStatus
		}
		r.got = append(r.got, delivery{header: req.Header.Clone(), body: b, status: status})
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// acknowledged are the events of the requests answered 2xx.
func (r *receiver) acknowledged(t *testing.T) []Event {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, d := range r.got {
		if d.status/100 != 2 {
			continue
		}
		var ev Event
		if err := json.Unmarshal(d.body, &ev); err != nil {
			t.Fatalf("body %s: %v", d.body, err)
		}
		out = append(out, ev)
	}
	return out
}

// syncBuffer is a log sink safe for the senders' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// queued counts the notifications queued so far (each logs a line;
// State and Planned queue before they return).
func (f *fixture) queued() int { return strings.Count(f.log.String(), "notification queued") }

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	t   *testing.T
	dir string
	n   *Notifier
	log *syncBuffer
	red *reconcile.Redactor
}

// newFixture returns a started Notifier over dir with short backoff,
// logging to a buffer, whose Redactor knows hookSecret.
func newFixture(t *testing.T, dir string, hooks ...*schema.Webhook) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: dir, log: &syncBuffer{}, red: reconcile.NewRedactor([]string{hookSecret})}
	f.n = New(Options{Log: hclog.New(&hclog.LoggerOptions{Output: f.log, Level: hclog.Debug}), Redact: f.red,
		Version: "test", RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond})
	f.n.Configure(dir, hooks)
	ctx, cancel := context.WithCancel(context.Background())
	f.n.Start(ctx)
	t.Cleanup(func() { cancel(); f.n.Wait() })
	return f
}

func hook(name, url string, events ...string) *schema.Webhook {
	if len(events) == 0 {
		events = schema.NotifyEvents
	}
	return &schema.Webhook{Name: name, URL: url, Events: events, Format: schema.WebhookFormatJSON}
}

// eventually polls cond until it holds, for a bounded time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// campaignState is a state of campaign with migrations a and b recorded,
// nothing done yet.
func campaignState() *reconcile.State {
	st := reconcile.NewState()
	st.Lineage, st.Serial = campaign, 3
	for _, a := range []string{"migration.a", "migration.b"} {
		st.Migrations[a] = &reconcile.MigrationState{Address: a, CreatedAt: t0, UpdatedAt: t0}
	}
	return st
}

func define(st *reconcile.State, addr string, at time.Time) {
	ms := st.Migrations[addr]
	ms.Job = &reconcile.JobRecord{ID: "job-" + addr, Attempt: 1}
	ms.Domain = &plugins.DefinedDomain{Name: strings.TrimPrefix(addr, "migration."), UUID: "u-" + addr}
	ms.DefinedAt, ms.UpdatedAt = &at, at
	ms.LastError = nil
}

func fail(st *reconcile.State, addr string, step reconcile.StepKind, msg string, at time.Time) {
	ms := st.Migrations[addr]
	ms.LastError = &reconcile.ErrorRecord{Step: step, Message: msg, At: at}
	ms.UpdatedAt = at
}

func outboxFiles(t *testing.T, dir, hook string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "outbox", hook))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestRetriedUntilAcknowledged: a receiver that fails the first tries
// gets the same event (same id, same body) again after a growing wait
// until it acknowledges it; then the event's file is gone, and the
// metrics count one delivery and the failures.
func TestRetriedUntilAcknowledged(t *testing.T) {
	rcv := newReceiver(t, 3)
	dir := t.TempDir()
	f := newFixture(t, dir, hook("ops", rcv.srv.URL))
	st := campaignState()
	f.n.State(st) // the campaign as it is when notifying starts: no news
	define(st, "migration.a", t0.Add(time.Minute))
	f.n.State(st)
	eventually(t, "the event acknowledged", func() bool { return len(rcv.deliveries()) == 4 })
	eventually(t, "the outbox emptied", func() bool { return len(outboxFiles(t, dir, "ops")) == 0 })
	ds := rcv.deliveries()
	for i, d := range ds {
		if !bytes.Equal(d.body, ds[0].body) || d.header.Get(HeaderDelivery) != ds[0].header.Get(HeaderDelivery) {
			t.Errorf("attempt %d differs from the first: %s %s", i+1, d.header.Get(HeaderDelivery), d.body)
		}
	}
	evs := rcv.acknowledged(t)
	if len(evs) != 1 {
		t.Fatalf("acknowledged %d events, want 1", len(evs))
	}
	ev := evs[0]
	want := Event{FormatVersion: FormatVersion, ID: ds[0].header.Get(HeaderDelivery), Type: schema.NotifyMigrated, Campaign: campaign,
		Address: "migration.a", Phase: reconcile.PhaseDefined, Step: reconcile.StepDefine, JobID: "job-migration.a",
		Domain: "a", OccurredAt: t0.Add(time.Minute), QueuedAt: ev.QueuedAt}
	if ev != want {
		t.Errorf("event\n%+v\nwant\n%+v", ev, want)
	}
	if got := ds[0].header.Get(HeaderEvent); got != schema.NotifyMigrated {
		t.Errorf("%s: %q", HeaderEvent, got)
	}
	if ds[0].header.Get(HeaderSignature) != "" {
		t.Error("a webhook without a secret got a signature")
	}
	// The same state seen again, by a load or a write: nothing new —
	// nothing queued (State queues synchronously), nothing sent.
	queued := f.queued()
	f.n.State(st)
	if n := f.queued(); n != queued {
		t.Errorf("%d notifications queued for a state seen again", n-queued)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(rcv.deliveries()); n != 4 {
		t.Errorf("%d requests after the same state was seen again, want 4", n)
	}
	if d := testutil.ToFloat64(f.n.m.delivered.WithLabelValues("ops")); d != 1 {
		t.Errorf("delivered %v, want 1", d)
	}
	if fl := testutil.ToFloat64(f.n.m.failures.WithLabelValues("ops")); fl != 3 {
		t.Errorf("failures %v, want 3", fl)
	}
	if d := f.n.depths()["ops"]; d != 0 {
		t.Errorf("outbox depth %d, want 0", d)
	}
	// The waits grew: the retries did not hammer the receiver.
	if !strings.Contains(f.log.String(), "notification not delivered; retrying") {
		t.Errorf("the failures were not logged:\n%s", f.log)
	}
}

// TestEventsByType: each webhook gets only the events it subscribes to,
// and each transition once: a migration defined, a step failed (not an
// interruption), a job the converter failed, a stalled job, drift; the
// same condition seen at every pass is not news, but drift that comes
// back after it was dealt with is.
func TestEventsByType(t *testing.T) {
	all := newReceiver(t, 0)
	failures := newReceiver(t, 0)
	dir := t.TempDir()
	f := newFixture(t, dir, hook("all", all.srv.URL), hook("failures", failures.srv.URL, schema.NotifyFailed, schema.NotifyStalled))
	st := campaignState()
	f.n.State(st)
	fail(st, "migration.b", reconcile.StepExport, "interrupted: export migration.b: context canceled", t0.Add(time.Second))
	f.n.State(st) // an interruption is no failure
	fail(st, "migration.b", reconcile.StepExport, "export migration.b: login refused", t0.Add(2*time.Second))
	define(st, "migration.a", t0.Add(3*time.Second))
	f.n.State(st)
	p := &reconcile.Plan{Lineage: campaign, Changes: []reconcile.Change{
		{Address: "migration.a", Action: reconcile.ActionUpdate, Phase: reconcile.PhaseDefined,
			Steps:     []reconcile.Step{{Kind: reconcile.StepDefine}},
			Condition: &reconcile.Condition{Kind: reconcile.ConditionDrift, Detail: "the domain's definition drifted from what was defined"}},
		{Address: "migration.b", Action: reconcile.ActionCreate, Phase: reconcile.PhaseFailed,
			Condition: &reconcile.Condition{Kind: reconcile.ConditionJobStalled, JobID: "job-b-1", Detail: "processing for 2h5m (timeout 2h)"}},
	}}
	f.n.Planned(p)
	f.n.Planned(p) // the next pass sees the same
	p.Changes[1].Condition = &reconcile.Condition{Kind: reconcile.ConditionJobFailed, JobID: "job-b-2", Detail: "qemu-img: unsupported format"}
	f.n.Planned(p)
	eventually(t, "5 events to all, 3 to failures", func() bool { return len(all.deliveries()) == 5 && len(failures.deliveries()) == 3 })
	type key struct{ typ, addr, step, text string }
	got := map[key]int{}
	for _, ev := range all.acknowledged(t) {
		got[key{ev.Type, ev.Address, string(ev.Step), ev.Error + ev.Detail}]++
	}
	want := map[key]int{
		{"failed", "migration.b", "export", "export migration.b: login refused"}:                    1,
		{"migrated", "migration.a", "define", ""}:                                                   1,
		{"drift", "migration.a", "define", "the domain's definition drifted from what was defined"}: 1,
		{"stalled", "migration.b", "await", "processing for 2h5m (timeout 2h)"}:                     1,
		{"failed", "migration.b", "await", "qemu-img: unsupported format"}:                          1,
	}
	if len(got) != len(want) {
		t.Errorf("events %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%+v: %d events, want %d (all: %v)", k, got[k], n, got)
		}
	}
	for _, ev := range failures.acknowledged(t) {
		if ev.Type != schema.NotifyFailed && ev.Type != schema.NotifyStalled {
			t.Errorf("the failures webhook got a %s event", ev.Type)
		}
	}
	// A retry that fails to mend the drift: its failure is news, the
	// drift it left is not.
	fail(st, "migration.a", reconcile.StepDefine, "define migration.a: refused", t0.Add(30*time.Minute))
	f.n.State(st)
	f.n.Planned(p)
	eventually(t, "the failed retry", func() bool { return len(all.deliveries()) == 6 })
	// The drift dealt with (the migration redefined), then back: news.
	define(st, "migration.a", t0.Add(time.Hour))
	f.n.State(st)
	p.Changes[0].Condition = nil
	f.n.Planned(p)
	p.Changes[0].Condition = &reconcile.Condition{Kind: reconcile.ConditionDrift, Detail: "the domain's definition drifted from what was defined"}
	f.n.Planned(p)
	eventually(t, "a second migrated and a second drift", func() bool { return len(all.deliveries()) == 8 })
	time.Sleep(50 * time.Millisecond)
	drifts := 0
	for _, ev := range all.acknowledged(t) {
		if ev.Type == schema.NotifyDrift {
			drifts++
		}
	}
	if n := len(all.deliveries()); n != 8 || drifts != 2 {
		t.Errorf("%d events, %d of them drift; want 8 and 2", n, drifts)
	}
	ids := map[string]bool{}
	for _, ev := range all.acknowledged(t) {
		if ids[ev.ID] {
			t.Errorf("id %s sent twice", ev.ID)
		}
		ids[ev.ID] = true
	}
}

// TestPendingSurvivesRestart: an event queued while the receiver is down
// stays in the outbox when the agent stops, and a new Notifier over the
// same directory delivers it, under the same id.
func TestPendingSurvivesRestart(t *testing.T) {
	rcv := newReceiver(t, 0)
	rcv.setDown(true)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	n := New(Options{RetryMin: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	n.Configure(dir, []*schema.Webhook{hook("ops", rcv.srv.URL)})
	n.Start(ctx)
	st := campaignState()
	n.State(st)
	define(st, "migration.a", t0.Add(time.Minute))
	n.State(st)
	eventually(t, "attempts while down", func() bool { return len(rcv.deliveries()) >= 2 })
	cancel()
	n.Wait()
	files := outboxFiles(t, dir, "ops")
	if len(files) != 1 {
		t.Fatalf("outbox %v after the stop, want the pending event", files)
	}
	firstID := rcv.deliveries()[0].header.Get(HeaderDelivery)
	rcv.setDown(false)
	tried := len(rcv.deliveries())

	f := newFixture(t, dir, hook("ops", rcv.srv.URL))
	f.n.State(st) // the first load after the restart: nothing new
	eventually(t, "delivered after the restart", func() bool { return len(outboxFiles(t, dir, "ops")) == 0 })
	ds := rcv.deliveries()[tried:]
	if len(ds) != 1 || ds[0].header.Get(HeaderDelivery) != firstID {
		t.Errorf("after the restart: %d requests, id %q; want 1 with id %s", len(ds), ds[0].header.Get(HeaderDelivery), firstID)
	}
}

// TestTransitionRecordedBeforeACrash: a transition the state recorded
// while no Notifier saw it (the agent was killed between the state write
// and the queueing) is queued when the state is next loaded, with the id
// it would have had.
func TestTransitionRecordedBeforeACrash(t *testing.T) {
	rcv := newReceiver(t, 0)
	dir := t.TempDir()
	st := campaignState()
	// One agent saw the campaign, and was killed before it saw a's define.
	first := newFixture(t, dir, hook("ops", rcv.srv.URL))
	first.n.State(st)
	first.n.Flush()
	define(st, "migration.a", t0.Add(time.Minute))
	again := st.Clone()

	second := newFixture(t, dir, hook("ops", rcv.srv.URL))
	second.n.State(again)
	eventually(t, "the missed transition delivered", func() bool { return len(rcv.acknowledged(t)) == 1 })
	ev := rcv.acknowledged(t)[0]
	if ev.Type != schema.NotifyMigrated || ev.Address != "migration.a" ||
		ev.ID != eventID(campaign, "migration.a", schema.NotifyMigrated, t0.Add(time.Minute).Format(time.RFC3339Nano)) {
		t.Errorf("event %+v", ev)
	}
}

// TestBaselineAndCampaigns: when notifying starts on a campaign with a
// history, the history is not sent; a state of another campaign starts
// afresh too; a campaign first written after notifying started is news
// from its first transition.
func TestBaselineAndCampaigns(t *testing.T) {
	rcv := newReceiver(t, 0)
	dir := t.TempDir()
	f := newFixture(t, dir, hook("ops", rcv.srv.URL))
	st := campaignState()
	define(st, "migration.a", t0)
	fail(st, "migration.b", reconcile.StepExport, "export migration.b: refused", t0)
	f.n.State(st)
	other := st.Clone()
	other.Lineage = "another-campaign"
	f.n.State(other)
	// A fresh campaign: nothing written yet, then its first define.
	fresh := reconcile.NewState()
	f.n.State(fresh)
	fresh = campaignState()
	fresh.Lineage = "fresh-campaign"
	define(fresh, "migration.b", t0.Add(time.Minute))
	f.n.State(fresh)
	eventually(t, "the fresh campaign's define", func() bool { return len(rcv.acknowledged(t)) == 1 })
	if n := f.queued(); n != 1 {
		t.Errorf("%d notifications queued, want the fresh campaign's define alone", n)
	}
	time.Sleep(50 * time.Millisecond)
	evs := rcv.acknowledged(t)
	if len(evs) != 1 || evs[0].Campaign != "fresh-campaign" || evs[0].Address != "migration.b" {
		t.Errorf("events %+v, want only the fresh campaign's define", evs)
	}
}

// TestSignature: with a secret, the receiver can verify each request with
// it; a receiver holding another secret, a changed body or a changed
// timestamp fails the check.
func TestSignature(t *testing.T) {
	rcv := newReceiver(t, 0)
	h := hook("ops", rcv.srv.URL)
	h.Secret = hookSecret
	f := newFixture(t, t.TempDir(), h)
	st := campaignState()
	f.n.State(st)
	define(st, "migration.a", t0.Add(time.Minute))
	f.n.State(st)
	eventually(t, "a delivery", func() bool { return len(rcv.deliveries()) == 1 })
	d := rcv.deliveries()[0]
	ts, sig := d.header.Get(HeaderTimestamp), d.header.Get(HeaderSignature)
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
		t.Fatalf("signature %q", sig)
	}
	if sec, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		t.Errorf("timestamp %q is not now (%v)", ts, err)
	}
	if err := Verify(hookSecret, ts, sig, d.body); err != nil {
		t.Errorf("the right secret: %v", err)
	}
	for name, tc := range map[string]struct {
		secret, ts string
		body       []byte
	}{
		"wrong secret":   {"another-secret", ts, d.body},
		"body changed":   {hookSecret, ts, bytes.Replace(d.body, []byte("migration.a"), []byte("migration.b"), 1)},
		"replayed later": {hookSecret, "9999999999", d.body},
	} {
		if err := Verify(tc.secret, tc.ts, sig, tc.body); err == nil {
			t.Errorf("%s: the signature still verifies", name)
		}
	}
	if bytes.Contains(d.body, []byte(hookSecret)) || strings.Contains(f.log.String(), hookSecret) {
		t.Error("the secret is in the body or the log")
	}
}

// TestSlackFormat: format "slack" sends {"text": …} alone, one line saying
// what happened, with Slack's markup characters escaped.
func TestSlackFormat(t *testing.T) {
	rcv := newReceiver(t, 0)
	h := hook("chat", rcv.srv.URL)
	h.Format = schema.WebhookFormatSlack
	f := newFixture(t, t.TempDir(), h)
	st := campaignState()
	f.n.State(st)
	fail(st, "migration.b", reconcile.StepDefine, "define migration.b: <domain> refused & rolled back", t0.Add(time.Minute))
	f.n.State(st)
	eventually(t, "a delivery", func() bool { return len(rcv.deliveries()) == 1 })
	d := rcv.deliveries()[0]
	var body map[string]any
	if err := json.Unmarshal(d.body, &body); err != nil {
		t.Fatal(err)
	}
	want := "hyperagent: migration.b failed at define: define migration.b: &lt;domain&gt; refused &amp; rolled back"
	if len(body) != 1 || body["text"] != want {
		t.Errorf("body %s, want {\"text\": %q}", d.body, want)
	}
	if d.header.Get("Content-Type") != "application/json" || d.header.Get(HeaderDelivery) == "" {
		t.Errorf("headers %v", d.header)
	}
}

// TestNoSecretInEvents: a secret that reached an error message (the
// engine redacts them; this is the net under it) is in no event body
// and no log line, and a receiver's failure is logged without the URL,
// which may be a credential.
func TestNoSecretInEvents(t *testing.T) {
	rcv := newReceiver(t, 1)
	secretURL := rcv.srv.URL + "/services/T0/B0/" + hookSecret
	f := newFixture(t, t.TempDir(), hook("ops", secretURL))
	st := campaignState()
	f.n.State(st)
	fail(st, "migration.a", reconcile.StepExport, "export migration.a: login refused for "+hookSecret, t0.Add(time.Minute))
	f.n.State(st)
	eventually(t, "delivered after one failure", func() bool { return len(rcv.deliveries()) == 2 })
	for _, d := range rcv.deliveries() {
		if bytes.Contains(d.body, []byte(hookSecret)) {
			t.Errorf("the body carries the secret: %s", d.body)
		}
		if !bytes.Contains(d.body, []byte(reconcile.Redacted)) {
			t.Errorf("the body does not show the redaction: %s", d.body)
		}
	}
	logs := f.log.String()
	if strings.Contains(logs, hookSecret) || strings.Contains(logs, "/services/") {
		t.Errorf("the log carries the secret or the URL:\n%s", logs)
	}
	if !strings.Contains(logs, "500 Internal Server Error") {
		t.Errorf("the failure is not logged:\n%s", logs)
	}
	_ = filepath.WalkDir(f.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(hookSecret)) || bytes.Contains(b, []byte("/services/")) {
				t.Errorf("%s carries the secret or the URL", p)
			}
		}
		return nil
	})
}

// TestWebhooksRemovedAndAdded: with no webhook nothing is tracked; one
// added later starts from the campaign as it is then (what happened in
// between is not sent); a webhook removed keeps its undelivered events
// in its outbox, and sends them when it is configured again.
func TestWebhooksRemovedAndAdded(t *testing.T) {
	rcv := newReceiver(t, 0)
	dir := t.TempDir()
	f := newFixture(t, dir)
	st := campaignState()
	f.n.State(st)
	define(st, "migration.a", t0.Add(time.Minute))
	f.n.State(st)
	if _, err := os.Stat(filepath.Join(dir, "ledger.json")); !os.IsNotExist(err) {
		t.Errorf("a ledger without webhooks: %v", err)
	}
	f.n.Configure(dir, []*schema.Webhook{hook("ops", rcv.srv.URL)})
	f.n.State(st) // the first look after the webhook came: the baseline
	define(st, "migration.b", t0.Add(2*time.Minute))
	f.n.State(st)
	eventually(t, "b's define delivered", func() bool { return len(rcv.acknowledged(t)) == 1 })
	if ev := rcv.acknowledged(t)[0]; ev.Address != "migration.b" {
		t.Errorf("event %+v, want only b's define", ev)
	}

	rcv.setDown(true)
	fail(st, "migration.a", reconcile.StepDefine, "define migration.a: refused", t0.Add(3*time.Minute))
	f.n.State(st)
	eventually(t, "a refused attempt", func() bool { return len(rcv.deliveries()) >= 2 })
	f.n.Configure(dir, []*schema.Webhook{hook("other", rcv.srv.URL)})
	if files := outboxFiles(t, dir, "ops"); len(files) != 1 {
		t.Fatalf("ops' outbox %v after its removal, want its pending event", files)
	}
	rcv.setDown(false)
	f.n.Configure(dir, []*schema.Webhook{hook("ops", rcv.srv.URL)})
	eventually(t, "the pending event delivered", func() bool { return len(outboxFiles(t, dir, "ops")) == 0 })
	if evs := rcv.acknowledged(t); len(evs) != 2 || evs[1].Type != schema.NotifyFailed {
		t.Errorf("events %+v", evs)
	}
}

// TestSettingsChangeRetriesAtOnce: an event waiting out a long backoff
// is sent at once to a webhook's new URL; a receiver that does not answer
// within the timeout counts as a failure.
func TestSettingsChangeRetriesAtOnce(t *testing.T) {
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer slow.Close()
	defer close(hang)
	good := newReceiver(t, 0)
	dir := t.TempDir()
	n := New(Options{RetryMin: time.Hour, RetryMax: time.Hour, Timeout: 50 * time.Millisecond})
	n.Configure(dir, []*schema.Webhook{hook("ops", slow.URL)})
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); n.Wait() }()
	n.Start(ctx)
	st := campaignState()
	n.State(st)
	define(st, "migration.a", t0.Add(time.Minute))
	n.State(st)
	eventually(t, "the attempt timed out", func() bool { return testutil.ToFloat64(n.m.failures.WithLabelValues("ops")) == 1 })
	n.Configure(dir, []*schema.Webhook{hook("ops", good.srv.URL)})
	eventually(t, "delivered to the new URL before the hour's backoff", func() bool { return len(good.acknowledged(t)) == 1 })
}

// TestRecordWrittenAlone: on a shared store the agent sees each record a
// step writes alone (Record) before it sees the whole state after the
// pass. A define told by Record is queued at once and not again when the
// whole state shows it; a record of another campaign, a deleted one, or
// one seen before any whole state is left to the next whole state, and
// another host's record, older in this host's view, raises nothing.
func TestRecordWrittenAlone(t *testing.T) {
	rcv := newReceiver(t, 0)
	f := newFixture(t, t.TempDir(), hook("ops", rcv.srv.URL))
	st := campaignState()
	define(st, "migration.a", t0)
	f.n.Record(campaign, "migration.a", st.Migrations["migration.a"]) // no whole state yet
	if n := f.queued(); n != 0 {
		t.Fatalf("%d queued before the first whole state, want none (it is the baseline)", n)
	}
	st = campaignState()
	f.n.State(st) // the baseline: nothing done
	define(st, "migration.a", t0.Add(time.Minute))
	f.n.Record(campaign, "migration.a", st.Migrations["migration.a"])
	if n := f.queued(); n != 1 {
		t.Fatalf("%d queued after the define's record write, want 1 at once", n)
	}
	other := st.Clone()
	define(other, "migration.b", t0.Add(2*time.Minute))
	f.n.Record("another-campaign", "migration.b", other.Migrations["migration.b"])
	f.n.Record(campaign, "migration.b", nil)
	f.n.State(st) // after the pass: the same define, and b as this host last read it
	if n := f.queued(); n != 1 {
		t.Errorf("%d queued after the whole state, want still 1 (the define was told)", n)
	}
	eventually(t, "the define delivered", func() bool { return len(rcv.acknowledged(t)) == 1 })
	time.Sleep(50 * time.Millisecond)
	if evs := rcv.acknowledged(t); len(evs) != 1 || evs[0].Address != "migration.a" || evs[0].Type != schema.NotifyMigrated {
		t.Errorf("events %+v, want migration.a's define once", evs)
	}
}
