package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
)

// run is one Apply: the plan, the state it writes, and what the walk
// shares between migrations (limits, job pollers, the result).
type run struct {
	e    *Engine
	st   *State
	plan *Plan
	opts ApplyOptions
	// shared: the store is held shared (several processes work on the
	// campaign): each change claims its migration, records are written
	// one by one, and limits are counted in the store (shared.go).
	shared bool

	mu     sync.Mutex // guards st and its writes
	limits map[string]chan struct{}
	// caps are the limits' sizes, by plugin instance.
	caps map[string]int
	// updates counts the changes update applied to st, written how many
	// of them the last successful whole-state write held (both guarded by
	// mu); queue holds the changes queued and not applied yet, queued
	// counts every change queued (both guarded by queueMu).
	updates, written uint64
	queueMu          sync.Mutex
	queue            []queuedUpdate
	queued           uint64
	pollMu           sync.Mutex
	pollers          map[string]*jobPoller

	resMu sync.Mutex
	res   *Result
	fatal error

	changeOnce sync.Once
	changes    map[string]*Change // by address

	collectMu sync.Mutex
	collects  map[string]int // by converter: collections under way
}

func newRun(e *Engine, st *State, p *Plan, opts ApplyOptions) *run {
	r := &run{e: e, st: st, plan: p, opts: opts, pollers: map[string]*jobPoller{}, res: &Result{},
		shared: e.Store != nil && e.Store.HeldShared()}
	r.setupLimits()
	return r
}

func (r *run) apply(ctx context.Context) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if r.shared {
		watched := make(chan struct{})
		go func() { defer close(watched); r.watchSession(ctx, cancel) }()
		defer func() { cancel(); <-watched }()
	}
	if err := r.syncRecords(); err != nil {
		return nil, err
	}
	var nodes []string
	deps := map[string][]string{}
	changes := map[string]*Change{}
	for i := range r.plan.Changes {
		c := &r.plan.Changes[i]
		if c.Action == ActionNoOp {
			continue
		}
		changes[c.Address] = c
		nodes = append(nodes, c.Address)
	}
	pre := map[string]string{} // not run, and why
	for _, n := range nodes {
		c := changes[n]
		if c.Blocked {
			pre[n] = "blocked by errors in the plan: " + firstError(c.Findings)
			continue
		}
		if c.Suspended {
			pre[n] = "suspended: hyperagent agent resume " + n + " lets it go on"
			continue
		}
		if r.opts.Hold != nil {
			if why, held := r.opts.Hold(r.plan, c); held {
				pre[n] = why
				continue
			}
		}
		for _, d := range c.DependsOn {
			if _, ok := changes[d]; ok {
				deps[n] = append(deps[n], d)
			} else if why := r.unmetOutside(d); why != "" {
				pre[n] = why
			}
		}
	}
	if err := checkAcyclic(nodes, deps); err != nil {
		return nil, err
	}

	results := walk(ctx, nodes, deps, r.parallelism(), func(ctx context.Context, n string, sl *slot) nodeOutcome {
		if why, ok := pre[n]; ok {
			r.addSkip(n, why)
			return outcomeSkipped
		}
		out := r.runChange(ctx, changes[n], sl)
		var we *stateWriteError
		if errors.As(r.fatalErr(), &we) {
			cancel()
		}
		return out
	})
	for _, n := range nodes {
		res := results[n]
		switch {
		case res.outcome == outcomeSkipped && res.reason != "":
			r.addSkip(n, res.reason)
		case res.outcome == outcomeNotStarted:
			r.res.NotStarted = append(r.res.NotStarted, n)
		case res.outcome == outcomeElsewhere && res.reason != "":
			r.res.Elsewhere = append(r.res.Elsewhere, Skip{Address: n, Reason: res.reason})
		}
	}
	r.res.sort()
	r.res.emptyNotNil()
	r.e.Redact.Result(r.res)
	cancel()
	return r.res, r.fatalErr()
}

func (r *run) fatalErr() error {
	r.resMu.Lock()
	defer r.resMu.Unlock()
	return r.fatal
}

// change is the plan's change of addr, nil when it has none.
func (r *run) change(addr string) *Change {
	r.changeOnce.Do(func() {
		r.changes = make(map[string]*Change, len(r.plan.Changes))
		for i := range r.plan.Changes {
			r.changes[r.plan.Changes[i].Address] = &r.plan.Changes[i]
		}
	})
	return r.changes[addr]
}

func (r *run) addSkip(addr, why string) {
	r.resMu.Lock()
	defer r.resMu.Unlock()
	r.res.Skipped = append(r.res.Skipped, Skip{Address: addr, Reason: why})
}

// unmetOutside checks a dependency that has no change in the plan: it is
// met when the plan saw it defined (a no-op) or state records its domain.
func (r *run) unmetOutside(dep string) string {
	if c := r.plan.Change(dep); c != nil {
		if c.Phase == PhaseDefined && !c.Blocked {
			return ""
		}
		return fmt.Sprintf("dependency %s is not defined", dep)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ms := r.st.Migrations[dep]; ms != nil && ms.Domain != nil {
		return ""
	}
	return fmt.Sprintf("dependency %s is not part of this plan and not defined", dep)
}

func (r *run) parallelism() int {
	switch {
	case r.opts.Parallelism > 0:
		return r.opts.Parallelism
	case r.e.Config.Agent.Parallelism > 0:
		return r.e.Config.Agent.Parallelism
	}
	return schema.DefaultParallelism
}

// setupLimits makes one semaphore per plugin instance that declares a
// limit. With SkipAwait, jobs already in flight (queued or converting
// when the plan was made) hold their converter's slots for the whole run:
// nothing of this run releases them.
func (r *run) setupLimits() {
	r.limits, r.caps = map[string]chan struct{}{}, map[string]int{}
	add := func(name string, p any) {
		if l := plugins.LimitsOf(p); l.MaxParallel > 0 {
			r.caps[name] = l.MaxParallel
			if !r.shared {
				r.limits[name] = make(chan struct{}, l.MaxParallel)
			}
		}
	}
	for n, p := range r.e.Plugins.Sources {
		add(n, p)
	}
	for n, p := range r.e.Plugins.Converters {
		add(n, p)
	}
	for n, p := range r.e.Plugins.Targets {
		add(n, p)
	}
	if !r.opts.SkipAwait || r.shared {
		return
	}
	for _, c := range r.plan.Changes {
		if c.Phase != PhaseQueued && c.Phase != PhaseConverting {
			continue
		}
		if sem := r.limits[c.Converter]; sem != nil {
			select {
			case sem <- struct{}{}:
			default: // more in flight than the limit (it was lowered)
			}
		}
	}
}

// errNoSlot is a step cancelled while it waited for a slot of a limit:
// it did nothing.
var errNoSlot = errors.New("cancelled while waiting for a slot")

// acquire takes a slot of instance's limit; release is idempotent.
func (r *run) acquire(ctx context.Context, instance string) (release func(), err error) {
	if r.shared {
		return r.acquireShared(ctx, instance)
	}
	sem := r.limits[instance]
	if sem == nil {
		return func() {}, nil
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", errNoSlot, ctx.Err())
	}
	var once sync.Once
	return func() { once.Do(func() { <-sem }) }, nil
}

func (r *run) poller(ctx context.Context, name string, conv plugins.Converter) *jobPoller {
	r.pollMu.Lock()
	defer r.pollMu.Unlock()
	if p := r.pollers[name]; p != nil {
		return p
	}
	iv := r.e.PollInterval
	if iv <= 0 {
		iv = 2 * time.Second
	}
	p := newJobPoller(ctx, name, conv, iv, r.e.log(), r.opts.Progress)
	r.pollers[name] = p
	return p
}

func (r *run) emit(ev Event) {
	ev = r.e.Redact.Event(ev)
	if ev.Err != nil {
		r.e.log().Debug("step", "address", ev.Address, "step", ev.Step, "status", ev.Status, "error", ev.Err)
	} else {
		r.e.log().Debug("step", "address", ev.Address, "step", ev.Step, "status", ev.Status, "detail", ev.Detail)
	}
	if r.opts.Events != nil {
		r.opts.Events(ev)
	}
}

func firstError(fs []Finding) string {
	for _, f := range fs {
		if f.Severity == string(plugins.SeverityError) {
			return f.Summary
		}
	}
	return ""
}
