package agent

import (
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

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
