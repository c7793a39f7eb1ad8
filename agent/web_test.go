package agent

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hypersdk/hyperagent/agent/webtest"
	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
)

// htmlAddr is a migration address whose for_each key is markup.
const htmlAddr = `migration.web["<img src=x onerror=alert(1)>"]`

// pageAgent is an agent whose last plan holds db (converting), the
// migration with markup in its address (waiting on db), and bad, whose
// export failed with markup in its error.
func pageAgent() *Agent {
	a := New(Options{Version: "v9.9.9-test"})
	a.live.planned(&reconcile.Plan{Changes: []reconcile.Change{
		{Address: "migration.bad", Action: reconcile.ActionCreate, Phase: reconcile.PhasePending, Converter: "converter.fake.c"},
		{Address: "migration.db", Action: reconcile.ActionCreate, Phase: reconcile.PhaseConverting, Converter: "converter.fake.c"},
		{Address: htmlAddr, Action: reconcile.ActionCreate, Phase: reconcile.PhasePending, DependsOn: []string{"migration.db"}},
	}})
	a.live.event(reconcile.Event{Address: "migration.bad", Step: reconcile.StepExport, Status: "start"})
	a.live.event(reconcile.Event{Address: "migration.bad", Step: reconcile.StepExport, Status: "failed",
		Err: errors.New(`vCenter said <script>alert("x")</script>`)})
	return a
}

func get(t *testing.T, h http.Handler, method, target, auth string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = "192.0.2.10:40000"
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestPageTableEscaped: without a token required, GET / is the campaign
// as a table, one row per migration in wave order, every value escaped
// (markup in an address or an error is text), with the counts, under a
// CSP that allows only the page's own inline style and script.
func TestPageTableEscaped(t *testing.T) {
	rec := get(t, pageAgent().handler(nil), http.MethodGet, "/", "")
	body := rec.Body.String()
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, bad := range []string{"<img src=x", `<script>alert`} {
		if strings.Contains(body, bad) {
			t.Errorf("the page carries %q unescaped", bad)
		}
	}
	for _, want := range []string{
		`migration.web[&#34;&lt;img src=x onerror=alert(1)&gt;&#34;]`,
		`vCenter said &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`,
		`<span class="n">1</span> converting`, `<span class="n">2</span> pending`,
		`data-shown="true"`, `v9.9.9-test`, `<noscript><meta http-equiv="refresh" content="5"></noscript>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	rows := regexp.MustCompile(`<tr data-address="([^"]*)"`).FindAllStringSubmatch(body, -1)
	var order []string
	for _, r := range rows {
		order = append(order, r[1])
	}
	if want := []string{"migration.bad", "migration.db", "migration.web[&#34;&lt;img src=x onerror=alert(1)&gt;&#34;]"}; strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("rows %q, want %q (wave 0 before wave 1)", order, want)
	}

	// The CSP names the hashes of exactly the inline style and script.
	csp := rec.Header().Get("Content-Security-Policy")
	for _, tag := range []string{"style", "script"} {
		m := regexp.MustCompile(`(?s)<` + tag + `>(.*?)</` + tag + `>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no inline %s", tag)
		}
		if h := cspHash(m[1]); !strings.Contains(csp, tag+"-src '"+h+"'") {
			t.Errorf("CSP %q does not allow the inline %s (%s)", csp, tag, h)
		}
	}
	if !strings.Contains(csp, "default-src 'none'") || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", rec.Header())
	}
}

// TestPageToken: behind a token, GET / is served without it but carries
// no data (only the form asking for it); with the token it carries the
// table; the API and other paths still need it; POST / is refused.
func TestPageToken(t *testing.T) {
	sum := sha256.Sum256([]byte(testToken))
	h := pageAgent().handler(sum[:])

	for name, auth := range map[string]string{"none": "", "wrong": "Bearer " + strings.Repeat("y", len(testToken))} {
		rec := get(t, h, http.MethodGet, "/", auth)
		body := rec.Body.String()
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", name, rec.Code)
		}
		for _, leak := range []string{"migration.", "converter.fake", "v9.9.9-test", "<table", "http-equiv=\"refresh\""} {
			if strings.Contains(body, leak) {
				t.Errorf("%s: the page without the token carries %q", name, leak)
			}
		}
		if !strings.Contains(body, `data-token-required="true" data-shown="false"`) || !strings.Contains(body, `<section id="auth" class="auth">`) {
			t.Errorf("%s: the page does not ask for the token", name)
		}
	}
	rec := get(t, h, http.MethodGet, "/", "Bearer "+testToken)
	if body := rec.Body.String(); rec.Code != http.StatusOK || !strings.Contains(body, `<tr data-address="migration.db"`) ||
		!strings.Contains(body, `<section id="auth" class="auth" hidden>`) {
		t.Errorf("with the token: %d\n%s", rec.Code, body)
	}
	for _, path := range []string{"/v1/status", "/v1/migrations", "/index.html", "//"} {
		if rec := get(t, h, http.MethodGet, path, ""); rec.Code != http.StatusUnauthorized {
			t.Errorf("%s without the token: %d, want 401", path, rec.Code)
		}
	}
	if rec := get(t, h, http.MethodPost, "/", ""); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", rec.Code)
	}
}

// TestPageRefresh: ?refresh=N sets the period the script and the no-JS
// refresh use; a value out of bounds is a 400.
func TestPageRefresh(t *testing.T) {
	h := pageAgent().handler(nil)
	rec := get(t, h, http.MethodGet, "/?refresh=2", "")
	if body := rec.Body.String(); !strings.Contains(body, `data-refresh="2"`) || !strings.Contains(body, `content="2"`) {
		t.Errorf("refresh=2 not used:\n%s", body)
	}
	for _, bad := range []string{"0", "x", "1.5", "3601"} {
		if rec := get(t, h, http.MethodGet, "/?refresh="+bad, ""); rec.Code != http.StatusBadRequest {
			t.Errorf("refresh=%s: %d, want 400", bad, rec.Code)
		}
	}
}

// TestPageBeforeThePlan: before the first pass planned, the page says so.
func TestPageBeforeThePlan(t *testing.T) {
	rec := get(t, New(Options{}).handler(nil), http.MethodGet, "/", "")
	if !strings.Contains(rec.Body.String(), "No pass has planned yet.") {
		t.Errorf("%s", rec.Body)
	}
}

// clock is a settable clock, safe to read from the server's goroutines.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// progressAgent is an agent whose last plan holds big, exporting 4 GiB
// (0 at first, then 1 GiB two seconds later: 512 MiB/s, 6 s left), and
// stream, exporting an item of unknown size (300 MiB so far), fed as a
// pass feeds them (events, then the source's progress reports).
func progressAgent(clk *clock) *Agent {
	a := New(Options{})
	a.live.now = clk.now
	a.live.planned(&reconcile.Plan{Changes: []reconcile.Change{
		{Address: "migration.big", Action: reconcile.ActionCreate, Phase: reconcile.PhasePending},
		{Address: "migration.stream", Action: reconcile.ActionCreate, Phase: reconcile.PhasePending},
	}})
	for _, addr := range []string{"migration.big", "migration.stream"} {
		a.live.event(reconcile.Event{Address: addr, Step: reconcile.StepExport, Status: "start"})
	}
	a.live.progress(plugins.ProgressEvent{Address: "migration.big", Item: "disk1.vmdk", Done: 0, Total: 4 << 30})
	a.live.progress(plugins.ProgressEvent{Address: "migration.stream", Item: "disk1.vmdk", Done: 0, Total: -1})
	clk.add(2 * time.Second)
	a.live.progress(plugins.ProgressEvent{Address: "migration.big", Item: "disk1.vmdk", Done: 1 << 30, Total: 4 << 30})
	a.live.progress(plugins.ProgressEvent{Address: "migration.stream", Item: "disk1.vmdk", Done: 300 << 20, Total: -1})
	return a
}

// TestPageTableProgress: the table shows an export's bytes as a bar and
// a percentage, with its rate and ETA; an unknown total shows the bytes
// so far and no ETA.
func TestPageTableProgress(t *testing.T) {
	a := progressAgent(&clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)})
	body := get(t, a.handler(nil), http.MethodGet, "/", "").Body.String()
	for _, want := range []string{
		`<progress max="100" value="25">25%</progress><br>25% (1.0 GiB of 4.0 GiB), 2s so far</td>
        <td>512.0 MiB/s</td>
        <td>6s</td>`,
		`<td>300.0 MiB so far (total unknown), 2s</td>
        <td>150.0 MiB/s</td>
        <td></td>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the table lacks\n%s\nin\n%s", want, body)
		}
	}
}

// TestPageProgressInBrowser: in a real browser, the card of an export
// shows its bar, percentage, rate and ETA from the agent's server, and
// they move as the source reports more bytes, without a reload; an
// unknown total gives a striped bar, the bytes so far and no ETA; when
// the export ends the card moves on to exported.
func TestPageProgressInBrowser(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	a := progressAgent(clk)
	srv := httptest.NewServer(a.handler(nil))
	defer srv.Close()
	tab := webtest.Tab(t, webtest.Browser(t))
	webtest.Do(t, tab, "open the page", chromedp.Navigate(srv.URL+"/?refresh=1"))

	const card = `document.querySelector('#board .card[data-address="migration.big"]')`
	shows := func(width, figures string) string {
		return fmt.Sprintf(`!!%[1]s && %[1]s.querySelector('.bar:not(.unknown) > span').style.width === %[2]q && %[1]s.querySelector('.figures').textContent.startsWith(%[3]q)`,
			card, width, figures)
	}
	webtest.Poll(t, tab, "a quarter exported", shows("25%", "25% (1.0 GiB of 4.0 GiB) · 512.0 MiB/s · ETA 6s · 2s so far"))
	if n := webtest.Eval[int](t, tab, `document.querySelectorAll('#board .card').length`); n != 2 {
		t.Errorf("%d cards, want 2", n)
	}
	stream := webtest.Eval[struct {
		Striped bool   `json:"striped"`
		Figures string `json:"figures"`
	}](t, tab, `(() => { const c = document.querySelector('#board .card[data-address="migration.stream"]');
	  return {striped: !!c.querySelector('.bar.unknown'), figures: c.querySelector('.figures').textContent}; })()`)
	if !stream.Striped || stream.Figures != "300.0 MiB so far · 150.0 MiB/s · 2s so far" {
		t.Errorf("migration.stream, total unknown: %+v", stream)
	}

	clk.add(2 * time.Second)
	a.live.progress(plugins.ProgressEvent{Address: "migration.big", Item: "disk1.vmdk", Done: 3 << 30, Total: 4 << 30})
	webtest.Poll(t, tab, "three quarters exported", shows("75%", "75% (3.0 GiB of 4.0 GiB) · 768.0 MiB/s · ETA 1s · 4s so far"))

	a.live.event(reconcile.Event{Address: "migration.big", Step: reconcile.StepExport, Status: "done"})
	webtest.Poll(t, tab, "the export done", card+`.dataset.phase === 'exported' && !`+card+`.querySelector('.bar')`)
}
