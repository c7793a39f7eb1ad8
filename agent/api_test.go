package agent

import (
	"crypto/sha256"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/docs"
	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
)

const testToken = "0123456789abcdef0123456789abcdef"

// TestTokenCheckedByHandler: behind a token, every endpoint answers 401
// (JSON, with WWW-Authenticate) to a request from a non-loopback peer
// without the token or with a wrong one, and serves the right one.
func TestTokenCheckedByHandler(t *testing.T) {
	a := New(Options{})
	sum := sha256.Sum256([]byte(testToken))
	h := a.handler(sum[:])
	for name, tc := range map[string]struct {
		auth string
		code int
	}{
		"none":            {"", http.StatusUnauthorized},
		"wrong":           {"Bearer " + strings.Repeat("x", len(testToken)), http.StatusUnauthorized},
		"prefix":          {"Bearer " + testToken[:10], http.StatusUnauthorized},
		"other scheme":    {"Basic " + testToken, http.StatusUnauthorized},
		"right":           {"Bearer " + testToken, http.StatusOK},
		"scheme any case": {"bearer " + testToken, http.StatusOK},
	} {
		t.Run(name, func(t *testing.T) {
			for _, path := range []string{"/v1/status", "/v1/migrations", "/metrics"} {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.RemoteAddr = "192.0.2.10:40000"
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != tc.code {
					t.Fatalf("%s: %d, want %d: %s", path, rec.Code, tc.code, rec.Body)
				}
				// A fresh agent's answers, before any pass, are valid
				// against the API's schema too (no null lists).
				if ref := map[string]string{"/v1/status": "api.json#/$defs/status", "/v1/migrations": "api.json#/$defs/migrations"}[path]; ref != "" && tc.code == http.StatusOK {
					if err := docs.Validate(ref, rec.Body.Bytes()); err != nil {
						t.Errorf("%s: %v\n%s", path, err, rec.Body)
					}
				}
				if tc.code == http.StatusUnauthorized {
					var e APIError
					if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || e.FormatVersion != APIVersion {
						t.Errorf("%s: body %q is not a JSON error", path, rec.Body)
					}
					if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("%s: no WWW-Authenticate: Bearer", path)
					}
				}
			}
		})
	}
}

// TestErrorsAreJSON: unknown paths, wrong methods and bad input answer
// JSON errors with their status codes.
func TestErrorsAreJSON(t *testing.T) {
	h := New(Options{}).handler(nil)
	for name, tc := range map[string]struct {
		method, path, body string
		code               int
	}{
		"unknown path":          {"GET", "/v2/status", "", http.StatusNotFound},
		"reconcile by GET":      {"GET", "/v1/reconcile", "", http.StatusMethodNotAllowed},
		"status by POST":        {"POST", "/v1/status", "", http.StatusMethodNotAllowed},
		"bad address":           {"GET", "/v1/migrations/web", "", http.StatusBadRequest},
		"before the first plan": {"GET", "/v1/migrations/migration.web", "", http.StatusNotFound},
		"no plan":               {"GET", "/v1/plan", "", http.StatusNotFound},
		"suspend: bad body":     {"POST", "/v1/suspend", "{", http.StatusBadRequest},
		"suspend: neither":      {"POST", "/v1/suspend", "{}", http.StatusBadRequest},
		"suspend: both":         {"POST", "/v1/suspend", `{"all": true, "addresses": ["migration.a"]}`, http.StatusBadRequest},
		"suspend: unknown key":  {"POST", "/v1/suspend", `{"address": "migration.a"}`, http.StatusBadRequest},
		"suspend: no config":    {"POST", "/v1/suspend", `{"all": true}`, http.StatusServiceUnavailable},
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
			var e APIError
			if rec.Code != tc.code || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Fatalf("%d %q, want %d and a JSON error", rec.Code, rec.Body, tc.code)
			}
			if err := docs.Validate("api.json#/$defs/error", rec.Body.Bytes()); err != nil {
				t.Error(err)
			}
			if rec.Code == http.StatusMethodNotAllowed && rec.Header().Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
}

func writeToken(t *testing.T, mode os.FileMode, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(token+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestListenTCPNeedsTokenOffLoopback: binding every address (0.0.0.0)
// is refused without a token file and served with one; loopback needs
// none; a token file others can read, or a short token, is refused.
func TestListenTCPNeedsTokenOffLoopback(t *testing.T) {
	if _, err := Listen("tcp:0.0.0.0:0", ""); err == nil || !strings.Contains(err.Error(), "status_token_file") {
		t.Fatalf("0.0.0.0 without a token: %v, want a refusal naming status_token_file", err)
	}
	l, err := Listen("tcp:0.0.0.0:0", writeToken(t, 0o600, testToken))
	if err != nil {
		t.Fatal(err)
	}
	if !l.RequiresToken() {
		t.Error("served without requiring the token")
	}
	l.Close()
	l, err = Listen("tcp:127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	if l.RequiresToken() {
		t.Error("loopback without a token file requires one")
	}
	l.Close()
	if _, err := Listen("tcp:0.0.0.0:0", writeToken(t, 0o644, testToken)); err == nil || !strings.Contains(err.Error(), "others may read it") {
		t.Errorf("world-readable token file: %v", err)
	}
	if _, err := Listen("tcp:0.0.0.0:0", writeToken(t, 0o600, "short")); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("short token: %v (it must be refused without being quoted)", err)
	}
	for _, bad := range []string{"tcp:nohostport", "udp:x:1", "unix:", "agent.sock"} {
		if _, err := Listen(bad, ""); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestListenUnixModeAndGroup: in a setgid directory of another group the
// socket still gets mode 0660 and the process's group; a live socket is
// not taken over, a stale one is replaced, and closing removes it.
func TestListenUnixModeAndGroup(t *testing.T) {
	dir := t.TempDir()
	other := otherGroup(t)
	if err := os.Chown(dir, -1, other); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o2775); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "agent.sock")
	l, err := Listen("unix:"+path, "")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	gid := int(fi.Sys().(*syscall.Stat_t).Gid)
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 || gid != os.Getegid() {
		t.Errorf("socket %v gid %d, want a socket 0660 of gid %d (the directory's is %d)", fi.Mode(), gid, os.Getegid(), other)
	}
	if _, err := Listen("unix:"+path, ""); err == nil || !strings.Contains(err.Error(), "another process serves") {
		t.Errorf("a second listener on a live socket: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
	l.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("the socket outlived its listener: %v", err)
	}
	// A stale socket (its process died): replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	l, err = Listen("unix:"+path, "")
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	l.Close()
}

// otherGroup is a group the process is not running as.
func otherGroup(t *testing.T) int {
	t.Helper()
	for _, name := range []string{"nogroup", "nobody", "daemon", "bin"} {
		g, err := user.LookupGroup(name)
		if err != nil {
			continue
		}
		if id, _ := strconv.Atoi(g.Gid); id != os.Getegid() {
			if os.Getuid() != 0 {
				t.Skip("giving a directory another group needs root")
			}
			return id
		}
	}
	t.Skip("no other group on this machine")
	return 0
}

// TestProgressRateAndETA: bytes add up over items, the rate comes from
// the reports over time, the ETA from the rate and what is left; an
// unknown total gives no ETA, and a conversion no figures at all.
func TestProgressRateAndETA(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	l := newLive(func() time.Time { return now }, func(s string) string { return strings.ReplaceAll(s, "hunter2", "(sensitive value)") })
	sub := now.Add(-time.Minute)
	l.planned(&reconcile.Plan{Changes: []reconcile.Change{
		{Address: "migration.a", Action: reconcile.ActionCreate, Phase: reconcile.PhasePending, Converter: "converter.x.y"},
		{Address: "migration.b", Action: reconcile.ActionCreate, Phase: reconcile.PhaseConverting, Converter: "converter.x.y"},
	}})
	l.record(&reconcile.State{Migrations: map[string]*reconcile.MigrationState{
		"migration.b": {Job: &reconcile.JobRecord{ID: "j1", Attempt: 2, Converter: "converter.x.y", SubmittedAt: &sub}},
	}})
	l.event(reconcile.Event{Address: "migration.a", Step: reconcile.StepExport, Status: "start"})
	var moved int64
	moved += l.progress(plugins.ProgressEvent{Address: "migration.a", Item: "disk-hunter2.vmdk", Done: 0, Total: 1000})
	moved += l.progress(plugins.ProgressEvent{Address: "migration.a", Item: "disk-1.vmdk", Done: 0, Total: 3000})
	now = now.Add(2 * time.Second)
	moved += l.progress(plugins.ProgressEvent{Address: "migration.a", Item: "disk-hunter2.vmdk", Done: 1000, Total: 1000})
	moved += l.progress(plugins.ProgressEvent{Address: "migration.a", Item: "disk-1.vmdk", Done: 1000, Total: 3000})
	if moved != 2000 {
		t.Errorf("moved %d bytes, want 2000", moved)
	}
	ms := l.migrations(nil)
	a := ms[0]
	if a.Step != reconcile.StepExport || a.StepState != "running" || a.Progress == nil || a.Progress.Bytes == nil {
		t.Fatalf("migration.a: %+v", a)
	}
	b := a.Progress.Bytes
	if b.Done != 2000 || b.Total != 4000 || b.RateBytesPerSecond != 1000 || b.ETASeconds == nil || *b.ETASeconds != 2 {
		t.Errorf("bytes %+v (eta %v), want 2000 of 4000 at 1000/s, 2 s left", b, b.ETASeconds)
	}
	for name := range l.byAddr["migration.a"].export.items {
		if strings.Contains(name, "hunter2") {
			t.Errorf("item name %q not redacted", name)
		}
	}
	conv := ms[1]
	if conv.Progress == nil || conv.Progress.Bytes != nil || conv.Progress.ElapsedSeconds != 62 || conv.Attempt != 2 || conv.Step != reconcile.StepAwait {
		t.Errorf("conversion %+v progress %+v: want no figures, 62 s since submitted, attempt 2", conv, conv.Progress)
	}
	// Unknown total: no ETA.
	l.progress(plugins.ProgressEvent{Address: "migration.a", Item: "disk-2.vmdk", Done: 10, Total: -1})
	if b := l.migrations(nil)[0].Progress.Bytes; b.Total != -1 || b.ETASeconds != nil {
		t.Errorf("unknown total: %+v", b)
	}
	// The export ends: the phase moves on, the counts and queues follow.
	l.event(reconcile.Event{Address: "migration.a", Step: reconcile.StepExport, Status: "done"})
	l.event(reconcile.Event{Address: "migration.a", Step: reconcile.StepSubmit, Status: "done"})
	if got := l.phases(); got[reconcile.PhaseQueued] != 1 || got[reconcile.PhaseConverting] != 1 {
		t.Errorf("phases %v", got)
	}
	if q := l.queues()["converter.x.y"]; q != [2]int{1, 1} {
		t.Errorf("queue %v, want 1 queued, 1 processing", q)
	}
}
