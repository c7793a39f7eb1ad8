package agent

import (
	"sync"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
)

// live follows the campaign between and during passes: the last plan,
// each migration's step as the engine reports it, the bytes its source
// reports, the bytes its converter reports of its job (read between
// passes, conversions.go), and what state recorded when the last pass
// ended. The API's views of migrations and the metrics' gauges are
// computed from it, so a pass that exports for hours, and a conversion
// that runs for hours between passes, show their progress as they go.
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
	export  meter // the running export's files, by name
	// conv is the conversion's figures as its converter reports them,
	// for the job whose item (plugins.ConversionItem) is convItem.
	conv     meter
	convItem string
}

// meter adds up the bytes reported of a step's items, and keeps their
// total over time for the rate.
type meter struct {
	items map[string]*liveItem // by name
	rate  plugins.Throughput   // their total done over time
}

type liveItem struct{ done, total int64 }

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
		m = &liveMigration{}
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
			m.export = meter{}
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
	return l.get(ev.Address).export.report(l.redact(ev.Item), ev.Done, ev.Total, l.now())
}

// conversion follows the bytes a converter reports of a migration's job
// (Item: plugins.ConversionItem of the job id); a new job starts over.
func (l *live) conversion(ev plugins.ProgressEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.get(ev.Address)
	if m.convItem != ev.Item {
		m.conv, m.convItem = meter{}, ev.Item
	}
	m.conv.report(ev.Item, ev.Done, ev.Total, l.now())
}

// report takes an item's figures at now and returns how many bytes are new
// since its last report.
func (mt *meter) report(name string, done, total int64, now time.Time) int64 {
	if mt.items == nil {
		mt.items = map[string]*liveItem{}
	}
	it := mt.items[name]
	if it == nil {
		it = &liveItem{}
		mt.items[name] = it
	}
	delta := done - it.done
	if delta < 0 {
		delta = done
	}
	it.done, it.total = done, total
	var sum int64
	for _, x := range mt.items {
		sum += x.done
	}
	mt.rate.Add(now, sum)
	return max(delta, 0)
}

// converting lists, by converter, the jobs queued or converting now whose
// figures to read.
func (l *live) converting() map[string][]plugins.JobQuery {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]plugins.JobQuery{}
	if l.plan == nil {
		return out
	}
	for _, c := range l.plan.Changes {
		ph := l.phaseOf(c)
		r := l.recorded[c.Address]
		if (ph != reconcile.PhaseQueued && ph != reconcile.PhaseConverting) || r.jobID == "" || r.converter == "" {
			continue
		}
		q := plugins.JobQuery{Address: c.Address, JobID: r.jobID}
		if r.submittedAt != nil {
			q.SubmittedAt = *r.submittedAt
		}
		out[r.converter] = append(out[r.converter], q)
	}
	return out
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
