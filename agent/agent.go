package agent

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/agent/notify"
	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pass"
	"github.com/hypersdk/hyperagent/schema"
)

// Agent reconciles one campaign continuously. Run drives it; Trigger,
// Reload and Status may be called from any goroutine.
type Agent struct {
	o       Options
	log     hclog.Logger
	dirty   chan struct{} // capacity 1: any number of triggers is one pass
	reload  chan struct{} // capacity 1
	retries *retries

	// lastProgress is when the running pass last showed life (unix ns);
	// the watchdog pings only while it is recent.
	lastProgress atomic.Int64
	passing      atomic.Bool

	mu     sync.Mutex
	status Status
	// live and metrics follow passes for the status API (api.go).
	live    *live
	metrics *metrics
	// notify queues and sends the notify blocks' events (agent/notify).
	notify *notify.Notifier
	edit   *editTarget // nil until a configuration loaded

	// convs are the current workspace's converters, whose jobs' progress
	// followConversions reads (conversions.go); convMu is held while it
	// reads them.
	convMu sync.Mutex
	convs  map[string]plugins.Converter

	// Owned by Run's goroutine.
	ws       *workspace
	passes   int
	ready    bool
	lastDiag string // the config errors last logged, so each is logged once
	// What the configuration was last read from, and when.
	inputs   uint64
	loadedAt time.Time
}

// New returns an agent; Run starts it.
func New(o Options) *Agent {
	o.defaults()
	a := &Agent{o: o, log: o.Log, dirty: make(chan struct{}, 1), reload: make(chan struct{}, 1),
		retries: newRetries(time.Now)}
	a.status = Status{FormatVersion: StatusVersion, Phases: map[reconcile.Phase]int{},
		ConfigErrors: []Diagnostic{}, Retrying: []RetryStatus{}, NoEvents: []string{},
		Converters: []ConverterStatus{}, Version: o.Version}
	a.live = newLive(time.Now, o.Redact.String)
	a.notify = notify.New(notify.Options{Log: o.Log.Named("notify"), Redact: o.Redact, Version: o.Version})
	a.metrics = newMetrics(a, o.Version)
	return a
}

// Trigger marks the campaign dirty: a pass runs as soon as the current
// one (if any) ends. It never blocks.
func (a *Agent) Trigger() {
	select {
	case a.dirty <- struct{}{}:
	default:
	}
}

// Reload re-reads the configuration now (SIGHUP), telling systemd
// RELOADING=1 until it is done.
func (a *Agent) Reload() {
	select {
	case a.reload <- struct{}{}:
	default:
	}
}

// Status returns a copy of what the agent knows now.
func (a *Agent) Status() Status {
	a.mu.Lock()
	s := a.status
	a.mu.Unlock()
	s.Retrying = a.retries.status()
	s.Phases = a.live.phases()
	s.Converters = a.withQueues(s.Converters)
	s.ConfigErrors = append([]Diagnostic{}, s.ConfigErrors...)
	s.NoEvents = append([]string{}, s.NoEvents...)
	return s
}

func (a *Agent) setStatus(fn func(s *Status)) {
	a.mu.Lock()
	fn(&a.status)
	a.mu.Unlock()
}

func (a *Agent) progressed() { a.lastProgress.Store(time.Now().UnixNano()) }

// Run reconciles until ctx ends, then stops gracefully: the pass in
// flight is cancelled as an interrupted apply is (no new step, state
// written, lock released), within StopTimeout.
func (a *Agent) Run(ctx context.Context) error {
	defer func() {
		if a.ws != nil {
			a.ws.close()
		}
	}()
	// Conversions are followed beside the loop, until before the
	// workspace closes.
	fctx, stopFollowing := context.WithCancel(ctx)
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		a.followConversions(fctx)
	}()
	defer func() {
		stopFollowing()
		<-followed
	}()
	// Delivery runs beside the loop; it stops with ctx.
	a.notify.Start(ctx)
	defer a.notify.Wait()
	go a.watchConfig(ctx)
	var watchdog <-chan time.Time
	if a.o.Watchdog > 0 {
		t := time.NewTicker(a.o.Watchdog)
		defer t.Stop()
		watchdog = t.C
	}
	resync := time.NewTimer(0) // the first pass
	defer resync.Stop()
	var retry *time.Timer
	retryC := func() <-chan time.Time {
		if retry == nil {
			return nil
		}
		return retry.C
	}
	reloading := false
	for {
		select {
		case <-ctx.Done():
			return a.stop()
		case <-watchdog:
			a.o.Notifier.Watchdog()
			continue
		case <-a.reload:
			a.log.Info("reload requested")
			a.o.Notifier.Reloading()
			reloading = true
		case <-a.dirty:
		case <-resync.C:
		case <-retryC():
			retry = nil
		}
		err := a.runPass(ctx, watchdog, reloading)
		reloading = false
		// A pass over a large campaign allocates far more than it keeps
		// (the configuration is read, every VM observed): give the memory
		// back between passes rather than hold it until the next.
		debug.FreeOSMemory()
		if ctx.Err() != nil {
			return a.stop()
		}
		iv := a.interval()
		resync.Reset(iv)
		next := time.Now().Add(iv)
		a.setStatus(func(s *Status) {
			s.NextPass = &next
			if err != nil {
				s.LastError = err.Error()
			} else {
				s.LastError = ""
			}
		})
		if due := a.retries.due(); !due.IsZero() {
			if retry != nil {
				retry.Stop()
			}
			retry = time.NewTimer(max(time.Until(due), 0) + 10*time.Millisecond)
		}
		if a.ready {
			a.o.Notifier.Status(a.Status().Line())
		}
	}
}

// stop tells systemd the agent stops; the pass was cancelled with ctx.
func (a *Agent) stop() error {
	a.o.Notifier.Stopping("stopping: " + a.Status().Line())
	a.log.Info("stopped")
	return nil
}

func (a *Agent) interval() time.Duration {
	switch {
	case a.o.Interval > 0:
		return a.o.Interval
	case a.ws != nil && a.ws.w.Config.Agent.Interval > 0:
		return a.ws.w.Config.Agent.Interval
	}
	return schema.DefaultInterval
}

func (a *Agent) autoApply(cfg *schema.Config) bool {
	if a.o.AutoApply != nil {
		return *a.o.AutoApply
	}
	return cfg.Agent.AutoApply
}

// runPass loads the configuration (keeping the last good one when the new
// one does not load) and runs one pass on it, pinging the watchdog while
// the pass shows progress. A pass that does not stop within StopTimeout
// of ctx ending is abandoned: its writes are atomic and the kernel drops
// its lock with the process.
func (a *Agent) runPass(ctx context.Context, watchdog <-chan time.Time, reloading bool) error {
	a.passes++
	n := a.passes
	log := a.log.With("pass", n)
	a.progressed()
	a.passing.Store(true)
	defer a.passing.Store(false)
	if d := inputsDigest(a.o.ConfigDir, a.o.VarFiles); reloading || a.ws == nil || d != a.inputs || time.Since(a.loadedAt) > configReread {
		a.loadConfig(ctx, log)
		a.inputs, a.loadedAt = d, time.Now()
	}
	if a.ws == nil {
		if reloading { // nothing to run, but the reload is over
			a.o.Notifier.Ready("no configuration has loaded yet")
		}
		return errors.New("no configuration has loaded yet")
	}
	// READY=1 as soon as a configuration loaded (and again after each
	// reload), not after the pass: a first pass may export for hours.
	if !a.ready || reloading {
		a.ready = true
		a.o.Notifier.Ready(a.Status().Line())
	}
	done := make(chan error, 1)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { done <- a.pass(pctx, n, log) }()
	for {
		select {
		case err := <-done:
			return err
		case <-watchdog:
			// A pass that stopped showing progress for a whole watchdog
			// period is wedged: no ping, and systemd restarts us.
			if time.Since(time.Unix(0, a.lastProgress.Load())) < 2*a.o.Watchdog {
				a.o.Notifier.Watchdog()
			} else {
				log.Warn("the pass shows no progress; not pinging the watchdog")
			}
		case <-ctx.Done():
			cancel()
			select {
			case err := <-done:
				return err
			case <-time.After(a.o.StopTimeout):
				log.Error("the pass did not stop in time; leaving it", "timeout", a.o.StopTimeout)
				return fmt.Errorf("pass %d did not stop within %s", n, a.o.StopTimeout)
			}
		}
	}
}

// pass runs one reconcile pass on the current workspace.
func (a *Agent) pass(ctx context.Context, n int, log hclog.Logger) error {
	w := a.ws.w
	cfg := w.Config
	a.retries.bounds(a.retryMin(cfg), a.retryMax(cfg))
	a.retries.forget(cfg)
	apply := a.autoApply(cfg)
	mode := pass.ModePlan
	if apply {
		mode = pass.ModeApply
	}
	log.Debug("pass starts", "mode", mode)
	par := a.o.Parallelism
	req := pass.Request{
		Mode: mode, Operation: fmt.Sprintf("agent pass %d", n),
		Plan:        reconcile.PlanRequest{Refresh: true},
		LockTimeout: a.o.LockTimeout,
		LockWaiting: func(h reconcile.LockInfo, _ time.Duration) {
			a.progressed()
			log.Info("waiting for the state lock", "holder", h.String())
		},
		Planned: func(p *reconcile.Plan) {
			a.progressed()
			a.live.planned(p)
			a.notify.Planned(p)
			a.setStatus(func(s *Status) { s.Plan = p })
		},
		Apply: reconcile.ApplyOptions{
			Parallelism: par, SkipAwait: true, Hold: a.retries.hold(cfg),
			Progress: a.progress,
			Events: func(ev reconcile.Event) {
				a.progressed()
				a.live.event(ev)
				switch ev.Status {
				case "failed":
					a.metrics.stepFailed(ctx, ev.Step)
					log.Warn("step failed", "address", ev.Address, "step", ev.Step, "error", ev.Err)
				case "done", "waiting":
					log.Info("step "+ev.Status, "address", ev.Address, "step", ev.Step, "detail", ev.Detail)
				}
			},
		},
	}
	res, err := w.Run(ctx, req)
	took := res.Took
	if err != nil {
		log.Warn("pass failed", "error", err, "took", took)
	} else {
		log.Info("pass done", "took", took, "changes", res.Plan.HasChanges(), "applied", res.Applied != nil)
	}
	if res.Applied != nil {
		a.retries.record(cfg, res.Plan, res.Applied)
	}
	a.afterPass(ctx, w, res, err)
	a.setStatus(func(s *Status) {
		s.Passes = n
		t := res.Started
		s.LastPass, s.LastPassTook, s.AutoApply = &t, took, apply
		if res.Plan != nil {
			s.Plan = res.Plan
			s.OutOfSync, s.Suspended, s.Blocked = outOfSync(res.Plan), res.Plan.Summary.Suspended, res.Plan.Summary.Blocked
		}
		if res.Applied != nil {
			s.Result = res.Applied
		}
	})
	return err
}

func outOfSync(p *reconcile.Plan) int {
	n := 0
	for _, c := range p.Changes {
		if c.Action != reconcile.ActionNoOp {
			n++
		}
	}
	return n
}

func (a *Agent) retryMin(cfg *schema.Config) time.Duration {
	return firstSet(a.o.RetryMin, cfg.Agent.RetryMin, schema.DefaultRetryMin)
}

func (a *Agent) retryMax(cfg *schema.Config) time.Duration {
	return firstSet(a.o.RetryMax, cfg.Agent.RetryMax, schema.DefaultRetryMax)
}

// firstSet is the flag's value, else the config's, else the default.
func firstSet(flag, cfg, def time.Duration) time.Duration {
	switch {
	case flag > 0:
		return flag
	case cfg > 0:
		return cfg
	}
	return def
}
