package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
)

// Engine applies plans to one workspace: a configuration, its plugin
// instances and its state store. It holds no per-run state: each Apply
// builds its own run, so one Engine serves every pass of a long-running
// agent. The caller holds the store's lock for the duration of a call.
type Engine struct {
	Config  *schema.Config
	Plugins *plugins.Set
	Store   *Store
	Log     hclog.Logger
	// Redact keeps secrets out of what a run records in state (a
	// failure quoting a plugin's error) and reports; nil redacts nothing.
	Redact *Redactor
	// PollInterval is how often await observes jobs (default 2s); a
	// converter's Watcher wakes it earlier.
	PollInterval time.Duration
	// SessionCheck is how often a run on a store held shared checks
	// that its session, and so its claims, are still there (default
	// 5s).
	SessionCheck time.Duration
	Now          func() time.Time // default time.Now
}

// ApplyOptions shape one run.
type ApplyOptions struct {
	// Parallelism bounds migrations at work (one waiting for its
	// converter holds none); 0 means Config.Agent's, and
	// schema.DefaultParallelism when that is unset too. Sources,
	// converters and targets keep their own limits besides.
	Parallelism int
	// SkipAwait leaves a submitted job to later passes instead of
	// waiting for it: the change ends as Waiting once its job is in the
	// converter's hands. The agent runs this way, so that one pass never
	// holds the state lock while a conversion runs for hours.
	SkipAwait bool
	// Hold says which changes not to run this time, and why (a migration
	// backing off after a failure); their dependents wait too. It sees
	// the plan (its fingerprints) and the change. nil holds nothing.
	Hold func(p *Plan, c *Change) (reason string, held bool)
	// Progress and Events are called from many goroutines; may be nil.
	Progress plugins.Progress
	Events   func(Event)
}

// Event reports a step starting or ending, for views.
type Event struct {
	Address string
	Step    StepKind
	Status  string // "start" | "done" | "failed" | "waiting"
	Detail  string
	Err     error
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

func (e *Engine) log() hclog.Logger {
	if e.Log == nil {
		return hclog.NewNullLogger()
	}
	return e.Log
}

// Apply runs the plan's steps against st, the state loaded under the lock:
// each migration's steps in order, migrations in parallel within the
// parallelism and every instance's Limits, dependents after their
// dependencies. State is written after every step. When ctx is cancelled
// no new step starts and in-flight steps are cancelled; the Result says
// what finished, failed, waits, was skipped and did not start. The error
// is for failures of the run itself (a state write).
func (e *Engine) Apply(ctx context.Context, st *State, p *Plan, opts ApplyOptions) (*Result, error) {
	switch {
	case p.Lineage == "":
		return nil, errors.New("the plan names no campaign lineage; make a new plan")
	case st.Lineage == "":
		// The first write gives the state the lineage the plan's
		// artifact names are bound to.
		st.Lineage = p.Lineage
	case st.Lineage != p.Lineage:
		return nil, fmt.Errorf("the plan was made for campaign %s, and the state is campaign %s; make a new plan", p.Lineage, st.Lineage)
	}
	r := newRun(e, st, p, opts)
	return r.apply(ctx)
}

// SyncRecords refreshes what state keeps about configured migrations
// (prevent_destroy, plugin addresses) without running a step. Apply does
// it first; a caller whose plan has no changes calls it instead, so that a
// prevent_destroy added to a finished migration is recorded before the
// migration can be removed from the config. The caller holds the lock.
func (e *Engine) SyncRecords(st *State, p *Plan) error {
	return newRun(e, st, p, ApplyOptions{}).syncRecords()
}
