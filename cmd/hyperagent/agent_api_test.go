package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/agent"
	"github.com/hypersdk/hyperagent/docs"
	"github.com/hypersdk/hyperagent/plugins/worker"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/jsondoc"
)

// apiSecret is the value of a sensitive variable the fakes get as their
// token; the fake source quotes it in an export error. No answer of the
// API may carry it.
const apiSecret = "tok-9f8e7d6c5b4a3210"

// apiRepo is a repo of fakes holding apiSecret: db, then web["a"] and
// web["b"] which depend on it, and bad, whose export always fails with an
// error quoting the secret. Passes run only when something asks (no file
// events, an hour's resync and backoff).
func apiRepo(t *testing.T, agentBlock string) string {
	t.Helper()
	dir := t.TempDir()
	fakes := filepath.Join(dir, "fakes")
	hcl := fmt.Sprintf(`
variable "tok" {
  sensitive = true
  default   = %[2]q
}
source "fake" "src" {
  dir   = %[1]q
  token = var.tok
}
converter "fake" "conv" {
  dir    = %[1]q
  rounds = 1
  token  = var.tok
}
target "fake" "kvm" {
  dir = %[1]q
}
migration "db" {
  source    = source.fake.src
  converter = converter.fake.conv
  target    = target.fake.kvm
  vm        = "/DC1/vm/db"
  export { dir = %[3]q }
}
migration "web" {
  for_each   = toset(["a", "b"])
  source     = source.fake.src
  converter  = converter.fake.conv
  target     = target.fake.kvm
  vm         = "/DC1/vm/web-${each.key}"
  export { dir = %[3]q }
  depends_on = [migration.db]
}
migration "bad" {
  source    = source.fake.src
  converter = converter.fake.conv
  target    = target.fake.kvm
  vm        = "/DC1/vm/bad"
  export { dir = %[3]q }
}
%[4]s`, fakes, apiSecret, filepath.Join(dir, "exports"), agentBlock)
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	setVMs(t, dir, `{"/DC1/vm/bad": {"fail_export": "login refused for token `+apiSecret+`"}}`)
	return dir
}

const onDemandAgent = `
agent {
  auto_apply = true
  interval   = "1h"
  retry_min  = "1h"
  retry_max  = "2h"
}
`

// apiConn talks to the status API and checks that no answer carries
// the secret.
type apiConn struct {
	t     *testing.T
	hc    *http.Client
	base  string
	token string
}

func unixAPI(t *testing.T, sock string) *apiConn {
	return &apiConn{t: t, base: "http://localhost", hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}}
}

// call sends a request and returns the answer's code and body.
func (c *apiConn) call(method, path, body string) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	var resp *http.Response
	for i := 0; ; i++ { // the agent may still be starting
		if resp, err = c.hc.Do(req); err == nil || i > 200 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if bytes.Contains(b, []byte(apiSecret)) {
		c.t.Errorf("%s %s: the answer carries the secret:\n%s", method, path, b)
	}
	if ref := apiSchema(method, path, resp.StatusCode); ref != "" {
		if err := docs.Validate(ref, b); err != nil {
			c.t.Errorf("%s %s: %v\n%s", method, path, err, b)
		}
	}
	if resp.StatusCode >= 400 && path != "/metrics" {
		var e agent.APIError
		if json.Unmarshal(b, &e) != nil || e.Error == "" || e.FormatVersion != agent.APIVersion {
			c.t.Errorf("%s %s: %d with a body that is not a JSON error: %s", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, b
}

// apiSchema is the schema of docs/schema an answer must be valid
// against; "" for /metrics (checked by promtool).
func apiSchema(method, path string, code int) string {
	switch {
	case path == "/metrics":
		return ""
	case code >= 400:
		return "api.json#/$defs/error"
	case path == "/v1/status":
		return "api.json#/$defs/status"
	case path == "/v1/migrations":
		return "api.json#/$defs/migrations"
	case strings.HasPrefix(path, "/v1/migrations/"):
		return "api.json#/$defs/migration"
	case path == "/v1/plan":
		return "plan.json"
	case path == "/v1/reconcile":
		return "api.json#/$defs/accepted"
	case path == "/v1/suspend", path == "/v1/resume":
		return "api.json#/$defs/suspended"
	}
	return "api.json" // one of the answers
}

// json sends a request, wants code, and decodes the answer into out.
func (c *apiConn) json(method, path, body string, code int, out any) {
	c.t.Helper()
	got, b := c.call(method, path, body)
	if got != code {
		c.t.Fatalf("%s %s: %d, want %d: %s", method, path, got, code, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

func (c *apiConn) status() agent.Status {
	c.t.Helper()
	var s agent.Status
	c.json("GET", "/v1/status", "", http.StatusOK, &s)
	return s
}

func (c *apiConn) migration(addr string) agent.MigrationStatus {
	c.t.Helper()
	var r agent.MigrationResponse
	c.json("GET", "/v1/migrations/"+url.PathEscape(addr), "", http.StatusOK, &r)
	return r.Migration
}

// reconcile asks for a pass and waits until one more ended.
func (c *apiConn) reconcile() {
	c.t.Helper()
	n := c.status().Passes
	var acc agent.Accepted
	c.json("POST", "/v1/reconcile", "", http.StatusAccepted, &acc)
	eventually(c.t, "the pass asked for", func() bool { return c.status().Passes > n })
}

// TestAgentAPI drives a running agent (the real binary, fakes for
// plugins) through its API alone: passes only on demand, the campaign's
// counts, waves, failures and converters, suspend and resume recorded in
// state as `agent suspend` does, the plan, the metrics (checked by
// promtool), the socket's mode and group, and the CLI's view of it all;
// no answer ever carries the secret.
func TestAgentAPI(t *testing.T) {
	dir := apiRepo(t, onDemandAgent)
	a := startAgent(t, dir, []string{"HYPERAGENT_AGENT_NO_EVENTS=1"})
	c := unixAPI(t, a.sock)
	eventually(t, "the first pass", func() bool { return c.status().Passes >= 1 })

	fi, err := os.Stat(a.sock)
	if err != nil {
		t.Fatal(err)
	}
	if gid := int(fi.Sys().(*syscall.Stat_t).Gid); fi.Mode().Perm() != 0o660 || gid != os.Getegid() {
		t.Errorf("socket mode %v group %d, want 0660 and the agent's group %d", fi.Mode().Perm(), gid, os.Getegid())
	}

	// Nothing runs a pass but a request: the resync is an hour away.
	s := c.status()
	time.Sleep(300 * time.Millisecond)
	if got := c.status().Passes; got != s.Passes {
		t.Fatalf("%d passes ran without being asked", got-s.Passes)
	}

	// Suspend web["a"] through the API: recorded in state, a pass follows.
	var sr agent.SuspendResponse
	c.json("POST", "/v1/suspend", `{"addresses": ["migration.web[\"a\"]"]}`, http.StatusOK, &sr)
	if sr.Done != "suspended" || len(sr.Addresses) != 1 {
		t.Errorf("suspend answered %+v", sr)
	}
	if ms := loadState(t, dir).Migrations[`migration.web["a"]`]; ms == nil || ms.Suspended == nil {
		t.Fatal("the suspension is not in the state")
	}
	eventually(t, "the pass the suspension triggered", func() bool { return c.status().Passes > s.Passes })

	for i := 0; !defined(loadState(t, dir), "migration.db", `migration.web["b"]`); i++ {
		if i > 20 {
			t.Fatalf("not converged after %d passes: %+v", i, c.status())
		}
		c.reconcile()
	}
	c.reconcile()
	s = c.status()
	if s.FormatVersion != agent.StatusVersion || !s.Ready || !s.AutoApply || s.Version == "" {
		t.Errorf("status %+v", s)
	}
	if s.Phases[reconcile.PhaseDefined] != 2 || s.Phases[reconcile.PhasePending] != 2 || s.Suspended != 1 {
		t.Errorf("phases %v, %d suspended; want 2 defined, 2 pending (web[\"a\"] suspended, bad failing)", s.Phases, s.Suspended)
	}
	if len(s.Converters) != 1 || s.Converters[0].Name != "converter.fake.conv" || !s.Converters[0].Known || !s.Converters[0].Live {
		t.Errorf("converters %+v", s.Converters)
	}
	if len(s.Retrying) != 1 || s.Retrying[0].Address != "migration.bad" || s.Retrying[0].Next == nil {
		t.Errorf("retrying %+v, want migration.bad held", s.Retrying)
	}

	var list agent.MigrationsResponse
	c.json("GET", "/v1/migrations", "", http.StatusOK, &list)
	if !list.Planned || len(list.Migrations) != 4 {
		t.Fatalf("migrations %+v", list)
	}
	want := map[string]struct {
		phase reconcile.Phase
		wave  int
	}{"migration.bad": {reconcile.PhasePending, 0}, "migration.db": {reconcile.PhaseDefined, 0},
		`migration.web["a"]`: {reconcile.PhasePending, 1}, `migration.web["b"]`: {reconcile.PhaseDefined, 1}}
	for _, m := range list.Migrations {
		if w := want[m.Address]; m.Phase != w.phase || m.Wave != w.wave {
			t.Errorf("%s: phase %s wave %d, want %s wave %d", m.Address, m.Phase, m.Wave, w.phase, w.wave)
		}
	}
	bad := c.migration("migration.bad")
	if bad.LastError == nil || bad.LastError.Step != reconcile.StepExport || !strings.Contains(bad.LastError.Message, "(sensitive value)") ||
		bad.Retry == nil || bad.StepState != "failed" {
		t.Errorf("migration.bad: %+v (last error %+v)", bad, bad.LastError)
	}
	if wa := c.migration(`migration.web["a"]`); !wa.Suspended || wa.Action != reconcile.ActionCreate {
		t.Errorf(`migration.web["a"]: %+v`, wa)
	}
	if db := c.migration("migration.db"); db.Attempt != 1 || db.JobID == "" || db.Step != reconcile.StepDefine || db.StepState != "done" {
		t.Errorf("migration.db: %+v", db)
	}
	c.json("GET", "/v1/migrations/migration.nope", "", http.StatusNotFound, nil)
	c.json("GET", "/v1/migrations/web", "", http.StatusBadRequest, nil)

	// The plan is show -json PLANFILE's document.
	_, pb := c.call("GET", "/v1/plan", "")
	var p jsondoc.Plan
	if err := json.Unmarshal(pb, &p); err != nil || p.FormatVersion != jsondoc.FormatVersion || len(p.Changes) != 4 ||
		p.Changes[0].Address != "migration.bad" || p.HyperagentVersion == "" {
		t.Errorf("plan: %v %+v", err, p)
	}

	// Refusals are recorded nowhere and say why.
	c.json("POST", "/v1/resume", `{"addresses": ["migration.db"]}`, http.StatusConflict, nil)
	c.json("POST", "/v1/suspend", `{"addresses": ["migration.nope"]}`, http.StatusConflict, nil)

	// The whole campaign, then back.
	c.json("POST", "/v1/suspend", `{"all": true}`, http.StatusOK, &sr)
	if loadState(t, dir).SuspendedAll == nil {
		t.Error("suspend all is not in the state")
	}
	c.json("POST", "/v1/resume", `{"addresses": ["migration.db"]}`, http.StatusConflict, nil) // resume it with -all
	c.json("POST", "/v1/resume", `{"all": true}`, http.StatusOK, &sr)
	if st := loadState(t, dir); st.SuspendedAll != nil || st.Migrations[`migration.web["a"]`].Suspended != nil {
		t.Error("resume all left a suspension in the state")
	}
	for i := 0; !defined(loadState(t, dir), `migration.web["a"]`); i++ {
		if i > 20 {
			t.Fatal(`migration.web["a"] not defined after its resumption`)
		}
		c.reconcile()
	}
	c.reconcile() // one whole pass after the state said so

	// A pass that waits for the lock someone holds: its wait is measured.
	store, err := reconcile.OpenStore(filepath.Join(dir, ".hyperagent"))
	if err != nil {
		t.Fatal(err)
	}
	// A pass of the agent's own (a retry, a watch) may hold it right now.
	eventually(t, "the test's lock", func() bool {
		_, err := store.Lock("test holds the lock")
		return err == nil
	})
	n := c.status().Passes
	c.json("POST", "/v1/reconcile", "", http.StatusAccepted, nil)
	eventually(t, "the pass waiting for the lock", func() bool { return strings.Contains(a.stderr.String(), "test holds the lock") })
	time.Sleep(300 * time.Millisecond)
	if err := store.Unlock(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pass that waited", func() bool { return c.status().Passes > n })
	// A pass that held the lock before the test took it may be what
	// moved the count on: wait for the waiting pass's figure itself.
	eventually(t, "the lock wait recorded", func() bool {
		_, b := c.call("GET", "/metrics", "")
		for _, m := range metricLine.FindAllStringSubmatch(string(b), -1) {
			if v, err := strconv.ParseFloat(m[2], 64); err == nil && m[1] == "hyperagent_lock_wait_seconds_sum" {
				return v >= 0.3
			}
		}
		return false
	})

	got := checkMetrics(t, c, map[string]float64{
		`hyperagent_migrations{phase="defined"}`:                                    3,
		`hyperagent_migrations{phase="pending"}`:                                    1,
		`hyperagent_step_failures_total{step="export"}`:                             1,
		`hyperagent_step_failures_total{step="define"}`:                             0,
		`hyperagent_converter_up{converter="converter.fake.conv"}`:                  1,
		`hyperagent_converter_jobs{converter="converter.fake.conv",state="queued"}`: 0,
	})
	if w := got["hyperagent_lock_wait_seconds_sum"]; w < 0.3 {
		t.Errorf("lock wait %v s, want at least the 0.3 s the lock was held after the pass began waiting", w)
	}
	if got[`hyperagent_pass_duration_seconds_count{outcome="ok"}`] < 5 {
		t.Errorf("pass count %v", got[`hyperagent_pass_duration_seconds_count{outcome="ok"}`])
	}

	// The CLI's view of the same agent.
	ctx := context.Background()
	r := runCLI(t, ctx, "", false, "status", "-config", dir, "-listen", "unix:"+a.sock)
	r.want(t, exitOK, "Migrations (4): 3 defined, 1 pending", "converter.fake.conv: live", "Failed:",
		"migration.bad  export failed", "login refused for token (sensitive value)")
	r.lacks(t, apiSecret, "Waiting:")
	r = runCLI(t, ctx, "", false, "status", "-json", "-config", dir, "-listen", "unix:"+a.sock)
	r.want(t, exitOK)
	checkSchema(t, "status.json", r.stdout)
	var rep statusReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Source != "agent" || len(rep.Migrations) != 4 || rep.Status.Passes < 2 {
		t.Errorf("status -json: %v %+v", err, rep)
	}
	wctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	r = runCLI(t, wctx, "", false, "status", "-watch", "-interval=100ms", "-config", dir, "-listen", "unix:"+a.sock)
	cancel()
	r.want(t, exitOK)
	if n := strings.Count(r.stdout, "\n---\n"); n < 2 {
		t.Errorf("-watch refreshed %d times in 1.5 s at 100 ms:\n%s", n, r.stdout)
	}

	if code := a.stopAndWait(t); code != 0 {
		t.Errorf("the agent exited %d:\n%s", code, a.stderr.String())
	}
	if strings.Contains(a.stderr.String(), apiSecret) {
		t.Error("the agent's log carries the secret")
	}
	// No agent: it says so and shows the state.
	r = runCLI(t, ctx, "", false, "status", "-config", dir, "-listen", "unix:"+a.sock)
	r.want(t, exitOK, "No agent is running: no agent answers on unix:", "What the state in", "Migrations (4)",
		`migration.web["a"]  defined`, "migration.bad  export started; last error", "(sensitive value)")
	r.lacks(t, apiSecret)
}

// metricLine is one sample of Prometheus' text format.
var metricLine = regexp.MustCompile(`(?m)^([a-z_]+(?:\{[^}]*\})?) (\S+)$`)

// checkMetrics scrapes /metrics, has promtool check it (its lint of names
// and units included; any problem fails the test), and compares samples.
func checkMetrics(t *testing.T, c *apiConn, want map[string]float64) map[string]float64 {
	t.Helper()
	code, b := c.call("GET", "/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d: %s", code, b)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not installed (Debian's prometheus package; .ci/setup installs it): %v", err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	got := map[string]float64{}
	for _, m := range metricLine.FindAllStringSubmatch(string(b), -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err == nil {
			got[m[1]] = v
		}
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for _, name := range []string{"hyperagent_build_info", "hyperagent_pass_duration_seconds_count", "hyperagent_lock_wait_seconds_count",
		"hyperagent_exported_bytes_total", "hyperagent_converted_bytes_total", "hyperagent_last_pass_timestamp_seconds"} {
		if !strings.Contains(string(b), "\n"+name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	return got
}

// ownAddress is a non-loopback IPv4 address of this machine, or nil.
func ownAddress() net.IP {
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				return ipn.IP
			}
		}
	}
	return nil
}

// TestAgentAPITokenOffLoopback: on this machine's own non-loopback
// address the agent refuses to serve without a token file; with one,
// requests without the token or with a wrong one get 401 (and trigger
// nothing), the right one is served, and `status` sends the token of
// the configuration.
func TestAgentAPITokenOffLoopback(t *testing.T) {
	ip := ownAddress()
	if ip == nil {
		t.Skip("this machine has no non-loopback address; the token check is tested through the handler (agent.TestTokenCheckedByHandler)")
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	spec := "tcp:" + addr

	dir := apiRepo(t, onDemandAgent)
	a := startAgent(t, dir, []string{"HYPERAGENT_AGENT_NO_EVENTS=1"}, "-listen="+spec)
	// Its stderr is read by another goroutine, which Wait would race.
	eventually(t, "the agent refusing a non-loopback address without a token", func() bool {
		return strings.Contains(a.stderr.String(), "requires a bearer token")
	})
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the agent serves a non-loopback address without a token")
	}
	if code := a.cmd.ProcessState.ExitCode(); code != exitError {
		t.Fatalf("exit %d, want 1 saying a token is required:\n%s", code, a.stderr.String())
	}

	secrets := t.TempDir()
	token := filepath.Join(secrets, "token")
	if err := os.WriteFile(token, []byte("3b1f0c9e8d7a6b5c4d3e2f1a0b9c8d7e\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(secrets, "wrong")
	if err := os.WriteFile(wrong, []byte("00000000000000000000000000000000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rewrite(t, dir, `retry_max  = "2h"`, `retry_max  = "2h"
  status_token_file = "`+token+`"`)
	a = startAgent(t, dir, []string{"HYPERAGENT_AGENT_NO_EVENTS=1"}, "-listen="+spec)
	c := &apiConn{t: t, base: "http://" + addr, hc: &http.Client{Timeout: 30 * time.Second}}
	c.token = "3b1f0c9e8d7a6b5c4d3e2f1a0b9c8d7e"
	eventually(t, "the first pass", func() bool { return c.status().Passes >= 1 })
	passes := c.status().Passes
	for _, tok := range []string{"", "00000000000000000000000000000000", "3b1f0c9e"} {
		c.token = tok
		for _, r := range [][2]string{{"GET", "/v1/status"}, {"GET", "/v1/migrations"}, {"GET", "/metrics"}, {"POST", "/v1/reconcile"}} {
			if code, b := c.call(r[0], r[1], ""); code != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q: %d, want 401: %s", r[0], r[1], tok, code, b)
			}
		}
	}
	c.token = "3b1f0c9e8d7a6b5c4d3e2f1a0b9c8d7e"
	if got := c.status().Passes; got != passes {
		t.Errorf("an unauthorized POST /v1/reconcile ran %d passes", got-passes)
	}
	c.reconcile()

	ctx := context.Background()
	runCLI(t, ctx, "", false, "status", "-config", dir, "-listen", spec).want(t, exitOK, "Migrations (4)")
	r := runCLI(t, ctx, "", false, "status", "-config", dir, "-listen", spec, "-token-file", wrong)
	r.want(t, exitError)
	r.stderrHas(t, "401 Unauthorized")
	if code := a.stopAndWait(t); code != 0 {
		t.Errorf("the agent exited %d:\n%s", code, a.stderr.String())
	}
}

// TestAgentAPIRealWorker: a files source exporting an OVA holding a
// 512 MiB disk (unpacking it reports progress), the hyper2kvm converter and the built-in worker
// (qemu-img) on a real workflow directory. The API shows the export's
// bytes moving with a rate and an ETA, then the conversion's (the disk
// holds 32 MiB of data, which the worker's rate limit makes a conversion
// of about two seconds), from the progress file the worker publishes, as
// `hyperagent status` shows it too, then the migration defined; the worker's heartbeat makes the converter
// live, in the status and the metrics, and the bytes exported and
// converted are counted.
func TestAgentAPIRealWorker(t *testing.T) {
	work := t.TempDir()
	for _, d := range []string{"nas", "wf", "out", "exports", "fakes", "repo"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const size = 512 << 20
	writeSparseOVA(t, filepath.Join(work, "nas", "big.ova"), "big-disk1.raw", size)
	w, err := worker.New(worker.Config{WorkflowDir: filepath.Join(work, "wf"), InputRoots: []string{filepath.Join(work, "nas"), filepath.Join(work, "exports")},
		OutputRoots: []string{filepath.Join(work, "out")}, Rescan: 200 * time.Millisecond, HeartbeatInterval: time.Second,
		RateLimit: 16 << 20, ProgressInterval: 50 * time.Millisecond, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWorker := context.WithCancel(context.Background())
	workerDone := make(chan error, 1)
	go func() { workerDone <- w.Run(wctx) }()
	defer func() { stopWorker(); <-workerDone }()
	<-w.Ready()

	repo := filepath.Join(work, "repo")
	hcl := fmt.Sprintf(`
agent {
  auto_apply = true
  interval   = "200ms"
}
source "files" "nas" {
  dir = "%[1]s/nas"
}
converter "hyper2kvm" "w" {
  workflow_dir = "%[1]s/wf"
  output_dir   = "%[1]s/out"
  timeout      = "5m"
}
target "fake" "kvm" {
  dir = "%[1]s/fakes"
}
migration "big" {
  source    = source.files.nas
  converter = converter.hyper2kvm.w
  target    = target.fake.kvm
  vm        = "big.ova"
  export { dir = "%[1]s/exports" }
  convert {
    fix { enabled = false }
  }
}
`, work)
	if err := os.WriteFile(filepath.Join(repo, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, repo, nil)
	c := unixAPI(t, a.sock)

	var exporting, converted []agent.ByteProgress
	var statusLine string
	var converting *agent.MigrationStatus
	var list agent.MigrationsResponse
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not defined in 2 minutes: %+v", list)
		}
		list = agent.MigrationsResponse{} // decoding into the old one would reuse its pointers
		c.json("GET", "/v1/migrations", "", http.StatusOK, &list)
		if len(list.Migrations) != 1 {
			continue
		}
		m := list.Migrations[0]
		if m.Step == reconcile.StepExport && m.StepState == "running" && m.Progress != nil && m.Progress.Bytes != nil {
			exporting = append(exporting, *m.Progress.Bytes)
		}
		if (m.Phase == reconcile.PhaseQueued || m.Phase == reconcile.PhaseConverting) && m.Progress != nil {
			if converting == nil {
				converting = &m
			}
			if b := m.Progress.Bytes; b != nil {
				converted = append(converted, *b)
				if m.Phase == reconcile.PhaseConverting && b.RateBytesPerSecond > 0 && statusLine == "" {
					// What `hyperagent status` makes of it, while it runs.
					r := runCLI(t, context.Background(), "", false, "status", "-config", repo, "-listen", "unix:"+a.sock)
					statusLine = r.stdout
				}
			}
		}
		if m.Phase == reconcile.PhaseDefined {
			break
		}
	}
	moving := map[int64]bool{}
	rated := false
	for _, b := range exporting {
		if b.Total < size {
			continue // before the disk's first report: the descriptor alone
		}
		if b.Total > size+1<<20 { // the disk and the descriptor
			t.Errorf("export progress %+v: total %d, want the OVA's members, %d and a few", b, b.Total, size)
		}
		if b.Done > 0 && b.Done < b.Total {
			moving[b.Done] = true
		}
		if b.RateBytesPerSecond > 0 && b.ETASeconds != nil && b.Done < b.Total {
			rated = true
		}
	}
	if len(moving) < 2 || !rated {
		t.Errorf("the export's progress did not show moving with a rate and an ETA: %d distinct partial values, rate seen %v, in %d samples",
			len(moving), rated, len(exporting))
	}
	if converting == nil {
		t.Error("never saw the conversion under way")
	} else if p := converting.Progress; p.ElapsedSeconds < 0 || p.Since.IsZero() || converting.JobID == "" || converting.Attempt != 1 {
		t.Errorf("conversion %+v, progress %+v: want the time since submission, job and attempt", converting, p)
	}
	moving, rated = map[int64]bool{}, false
	var last int64
	for _, b := range converted {
		if b.Total != size || b.Done < last || b.Done > b.Total {
			t.Errorf("conversion progress %+v after %d done: want growing within the disk's %d bytes", b, last, size)
		}
		if b.Done > 0 && b.Done < b.Total {
			moving[b.Done] = true
		}
		if b.RateBytesPerSecond > 0 && b.ETASeconds != nil && b.Done < b.Total {
			rated = true
		}
		last = b.Done
	}
	t.Logf("conversion: %d samples, %d distinct partial values", len(converted), len(moving))
	if !regexp.MustCompile(`migration\.big  converting \(job \S+, attempt 1\): [0-9]+% \([0-9.]+ [KMG]?i?B of 512\.0 MiB\), [0-9.]+ [KMG]?i?B/s`).MatchString(statusLine) {
		t.Errorf("hyperagent status during the conversion shows no bytes and rate for it:\n%s", statusLine)
	}
	if len(moving) < 2 || !rated {
		t.Errorf("the conversion's progress did not show moving with a rate and an ETA: %d distinct partial values, rate seen %v, in %d samples",
			len(moving), rated, len(converted))
	}

	// The pass that defined it records what it collected when it ends.
	s := c.status()
	eventually(t, "the pass after the definition", func() bool { return c.status().Passes > s.Passes })
	s = c.status()
	if len(s.Converters) != 1 || !s.Converters[0].Known || !s.Converters[0].Live || !strings.Contains(s.Converters[0].Detail, "worker on") {
		t.Errorf("converters %+v: want converter.hyper2kvm.w live from the worker's heartbeat", s.Converters)
	}
	got := checkMetrics(t, c, map[string]float64{
		`hyperagent_converter_up{converter="converter.hyper2kvm.w"}`: 1,
		`hyperagent_migrations{phase="defined"}`:                     1,
	})
	if v := got[`hyperagent_exported_bytes_total`]; v < size || v > size+1<<20 {
		t.Errorf("exported bytes %v, want the OVA's members (%d and a few)", v, size)
	}
	var outputs int64
	for _, o := range loadState(t, repo).Migrations["migration.big"].Outputs {
		outputs += o.Size
	}
	if v := got[`hyperagent_converted_bytes_total`]; outputs == 0 || v != float64(outputs) {
		t.Errorf("converted bytes %v, want the outputs' %d", v, outputs)
	}
	if code := a.stopAndWait(t); code != 0 {
		t.Errorf("the agent exited %d:\n%s", code, a.stderr.String())
	}
}

// writeSparseOVA writes an OVA of one VM whose raw disk of size bytes is
// a hole in the archive but for 256 KiB of pseudo-random data in every
// 4 MiB: cheap to make, as long to unpack as a real one, and with data
// for a conversion to write.
func writeSparseOVA(t testing.TB, path, disk string, size int64) {
	t.Helper()
	ovf := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References><File ovf:href="%[1]s" ovf:id="file1"/></References>
  <DiskSection><Info>Virtual disk information</Info>
    <Disk ovf:capacity="%[2]d" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1"/>
  </DiskSection>
  <VirtualSystem ovf:id="big"><Info>A virtual machine</Info><Name>big</Name>
    <OperatingSystemSection ovf:id="80" vmw:osType="rhel9_64Guest"><Info>The OS</Info></OperatingSystemSection>
    <VirtualHardwareSection><Info>Virtual hardware requirements</Info>
      <System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID><vssd:VirtualSystemType>vmx-19</vssd:VirtualSystemType></System>
      <Item><rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits><rasd:ElementName>1 virtual CPU(s)</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>memory</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>256</rasd:VirtualQuantity></Item>
      <Item><rasd:Address>0</rasd:Address><rasd:ElementName>SCSI controller 0</rasd:ElementName><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:ElementName>Hard disk 1</rasd:ElementName><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>10</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
`, disk, size>>20)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	if err := tw.WriteHeader(&tar.Header{Name: "big.ovf", Mode: 0o644, Size: int64(len(ovf)), Format: tar.FormatUSTAR}); err == nil {
		_, err = tw.Write([]byte(ovf))
	}
	if err == nil {
		err = tw.WriteHeader(&tar.Header{Name: disk, Mode: 0o644, Size: size, Format: tar.FormatUSTAR})
	}
	if err == nil {
		err = tw.Flush() // the header is out; the body is left to the hole below
	}
	if err != nil && !strings.Contains(err.Error(), "missed writing") {
		t.Fatal(err)
	}
	// The body: size zeros (a multiple of 512, so no padding), then the
	// two zero blocks that end an archive.
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		t.Fatal(err)
	}
	if size%512 != 0 {
		t.Fatal("size must be a multiple of 512")
	}
	if err := f.Truncate(end + size + 1024); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(uint64(size), 1))
	chunk := make([]byte, 256<<10)
	for off := int64(0); off+int64(len(chunk)) <= size; off += 4 << 20 {
		for i := range chunk {
			chunk[i] = byte(r.Uint32())
		}
		if _, err := f.WriteAt(chunk, end+off); err != nil {
			t.Fatal(err)
		}
	}
}
