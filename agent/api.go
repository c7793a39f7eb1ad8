package agent

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hypersdk/hyperagent/reconcile/jsondoc"
)

// APIVersion is the format_version of every JSON answer of the status
// API (docs/output.md, docs/schema/api.json); the paths carry its major
// version too (/v1/…).
const APIVersion = jsondoc.FormatVersion

// Serve answers the status API on l until ctx ends:
//
//	GET  /v1/status            the agent's Status
//	GET  /v1/migrations        every migration's MigrationStatus
//	GET  /v1/migrations/ADDR   one (ADDR path-escaped)
//	GET  /v1/plan              the last plan, as show -json PLANFILE prints it
//	POST /v1/reconcile         a pass now
//	POST /v1/suspend           hold migrations, recorded in state as `agent suspend` does
//	POST /v1/resume            let them go on
//	GET  /metrics              Prometheus' text format
//	GET  /                     the status page (web.go)
//
// Errors are JSON {"error": …} with a status code. Over TCP with a token
// every request needs "Authorization: Bearer TOKEN", but for the status
// page, which without it carries no data and asks for the token.
func (a *Agent) Serve(ctx context.Context, l *Listener) error {
	srv := &http.Server{Handler: guard(!l.RequiresToken(), a.handler(l.token)), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: a.log.Named("api").StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug})}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// handler routes the API; tokenSum, when set, is the SHA-256 of the
// bearer token every request must carry.
func (a *Agent) handler(tokenSum []byte) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/status", only(http.MethodGet, a.serveStatus))
	mux.Handle("/v1/migrations", only(http.MethodGet, a.serveMigrations))
	mux.Handle("/v1/migrations/{addr...}", only(http.MethodGet, a.serveMigration))
	mux.Handle("/v1/plan", only(http.MethodGet, a.servePlan))
	mux.Handle("/v1/reconcile", only(http.MethodPost, a.serveReconcile))
	mux.Handle("/v1/suspend", only(http.MethodPost, a.serveSuspend(verbSuspend)))
	mux.Handle("/v1/resume", only(http.MethodPost, a.serveSuspend(verbResume)))
	metrics := promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	mux.Handle("/metrics", only(http.MethodGet, metrics.ServeHTTP))
	page := only(http.MethodGet, a.servePage(tokenSum))
	mux.Handle("/{$}", page)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	if tokenSum == nil {
		return mux
	}
	return exceptPage(page, requireToken(tokenSum, mux))
}

// requireToken lets through the requests that carry the bearer token.
// Both sides are hashed before the constant-time comparison, so that
// neither the token's bytes nor its length show in the timing.
func requireToken(sum []byte, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hasToken(sum, r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hyperagent"`)
			writeError(w, http.StatusUnauthorized, "this address requires the bearer token of agent.status_token_file (Authorization: Bearer TOKEN)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hasToken says whether r carries the bearer token whose SHA-256 is sum.
func hasToken(sum []byte, r *http.Request) bool {
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	gs := sha256.Sum256([]byte(strings.TrimSpace(got)))
	return ok && strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare(gs[:], sum) == 1
}

// only serves one method (GET includes HEAD) and answers others 405.
func only(method string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s takes %s, not %s", r.URL.Path, method, r.Method))
			return
		}
		h(w, r)
	})
}

func (a *Agent) serveStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, a.Status())
}

func (a *Agent) servePlan(w http.ResponseWriter, r *http.Request) {
	s := a.Status()
	if s.Plan == nil {
		writeError(w, http.StatusNotFound, "no pass has planned yet")
		return
	}
	writeJSON(w, http.StatusOK, jsondoc.NewPlan(s.Plan, s.Version))
}

func (a *Agent) serveReconcile(w http.ResponseWriter, r *http.Request) {
	a.Trigger()
	writeJSON(w, http.StatusAccepted, Accepted{FormatVersion: APIVersion, Status: "a pass will run"})
}

// Accepted answers a request that starts a pass.
type Accepted struct {
	FormatVersion string `json:"format_version"`
	Status        string `json:"status"`
}

// APIError is the body of every error answer.
type APIError struct {
	FormatVersion string `json:"format_version"`
	Error         string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, APIError{FormatVersion: APIVersion, Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"format_version":"`+APIVersion+`","error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
