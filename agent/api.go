package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Listen opens the status API's listener: "unix:PATH" (a socket created
// mode 0660, replacing a stale one) or "tcp:HOST:PORT" (loopback only: a
// TCP listener elsewhere needs authentication, which this build does not
// have).
func Listen(spec string) (net.Listener, error) {
	kind, addr, ok := strings.Cut(spec, ":")
	if !ok || addr == "" {
		return nil, fmt.Errorf("listen %q: want unix:PATH or tcp:HOST:PORT", spec)
	}
	switch kind {
	case "unix":
		if fi, err := os.Lstat(addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.Dial("unix", addr); err == nil {
				c.Close()
				return nil, fmt.Errorf("listen %s: another process serves this socket", addr)
			}
			_ = os.Remove(addr) // a socket left by a process that died
		}
		l, err := net.Listen("unix", addr)
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(addr, 0o660); err != nil {
			l.Close()
			return nil, err
		}
		return l, nil
	case "tcp":
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("listen %q: %w", spec, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("listen %q: only a loopback address is served (no authentication in this build); use a unix socket", spec)
		}
		return net.Listen("tcp", addr)
	}
	return nil, fmt.Errorf("listen %q: want unix:PATH or tcp:HOST:PORT", spec)
}

// Serve answers the status API on l until ctx ends:
//
//	GET  /v1/status     the agent's Status
//	GET  /v1/plan       the last plan, as plan -json prints it
//	POST /v1/reconcile  a pass now
//
// Errors are JSON {"error": …} with a status code.
func (a *Agent) Serve(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Status())
	})
	mux.HandleFunc("GET /v1/plan", func(w http.ResponseWriter, r *http.Request) {
		p := a.Status().Plan
		if p == nil {
			writeJSON(w, http.StatusNotFound, apiError{"no pass has planned yet"})
			return
		}
		b, err := p.Encode()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("POST /v1/reconcile", func(w http.ResponseWriter, r *http.Request) {
		a.Trigger()
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "a pass will run"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, apiError{fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path)})
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
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

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
