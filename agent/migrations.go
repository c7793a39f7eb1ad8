package agent

import (
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
)

// MigrationStatus is one migration as the agent sees it now: the phase
// the last plan observed, moved on by the steps done since; the step
// running or last run; the progress its plugin reports; and what failed.
type MigrationStatus struct {
	Address string           `json:"address"`
	Phase   reconcile.Phase  `json:"phase"`
	Action  reconcile.Action `json:"action"` // what the last plan does to it
	Reason  string           `json:"reason,omitempty"`
	// Wave is the migration's depth in the depends_on graph: 0 with no
	// dependencies, else one more than its deepest dependency.
	Wave      int      `json:"wave"`
	DependsOn []string `json:"depends_on"`
	Suspended bool     `json:"suspended"`
	// Blocked is set when an error finding (or prevent_destroy) stops
	// the migration; Findings are the plugins' pre-flight findings.
	Blocked  bool                `json:"blocked"`
	Findings []reconcile.Finding `json:"findings"`

	// Step is the step running now or the last one that ran in this
	// agent; StepState is running, done, failed or waiting (a job in the
	// converter's hands).
	Step      reconcile.StepKind `json:"step,omitempty"`
	StepState string             `json:"step_state,omitempty"`
	// Progress is set while a step runs or a conversion is under way.
	Progress *Progress `json:"progress,omitempty"`

	Converter string `json:"converter,omitempty"` // the job's, else the configured one
	JobID     string `json:"job_id,omitempty"`
	// Attempt is the converter job's attempt number (0 before the first
	// submission).
	Attempt   int                    `json:"attempt"`
	LastError *reconcile.ErrorRecord `json:"last_error,omitempty"`
	// Retry says when the agent tries again after a failure (absent when
	// it is not held).
	Retry *RetryStatus `json:"retry,omitempty"`
}

// Progress is how far a running step is.
type Progress struct {
	// Since is when the step started (for a conversion, when its job was
	// submitted); Elapsed is the time since.
	Since          time.Time `json:"since"`
	ElapsedSeconds float64   `json:"elapsed_seconds"`
	// Bytes is null when the step reports no figures: a conversion whose
	// converter publishes none (the hyper2kvm daemon), or a source or
	// worker that reported nothing yet.
	Bytes *ByteProgress `json:"bytes"`
}

// ByteProgress is what the source reported of the bytes it moves, or the
// converter of the bytes of its job's input it converted.
type ByteProgress struct {
	Done int64 `json:"done"`
	// Total is -1 when the source does not know it.
	Total int64 `json:"total"`
	// RateBytesPerSecond is over the last 30 s of reports; 0 until two
	// reports at least 250 ms apart came.
	RateBytesPerSecond float64 `json:"rate_bytes_per_second"`
	// ETASeconds is null when the total or the rate is unknown.
	ETASeconds *float64 `json:"eta_seconds"`
}

// Migrations returns every migration of the last plan, sorted by
// address; nil before the first plan.
func (a *Agent) Migrations() []MigrationStatus {
	held := map[string]RetryStatus{}
	for _, r := range a.retries.status() {
		held[r.Address] = r
	}
	return a.live.migrations(held)
}

func (l *live) migrations(held map[string]RetryStatus) []MigrationStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.plan == nil {
		return nil
	}
	now := l.now()
	out := make([]MigrationStatus, 0, len(l.plan.Changes))
	for i := range l.plan.Changes {
		out = append(out, l.migration(&l.plan.Changes[i], held, now))
	}
	return out
}

// migration builds one view; the caller holds l.mu.
func (l *live) migration(c *reconcile.Change, held map[string]RetryStatus, now time.Time) MigrationStatus {
	rec := l.recorded[c.Address]
	ms := MigrationStatus{
		Address: c.Address, Phase: c.Phase, Action: c.Action, Reason: c.Reason, Wave: l.waves[c.Address],
		DependsOn: append([]string{}, c.DependsOn...), Suspended: c.Suspended, Blocked: c.Blocked,
		Findings:  append([]reconcile.Finding{}, c.Findings...),
		Converter: c.Converter, JobID: rec.jobID, Attempt: rec.attempt, LastError: rec.lastError,
	}
	if c.Action == reconcile.ActionDelete {
		ms.Phase = reconcile.PhaseRemoved
	}
	if rec.converter != "" {
		ms.Converter = rec.converter
	}
	if r, ok := held[c.Address]; ok {
		ms.Retry = &r
	}
	m := l.byAddr[c.Address]
	if m != nil {
		if m.reached != "" {
			ms.Phase = m.reached
		}
		ms.Step, ms.StepState = m.step, m.stepState
		if m.err != "" && (ms.LastError == nil || m.errAt.After(ms.LastError.At)) {
			ms.LastError = &reconcile.ErrorRecord{Step: m.errStep, Message: m.err, At: m.errAt}
		}
		if m.stepState == "running" {
			ms.Progress = m.progressView(now)
		}
	}
	if ms.Progress == nil && (ms.Phase == reconcile.PhaseQueued || ms.Phase == reconcile.PhaseConverting) && rec.submittedAt != nil {
		// The time since the job was submitted, and the figures of the
		// job its converter reported, if it reports any.
		ms.Progress = &Progress{Since: *rec.submittedAt, ElapsedSeconds: now.Sub(*rec.submittedAt).Seconds()}
		if m != nil && rec.jobID != "" && m.convItem == plugins.ConversionItem(rec.jobID) {
			ms.Progress.Bytes = m.conv.bytes()
		}
		if ms.Step == "" {
			ms.Step, ms.StepState = reconcile.StepAwait, "waiting"
		}
	}
	return ms
}

// progressView sums the items of the running step.
func (m *liveMigration) progressView(now time.Time) *Progress {
	return &Progress{Since: m.since, ElapsedSeconds: now.Sub(m.since).Seconds(), Bytes: m.export.bytes()}
}

// bytes sums the items, with the rate and ETA; nil before any report.
func (mt *meter) bytes() *ByteProgress {
	if len(mt.items) == 0 {
		return nil
	}
	b := &ByteProgress{}
	for _, it := range mt.items {
		b.Done += it.done
		if it.total < 0 || b.Total < 0 {
			b.Total = -1
		} else {
			b.Total += it.total
		}
	}
	b.RateBytesPerSecond = mt.rate.Rate()
	if eta := plugins.ETA(b.Done, b.Total, b.RateBytesPerSecond); eta != nil && b.Total > 0 {
		s := eta.Seconds()
		b.ETASeconds = &s
	}
	return b
}

// phaseOf is c's phase now: the plan's, moved on by the steps done
// since. The caller holds l.mu.
func (l *live) phaseOf(c reconcile.Change) reconcile.Phase {
	if m := l.byAddr[c.Address]; m != nil && m.reached != "" {
		return m.reached
	}
	return c.Phase
}

// phases counts the configured migrations by their phase now.
func (l *live) phases() map[reconcile.Phase]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[reconcile.Phase]int{}
	if l.plan == nil {
		return out
	}
	for _, c := range l.plan.Changes {
		if c.Action == reconcile.ActionDelete {
			continue
		}
		ph := l.phaseOf(c)
		out[ph]++
	}
	return out
}

// queues counts, by converter, the jobs queued and converting now.
func (l *live) queues() map[string][2]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][2]int{}
	if l.plan == nil {
		return out
	}
	for _, c := range l.plan.Changes {
		ph := l.phaseOf(c)
		cv := c.Converter
		if r := l.recorded[c.Address]; r.converter != "" {
			cv = r.converter
		}
		if cv == "" {
			continue
		}
		q := out[cv]
		switch ph {
		case reconcile.PhaseQueued:
			q[0]++
		case reconcile.PhaseConverting:
			q[1]++
		}
		out[cv] = q
	}
	return out
}
