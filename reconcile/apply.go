package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
)

// Engine applies plans. The caller holds Store's lock for the whole run.
type Engine struct {
	Config  *schema.Config
	Plugins *plugins.Set
	Store   *Store
	State   *State
	Log     hclog.Logger
	// Parallelism bounds migrations in flight; 0 means Config.Agent's,
	// and 10 when that is unset too.
	Parallelism int
	// PollInterval is how often await observes jobs (default 2s); a
	// converter's Watcher wakes it earlier.
	PollInterval time.Duration
	Progress     plugins.Progress // may be nil
	Events       func(Event)      // may be nil; called from many goroutines
	Now          func() time.Time // default time.Now
	// Secrets are the config's sensitive values. A plugin's error may
	// quote one (a URL with its password); they are replaced before an
	// error is recorded in state or reported in the Result.
	Secrets []string

	plan    *Plan
	mu      sync.Mutex // guards State and its writes
	limits  map[string]chan struct{}
	pollers map[string]*jobPoller
	pollMu  sync.Mutex
}

// Event reports a step starting or ending, for views.
type Event struct {
	Address string
	Step    StepKind
	Status  string // "start" | "done" | "failed"
	Detail  string
	Err     error
}

// Result is the end-of-apply summary.
type Result struct {
	Migrated    []string  `json:"migrated"` // create, update and replace that finished
	Removed     []string  `json:"removed"`
	Failed      []Failure `json:"failed"`
	Skipped     []Skip    `json:"skipped"`
	NotStarted  []string  `json:"not_started"`
	Interrupted []Failure `json:"interrupted"` // cancelled mid-step
	Notes       []string  `json:"notes,omitempty"`
}

// Failure is a migration that stopped at a step.
type Failure struct {
	Address string   `json:"address"`
	Step    StepKind `json:"step"`
	Error   string   `json:"error"`
}

// Skip is a migration that was not run, and why.
type Skip struct {
	Address string `json:"address"`
	Reason  string `json:"reason"`
}

// OK says everything planned finished.
func (r *Result) OK() bool {
	return len(r.Failed) == 0 && len(r.Skipped) == 0 && len(r.NotStarted) == 0 && len(r.Interrupted) == 0
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

// Apply runs the plan's steps: each migration's steps in order, migrations
// in parallel within Parallelism and every instance's Limits, dependents
// after their dependencies. State is written after every step. When ctx is
// cancelled no new step starts and in-flight steps are cancelled; the
// Result says what finished, failed, was skipped and did not start. The
// error is for failures of the run itself (a state write).
func (e *Engine) Apply(ctx context.Context, p *Plan) (*Result, error) {
	if e.Log == nil {
		e.Log = hclog.NewNullLogger()
	}
	switch {
	case p.Lineage == "":
		return nil, errors.New("the plan names no campaign lineage; make a new plan")
	case e.State.Lineage == "":
		// The first write gives the state the lineage the plan's
		// artifact names are bound to.
		e.State.Lineage = p.Lineage
	case e.State.Lineage != p.Lineage:
		return nil, fmt.Errorf("the plan was made for campaign %s, and the state is campaign %s; make a new plan", p.Lineage, e.State.Lineage)
	}
	e.plan = p
	e.setupLimits()
	e.pollers = map[string]*jobPoller{}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := e.syncRecords(p); err != nil {
		return nil, err
	}

	var nodes []string
	deps := map[string][]string{}
	changes := map[string]*Change{}
	res := &Result{}
	var resMu sync.Mutex
	for i := range p.Changes {
		c := &p.Changes[i]
		if c.Action == ActionNoOp {
			continue
		}
		changes[c.Address] = c
		nodes = append(nodes, c.Address)
	}
	pre := map[string]nodeResult{}
	for _, n := range nodes {
		c := changes[n]
		if c.Blocked {
			pre[n] = nodeResult{outcome: outcomeSkipped, reason: "blocked by errors in the plan: " + firstError(c.Findings)}
			continue
		}
		for _, d := range c.DependsOn {
			if _, ok := changes[d]; ok {
				deps[n] = append(deps[n], d)
			} else if why := e.unmetOutside(p, d); why != "" {
				pre[n] = nodeResult{outcome: outcomeSkipped, reason: why}
			}
		}
	}
	if err := checkAcyclic(nodes, deps); err != nil {
		return nil, err
	}
	var fatal error
	results := walk(runCtx, nodes, deps, e.parallelism(), func(ctx context.Context, n string) nodeOutcome {
		if r, ok := pre[n]; ok {
			resMu.Lock()
			res.Skipped = append(res.Skipped, Skip{Address: n, Reason: r.reason})
			resMu.Unlock()
			return outcomeSkipped
		}
		step, err := e.runChange(ctx, changes[n], res, &resMu)
		if err == nil {
			return outcomeDone
		}
		f := Failure{Address: n, Step: step, Error: e.redact(err.Error())}
		resMu.Lock()
		defer resMu.Unlock()
		var we *stateWriteError
		switch {
		case errors.As(err, &we):
			fatal = err
			res.Failed = append(res.Failed, f)
			cancel()
		case ctx.Err() != nil:
			res.Interrupted = append(res.Interrupted, f)
		default:
			res.Failed = append(res.Failed, f)
		}
		return outcomeFailed
	})
	for _, n := range nodes {
		r := results[n]
		switch {
		case r.outcome == outcomeSkipped && r.reason != "":
			res.Skipped = append(res.Skipped, Skip{Address: n, Reason: r.reason})
		case r.outcome == outcomeNotStarted:
			res.NotStarted = append(res.NotStarted, n)
		}
	}
	res.sort()
	return res, fatal
}

// unmetOutside checks a dependency that has no change in the plan: it is
// met when the plan saw it defined (a no-op) or state records its domain.
func (e *Engine) unmetOutside(p *Plan, dep string) string {
	if c := p.Change(dep); c != nil {
		if c.Phase == PhaseDefined && !c.Blocked {
			return ""
		}
		return fmt.Sprintf("dependency %s is not defined", dep)
	}
	if ms := e.State.Migrations[dep]; ms != nil && ms.Domain != nil {
		return ""
	}
	return fmt.Sprintf("dependency %s is not part of this plan and not defined", dep)
}

func (e *Engine) parallelism() int {
	switch {
	case e.Parallelism > 0:
		return e.Parallelism
	case e.Config.Agent.Parallelism > 0:
		return e.Config.Agent.Parallelism
	}
	return 10
}

// setupLimits makes one semaphore per plugin instance that declares a
// limit.
func (e *Engine) setupLimits() {
	e.limits = map[string]chan struct{}{}
	add := func(name string, p any) {
		if l := plugins.LimitsOf(p); l.MaxParallel > 0 {
			e.limits[name] = make(chan struct{}, l.MaxParallel)
		}
	}
	for n, p := range e.Plugins.Sources {
		add(n, p)
	}
	for n, p := range e.Plugins.Converters {
		add(n, p)
	}
	for n, p := range e.Plugins.Targets {
		add(n, p)
	}
}

// acquire takes a slot of instance's limit; release is idempotent.
func (e *Engine) acquire(ctx context.Context, instance string) (release func(), err error) {
	sem := e.limits[instance]
	if sem == nil {
		return func() {}, nil
	}
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() { once.Do(func() { <-sem }) }, nil
}

func (e *Engine) poller(ctx context.Context, name string, conv plugins.Converter) *jobPoller {
	e.pollMu.Lock()
	defer e.pollMu.Unlock()
	if p := e.pollers[name]; p != nil {
		return p
	}
	iv := e.PollInterval
	if iv <= 0 {
		iv = 2 * time.Second
	}
	p := newJobPoller(ctx, name, conv, iv, e.Log)
	e.pollers[name] = p
	return p
}

// redact replaces the config's secrets in s.
func (e *Engine) redact(s string) string { return RedactSecrets(s, e.Secrets) }

// RedactSecrets replaces every secret in s with "(sensitive value)".
func RedactSecrets(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "(sensitive value)")
		}
	}
	return s
}

// RedactPlan replaces secrets in the display-only text of a plan (reasons
// and findings, which quote plugins), so that its rendering, its JSON and
// a saved plan file never carry one.
func RedactPlan(p *Plan, secrets []string) {
	if len(secrets) == 0 {
		return
	}
	for i := range p.Changes {
		c := &p.Changes[i]
		c.Reason = RedactSecrets(c.Reason, secrets)
		for j := range c.Findings {
			c.Findings[j].Summary = RedactSecrets(c.Findings[j].Summary, secrets)
			c.Findings[j].Detail = RedactSecrets(c.Findings[j].Detail, secrets)
		}
	}
}

func (e *Engine) emit(ev Event) {
	if ev.Err != nil {
		e.Log.Debug("step", "address", ev.Address, "step", ev.Step, "status", ev.Status, "error", e.redact(ev.Err.Error()))
	} else {
		e.Log.Debug("step", "address", ev.Address, "step", ev.Step, "status", ev.Status, "detail", ev.Detail)
	}
	if e.Events != nil {
		e.Events(ev)
	}
}

func (r *Result) sort() {
	sort.Strings(r.Migrated)
	sort.Strings(r.Removed)
	sort.Strings(r.NotStarted)
	sort.Slice(r.Failed, func(i, j int) bool { return r.Failed[i].Address < r.Failed[j].Address })
	sort.Slice(r.Interrupted, func(i, j int) bool { return r.Interrupted[i].Address < r.Interrupted[j].Address })
	sort.Slice(r.Skipped, func(i, j int) bool { return r.Skipped[i].Address < r.Skipped[j].Address })
}

func firstError(fs []Finding) string {
	for _, f := range fs {
		if f.Severity == string(plugins.SeverityError) {
			return f.Summary
		}
	}
	return ""
}
