package agent

import (
	"sync"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
)

// live follows the campaign between and during passes: the last plan,
// each migration's step as the engine reports it, the bytes its source
// reports, and what state recorded when the last pass ended. The API's
// views of migrations and the metrics' gauges are computed from it, so a
// pass that exports for hours shows its progress as it goes.
//
// Everything in it is redacted: plans, events and results come redacted
// from the pass, and progress item names are redacted here.
type live struct {
	mu     sync.Mutex
	now    func() time.Time
	redact func(string) string

	plan   *reconcile.Plan
	waves  map[string]int
	byAddr map[string]*liveMigration
	// recorded is what state said when the last pass ended.
	recorded map[string]recorded
}

// liveMigration is what the engine reported of one migration.
type liveMigration struct {
	step      reconcile.StepKind
	stepState string // running | done | failed | waiting
	since     time.Time
	err       string
	errAt     time.Time
	errStep   reconcile.StepKind
	// reached is the phase the steps done since the plan took the
	// migration to ("" for none yet).
	reached reconcile.Phase
	// awaited says an await step ended since the last record: its
	// outputs are new in state.
	awaited bool
	items   map[string]*liveItem // the running export's files, by name
	samples []sample             // their total done over time, for the rate
	lastAt  time.Time            // the last report
}

type liveItem struct{ done, total int64 }

type sample struct {
	at   time.Time
	done int64
}

// rateWindow is how far back the transfer rate looks; rateSample is the
// least time between two samples.
const (
	rateWindow = 30 * time.Second
	rateSample = 250 * time.Millisecond
)

// recorded is the part of a migration's state record the views show.
type recorded struct {
	attempt     int
	jobID       string
	converter   string
	submittedAt *time.Time
	lastError   *reconcile.ErrorRecord
	outputBytes int64
}

func newLive(now func() time.Time, redact func(string) string) *live {
	return &live{now: now, redact: redact, byAddr: map[string]*liveMigration{}, recorded: map[string]recorded{}}
}

func (l *live) get(addr string) *liveMigration {
	m := l.byAddr[addr]
	if m == nil {
		m = &liveMigration{items: map[string]*liveItem{}}
		l.byAddr[addr] = m
	}
	return m
}

// planned takes a new plan: phases start again from what it observed,
// and migrations no longer in it are forgotten.
func (l *live) planned(p *reconcile.Plan) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.plan, l.waves = p, p.Waves()
	for a, m := range l.byAddr {
		if p.Change(a) == nil {
			delete(l.byAddr, a)
			continue
		}
		m.reached = ""
	}
}

// event follows a step starting or ending.
func (l *live) event(ev reconcile.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.get(ev.Address)
	now := l.now()
	switch ev.Status {
	case "start":
		m.step, m.stepState, m.since = ev.Step, "running", now
		if ev.Step == reconcile.StepExport {
			m.items, m.samples = map[string]*liveItem{}, nil
		}
	case "done":
		m.step, m.stepState = ev.Step, "done"
		m.err, m.errStep = "", ""
		if ph := phaseAfter(ev.Step); ph != "" {
			m.reached = ph
		}
		if ev.Step == reconcile.StepAwait {
			m.awaited = true
		}
	case "failed":
		m.step, m.stepState = ev.Step, "failed"
		if ev.Err != nil {
			m.err, m.errAt, m.errStep = ev.Err.Error(), now, ev.Step
		}
	case "waiting":
		m.step, m.stepState, m.since = ev.Step, "waiting", now
	}
}

// phaseAfter is the phase a migration is in once step is done.
func phaseAfter(step reconcile.StepKind) reconcile.Phase {
	switch step {
	case reconcile.StepExport:
		return reconcile.PhaseExported
	case reconcile.StepSubmit:
		return reconcile.PhaseQueued
	case reconcile.StepAwait:
		return reconcile.PhaseConverted
	case reconcile.StepDefine:
		return reconcile.PhaseDefined
	}
	return ""
}

// progress follows the bytes a source reports and returns how many are
// new since its last report of the item (a transfer that starts over
// counts again: those bytes moved again).
func (l *live) progress(ev plugins.ProgressEvent) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.get(ev.Address)
	name := l.redact(ev.Item)
	it := m.items[name]
	if it == nil {
		it = &liveItem{}
		m.items[name] = it
	}
	delta := ev.Done - it.done
	if delta < 0 {
		delta = ev.Done
	}
	it.done, it.total = ev.Done, ev.Total
	now := l.now()
	m.lastAt = now
	if n := len(m.samples); n == 0 || now.Sub(m.samples[n-1].at) >= rateSample {
		var done int64
		for _, x := range m.items {
			done += x.done
		}
		m.samples = append(m.samples, sample{now, done})
		for len(m.samples) > 2 && now.Sub(m.samples[0].at) > rateWindow {
			m.samples = m.samples[1:]
		}
	}
	return max(delta, 0)
}

// record keeps what state says after a pass, and returns the bytes of
// the outputs the awaits that ended since the last call recorded.
func (l *live) record(st *reconcile.State) (converted int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := make(map[string]recorded, len(st.Migrations))
	for a, ms := range st.Migrations {
		r := recorded{attempt: ms.Attempts, lastError: ms.LastError}
		if ms.Job != nil {
			r.attempt, r.jobID, r.converter, r.submittedAt = ms.Job.Attempt, ms.Job.ID, ms.Job.Converter, ms.Job.SubmittedAt
		}
		for _, o := range ms.Outputs {
			r.outputBytes += o.Size
		}
		next[a] = r
	}
	for a, m := range l.byAddr {
		if m.awaited {
			converted += next[a].outputBytes
			m.awaited = false
		}
	}
	l.recorded = next
	return converted
}
