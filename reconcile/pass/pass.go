package pass

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/hypersdk/hyperagent/reconcile"
)

// Mode is what a pass does after planning.
type Mode string

const (
	// ModePlan observes and plans, and changes nothing.
	ModePlan Mode = "plan"
	// ModeApply applies the plan (after Approve, when set).
	ModeApply Mode = "apply"
)

// Request is one pass.
type Request struct {
	Mode Mode
	// Operation names the pass in the lock's holder record ("plan",
	// "apply", "agent pass 12"), so that whoever waits knows for what.
	Operation string
	// Plan shapes a new plan; ignored with Saved.
	Plan reconcile.PlanRequest
	// Saved is a plan made earlier (plan -out): it is checked for
	// staleness and applied exactly as it is.
	Saved *reconcile.Plan
	// LockTimeout is how long to wait for another holder; 0 tries once.
	LockTimeout time.Duration
	// NoLock skips the lock (plan -lock=false): for ModePlan only.
	NoLock bool
	// LockWaiting is told whom the pass waits for (may be nil).
	LockWaiting func(holder reconcile.LockInfo, next time.Duration)
	// Planned sees the (redacted) plan before anything is applied, with
	// the lock held; a view prints it there. May be nil.
	Planned func(*reconcile.Plan)
	// Approve is asked before a plan with changes is applied, with the
	// lock held; false ends the pass with nothing done. nil approves.
	Approve func(context.Context, *reconcile.Plan) (bool, error)
	// Apply shapes the run (parallelism, SkipAwait, holds, hooks).
	Apply reconcile.ApplyOptions
}

// Result is what one pass did. Everything in it is redacted.
type Result struct {
	// Plan is the plan made (or the saved plan checked); nil when the
	// pass failed before planning.
	Plan *reconcile.Plan
	// Applied is the apply's result; nil when nothing was applied (plan
	// mode, no changes, not approved).
	Applied *reconcile.Result
	// Declined is set when Approve said no.
	Declined bool
	// Lock is the lock the pass held (zero with NoLock).
	Lock reconcile.LockInfo
	// Started and Took time the pass.
	Started time.Time
	Took    time.Duration
}

// Run runs one pass. The error is for a pass that could not run or
// finish (lock, state, observation, a stale saved plan, a state write);
// failures of single migrations are in Result.Applied. A cancelled ctx
// stops the pass the way an interrupt stops apply: no new step starts,
// steps in flight are cancelled, state is written and the lock released.
func (w *Workspace) Run(ctx context.Context, req Request) (res *Result, err error) {
	res = &Result{Started: time.Now()}
	defer func() {
		res.Took = time.Since(res.Started)
		err = w.Redact.Error(err)
	}()
	// A store several processes share (PostgreSQL) is held shared: the
	// passes of other hosts run beside this one, each migration claimed
	// by the one that works on it.
	shared := w.Store.Shared()
	if !req.NoLock || req.Mode != ModePlan {
		lock := w.Store.LockWait
		if shared {
			lock = w.Store.LockSharedWait
		}
		info, err := lock(ctx, req.Operation, req.LockTimeout, req.LockWaiting)
		if err != nil {
			return res, err
		}
		res.Lock = info
		defer func() {
			if uerr := w.Store.Unlock(); uerr != nil {
				err = errors.Join(err, uerr)
			}
		}()
	}
	st, err := w.Store.Load()
	if err != nil {
		return res, err
	}
	if shared && req.Mode == ModeApply && st.Lineage == "" && req.Saved == nil {
		// Every host names the campaign's artifacts after one lineage:
		// the first to apply gives it, before anyone plans.
		if st, err = w.newCampaign(); err != nil {
			return res, err
		}
	}
	p, err := w.plan(ctx, st, req)
	if err != nil {
		return res, err
	}
	if shared && req.Mode == ModeApply && st.Lineage == "" {
		// A saved plan made against no state binds the campaign to its
		// lineage, unless another process gave it one first.
		l, err := w.Store.SetLineage(p.Lineage)
		if err != nil {
			return res, err
		}
		if l != p.Lineage {
			return res, fmt.Errorf("the saved plan is stale, make a new one:\n  - another process started the campaign since (lineage %s)", l)
		}
	}
	res.Plan = p
	if req.Planned != nil {
		req.Planned(p)
	}
	if req.Mode == ModePlan {
		return res, nil
	}
	eng := w.engine()
	if !p.HasChanges() {
		// Nothing to run, but what state keeps about the config
		// (prevent_destroy) is recorded.
		return res, eng.SyncRecords(st, p)
	}
	if req.Approve != nil {
		ok, err := req.Approve(ctx, p)
		if err != nil || !ok {
			res.Declined = err == nil
			return res, err
		}
	}
	res.Applied, err = eng.Apply(ctx, st, p, req.Apply)
	return res, err
}

// newCampaign gives a campaign never written a lineage (or learns the
// one another process gave it) and loads it again.
func (w *Workspace) newCampaign() (*reconcile.State, error) {
	if _, err := w.Store.SetLineage(uuid.NewString()); err != nil {
		return nil, err
	}
	return w.Store.Load()
}

// plan makes a new plan, or checks the saved one, and redacts it.
func (w *Workspace) plan(ctx context.Context, st *reconcile.State, req Request) (*reconcile.Plan, error) {
	if req.Saved != nil {
		if err := reconcile.CheckStale(ctx, req.Saved, w.Config, st, w.Plugins); err != nil {
			return nil, err
		}
		// Redacted when it was made; again with today's secrets.
		w.Redact.Plan(req.Saved)
		return req.Saved, nil
	}
	if err := reconcile.CheckAddresses(w.Config, st, req.Plan.Selection, req.Plan.Replace); err != nil {
		return nil, err
	}
	pr := req.Plan
	if pr.Log == nil {
		pr.Log = w.Log
	}
	p, err := reconcile.MakePlan(ctx, w.Config, st, w.Plugins, pr)
	if err != nil {
		return nil, err
	}
	w.Redact.Plan(p)
	return p, nil
}
