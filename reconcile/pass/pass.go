package pass

import (
	"context"
	"errors"
	"time"

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
	if !req.NoLock || req.Mode != ModePlan {
		info, err := w.Store.LockWait(ctx, req.Operation, req.LockTimeout, req.LockWaiting)
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
	p, err := w.plan(ctx, st, req)
	if err != nil {
		return res, err
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
