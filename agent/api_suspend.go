package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pass"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

type verb string

const (
	verbSuspend verb = "suspend"
	verbResume  verb = "resume"
)

// SuspendRequest is the body of POST /v1/suspend and /v1/resume: some
// migrations, or all of them (the whole campaign).
type SuspendRequest struct {
	Addresses []string `json:"addresses,omitempty"`
	All       bool     `json:"all,omitempty"`
}

// SuspendResponse says what was recorded in state.
type SuspendResponse struct {
	FormatVersion string   `json:"format_version"`
	Done          string   `json:"done"` // suspended | resumed
	Addresses     []string `json:"addresses"`
	All           bool     `json:"all"`
}

// editTarget is what an edit of the state needs from the configuration
// the agent runs: where its state is (the configuration's state block,
// or the agent's -state-dir), and which addresses it has.
type editTarget struct {
	cfg      *schema.Config
	stateDir string
	inConfig map[string]bool
}

// serveSuspend records a suspension or a resumption in state exactly as
// `hyperagent agent suspend|resume` does (pass.Edit with the state lock,
// pass.Suspend or pass.Resume), waiting for the lock as a pass does, then
// starts a pass.
func (a *Agent) serveSuspend(v verb) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req SuspendRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "the body must be JSON {\"addresses\": [ADDR, …]} or {\"all\": true}: "+err.Error())
			return
		}
		if req.All == (len(req.Addresses) > 0) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s takes addresses or all, not both nor neither", v))
			return
		}
		var list []addrs.Migration
		for _, s := range req.Addresses {
			m, err := addrs.ParseMigration(s)
			if err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
			list = append(list, m)
		}
		a.mu.Lock()
		et := a.edit
		a.mu.Unlock()
		if et == nil {
			writeError(w, http.StatusServiceUnavailable, "no configuration has loaded yet, so the state is unknown")
			return
		}
		store, err := pass.OpenStore(et.cfg, et.stateDir)
		if err != nil {
			writeError(w, http.StatusInternalServerError, a.o.Redact.String(err.Error()))
			return
		}
		defer store.Close()
		now := time.Now().UTC()
		var refused error
		err = pass.Edit(r.Context(), store, "agent "+string(v)+" (status API)", a.o.LockTimeout, func(st *reconcile.State) error {
			if v == verbSuspend {
				refused = pass.Suspend(st, list, req.All, func(x string) bool { return et.inConfig[x] || st.Migrations[x] != nil }, now)
			} else {
				refused = pass.Resume(st, list, req.All, now)
			}
			return refused
		})
		var locked *reconcile.LockedError
		switch {
		case refused != nil:
			writeError(w, http.StatusConflict, a.o.Redact.String(refused.Error()))
			return
		case errors.As(err, &locked):
			w.Header().Set("Retry-After", "10")
			writeError(w, http.StatusServiceUnavailable, a.o.Redact.String(err.Error()))
			return
		case err != nil:
			writeError(w, http.StatusInternalServerError, a.o.Redact.String(err.Error()))
			return
		}
		a.Trigger()
		done := map[verb]string{verbSuspend: "suspended", verbResume: "resumed"}[v]
		out := SuspendResponse{FormatVersion: APIVersion, Done: done, Addresses: []string{}, All: req.All}
		for _, m := range list {
			out.Addresses = append(out.Addresses, m.String())
		}
		a.log.Info("recorded in state through the status API", "done", done, "addresses", out.Addresses, "all", req.All)
		writeJSON(w, http.StatusOK, out)
	}
}
