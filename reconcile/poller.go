package reconcile

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
)

// unknownLimit is how many consecutive observations may miss a submitted
// job before await gives up on it: a converter moves job files by rename,
// so a job is never legitimately invisible for long.
const unknownLimit = 3

// jobPoller awaits the jobs of one converter with ONE ObserveJobs call per
// round for all waiters, at an interval, woken early by the converter's
// Watcher when it has one. The converter's own stalled/timeout reporting
// ends a wait that would otherwise never end.
//
// When the converter is a plugins.JobProgressReporter and the run has a
// Progress hook, the poller also reads how far the waited-for jobs are,
// every progressEvery (at most the interval), in one ReportProgress call
// for all waiters, and passes on the figures that moved. A job that ends
// in success after figures with a total were seen gets one last event at
// its total: it converted all of its input. A job whose converter
// publishes no figures gets none, never made-up ones.
type jobPoller struct {
	name     string
	conv     plugins.Converter
	interval time.Duration
	log      hclog.Logger
	progress plugins.Progress            // nil: figures are not read
	reporter plugins.JobProgressReporter // nil: neither

	mu      sync.Mutex
	waiters map[string]*jobWaiter // by job id
	wake    chan struct{}
}

type jobWaiter struct {
	q       plugins.JobQuery
	unknown int
	done    chan jobAnswer
	// figures are the last progress passed on; nil before any.
	figures *plugins.ProgressEvent
}

// progressEvery is how often a poller reads progress, at most.
const progressEvery = time.Second

type jobAnswer struct {
	obs plugins.JobObservation
	err error
}

func newJobPoller(ctx context.Context, name string, conv plugins.Converter, interval time.Duration, log hclog.Logger,
	progress plugins.Progress) *jobPoller {
	p := &jobPoller{name: name, conv: conv, interval: interval, log: log,
		waiters: map[string]*jobWaiter{}, wake: make(chan struct{}, 1)}
	if r, ok := conv.(plugins.JobProgressReporter); ok && progress != nil {
		p.progress, p.reporter = progress, r
	}
	if w, ok := conv.(plugins.Watcher); ok {
		go func() {
			if err := w.Watch(ctx, p.poke); err != nil && ctx.Err() == nil {
				log.Warn("converter watch ended; observing on the interval only", "converter", name, "error", err)
			}
		}()
	}
	go p.loop(ctx)
	return p
}

func (p *jobPoller) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// wait blocks until the job succeeds, fails or stalls, or ctx ends.
func (p *jobPoller) wait(ctx context.Context, q plugins.JobQuery) (plugins.JobObservation, error) {
	w := &jobWaiter{q: q, done: make(chan jobAnswer, 1)}
	p.mu.Lock()
	p.waiters[q.JobID] = w
	p.mu.Unlock()
	p.poke()
	select {
	case a := <-w.done:
		return a.obs, a.err
	case <-ctx.Done():
		p.mu.Lock()
		delete(p.waiters, q.JobID)
		p.mu.Unlock()
		return plugins.JobObservation{}, ctx.Err()
	}
}

func (p *jobPoller) loop(ctx context.Context) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	var figures <-chan time.Time
	if p.reporter != nil {
		ft := time.NewTicker(min(p.interval, progressEvery))
		defer ft.Stop()
		figures = ft.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.wake:
		case <-figures:
			p.readProgress(ctx)
			continue
		}
		p.round(ctx)
	}
}

// queries are the waiting jobs.
func (p *jobPoller) queries() []plugins.JobQuery {
	p.mu.Lock()
	defer p.mu.Unlock()
	qs := make([]plugins.JobQuery, 0, len(p.waiters))
	for _, w := range p.waiters {
		qs = append(qs, w.q)
	}
	return qs
}

// readProgress asks the converter how far the waited-for jobs are, and
// passes on the figures that moved.
func (p *jobPoller) readProgress(ctx context.Context) {
	req := plugins.JobProgressRequest{Jobs: p.queries()}
	if len(req.Jobs) == 0 {
		return
	}
	req.Progress = func(ev plugins.ProgressEvent) {
		p.mu.Lock()
		moved := false
		for _, w := range p.waiters {
			if w.q.Address == ev.Address && ev.Item == plugins.ConversionItem(w.q.JobID) {
				moved = w.figures == nil || *w.figures != ev
				w.figures = &ev
			}
		}
		p.mu.Unlock()
		if moved {
			p.progress(ev)
		}
	}
	if err := p.reporter.ReportProgress(ctx, req); err != nil && ctx.Err() == nil {
		p.log.Debug("reading the jobs' progress failed", "converter", p.name, "error", err)
	}
}

// round observes every waiting job in one call and answers the finished.
func (p *jobPoller) round(ctx context.Context) {
	req := plugins.ObserveJobsRequest{Jobs: p.queries()}
	if len(req.Jobs) == 0 {
		return
	}
	resp, err := p.conv.ObserveJobs(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		if plugins.IsTerminal(err) {
			p.finishAll(fmt.Errorf("observe jobs of %s: %w", p.name, err))
			return
		}
		p.log.Warn("observing jobs failed; trying again", "converter", p.name, "error", err)
		return
	}
	var whole []plugins.ProgressEvent
	p.mu.Lock()
	defer func() {
		p.mu.Unlock()
		for _, ev := range whole {
			p.progress(ev)
		}
	}()
	for id, w := range p.waiters {
		obs, ok := resp.Jobs[id]
		if !ok {
			obs = plugins.JobObservation{JobID: id, State: plugins.JobUnknown}
		}
		switch obs.State {
		case plugins.JobSucceeded, plugins.JobFailed, plugins.JobStalled:
			if f := w.figures; obs.State == plugins.JobSucceeded && f != nil && f.Total > 0 && f.Done < f.Total {
				whole = append(whole, plugins.ProgressEvent{Address: f.Address, Item: f.Item, Done: f.Total, Total: f.Total})
			}
			w.done <- jobAnswer{obs: obs}
			delete(p.waiters, id)
		case plugins.JobUnknown:
			if w.unknown++; w.unknown >= unknownLimit {
				w.done <- jobAnswer{err: fmt.Errorf("job %s is not known to %s", id, p.name)}
				delete(p.waiters, id)
			}
		default:
			w.unknown = 0
		}
	}
}

func (p *jobPoller) finishAll(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, w := range p.waiters {
		w.done <- jobAnswer{err: err}
		delete(p.waiters, id)
	}
}
