package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// change is one change of the plan in progress.
type change struct {
	r    *run
	m    *schema.Migration // nil for a removal
	c    *Change
	slot *slot // the change's share of the parallelism
	// convRelease holds the converter's limit from submit until await
	// ends: a job is "in flight" for the converter's max_parallel.
	convRelease func()
}

// runChange runs one change's steps in order, writing state after each,
// and records how it ended in the run's result.
func (r *run) runChange(ctx context.Context, c *Change, sl *slot) nodeOutcome {
	if conv := r.collectOf(c); conv != "" {
		r.collectStart(conv)
		defer r.collected(conv)
	}
	var m *schema.Migration
	if c.Action != ActionDelete {
		a, err := addrs.ParseMigration(c.Address)
		if err == nil {
			if m = r.e.Config.Migration(a); m == nil {
				err = fmt.Errorf("%s is in the plan but not in the configuration", c.Address)
			}
		}
		if err != nil {
			r.fail(ctx, c.Address, "", "", err)
			return outcomeFailed
		}
	}
	if r.shared {
		release, out, ok := r.claim(ctx, c, m)
		if !ok {
			return out
		}
		defer release()
	}
	ch := &change{r: r, m: m, c: c, slot: sl}
	defer ch.releaseConverter()
	for i, s := range c.Steps {
		// A job that had finished when the plan was made is collected
		// now; one still queued or converting is left to a later pass.
		if s.Kind == StepAwait && r.opts.SkipAwait && c.Phase != PhaseConverted {
			ch.keepConverter()
			r.emit(Event{Address: c.Address, Step: s.Kind, Status: "waiting", Detail: s.Detail})
			r.resMu.Lock()
			r.res.Waiting = append(r.res.Waiting, Wait{Address: c.Address, JobID: ch.jobID(s)})
			r.resMu.Unlock()
			return outcomeWaiting
		}
		r.emit(Event{Address: c.Address, Step: s.Kind, Status: "start", Detail: s.Detail})
		note, err := ch.step(ctx, s)
		if err != nil && i == 0 && errors.Is(err, errNoSlot) {
			// Cancelled before its first step could start: nothing
			// happened, nothing to record.
			return outcomeNotStarted
		}
		var full *converterFullError
		if errors.As(err, &full) {
			r.emit(Event{Address: c.Address, Step: s.Kind, Status: "waiting", Detail: full.Error()})
			r.addSkip(c.Address, full.Error())
			return outcomeSkipped
		}
		if err != nil {
			err = fmt.Errorf("%s %s: %w", s.Kind, c.Address, err)
			r.emit(Event{Address: c.Address, Step: s.Kind, Status: "failed", Err: err})
			r.recordError(c.Address, s.Kind, err, ctx.Err() != nil)
			r.fail(ctx, c.Address, s.Kind, ch.pluginOf(s), err)
			return outcomeFailed
		}
		if note != "" {
			r.resMu.Lock()
			r.res.Notes = append(r.res.Notes, c.Address+": "+note)
			r.resMu.Unlock()
		}
		r.emit(Event{Address: c.Address, Step: s.Kind, Status: "done", Detail: s.Detail})
	}
	r.resMu.Lock()
	if c.Action == ActionDelete {
		r.res.Removed = append(r.res.Removed, c.Address)
	} else {
		r.res.Migrated = append(r.res.Migrated, c.Address)
	}
	r.resMu.Unlock()
	return outcomeDone
}

// fail records a failed change in the result: interrupted when the run
// was cancelled, fatal (the run stops) when state could not be written.
func (r *run) fail(ctx context.Context, addr string, step StepKind, plugin string, err error) {
	f := Failure{Address: addr, Step: step, Error: r.e.Redact.String(err.Error()), Terminal: plugins.IsTerminal(err),
		Config: PlaceOf(r.e.Config, plugin, err)}
	r.resMu.Lock()
	defer r.resMu.Unlock()
	var we *stateWriteError
	switch {
	case errors.As(err, &we):
		if r.fatal == nil {
			r.fatal = err
		}
		r.res.Failed = append(r.res.Failed, f)
	case ctx.Err() != nil:
		r.res.Interrupted = append(r.res.Interrupted, f)
	default:
		r.res.Failed = append(r.res.Failed, f)
	}
}

// pluginOf is the plugin instance a step calls.
func (ch *change) pluginOf(s Step) string {
	switch s.Kind {
	case StepExport, StepPrune:
		return ch.c.Source
	case StepDefine:
		return ch.c.Target
	case StepAwait, StepWithdraw:
		if ms := ch.r.record(ch.c.Address); ms.Job != nil {
			return ms.Job.Converter
		}
	}
	return ch.c.Converter
}

func (ch *change) releaseConverter() {
	if ch.convRelease != nil {
		ch.convRelease()
		ch.convRelease = nil
	}
}

// keepConverter leaves the converter's slot taken past this run: the job
// is in flight until a later pass sees it end.
func (ch *change) keepConverter() { ch.convRelease = nil }

// jobID is the job a step is about: the plan's, or the one state recorded
// (a submit may have been answered with another id).
func (ch *change) jobID(s Step) string {
	if ms := ch.r.record(ch.c.Address); ms.Job != nil {
		return ms.Job.ID
	}
	return s.JobID
}

func (ch *change) step(ctx context.Context, s Step) (note string, err error) {
	switch s.Kind {
	case StepExport:
		return "", ch.export(ctx, s)
	case StepSubmit:
		return "", ch.submit(ctx, s)
	case StepAwait:
		return "", ch.await(ctx, s)
	case StepDefine:
		return "", ch.define(ctx, s)
	case StepWithdraw:
		return ch.withdraw(ctx, s)
	case StepPrune:
		return "", ch.prune(ctx)
	case StepForget:
		r := ch.r
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.st.Migrations, ch.c.Address)
		return "", r.write(ch.c.Address)
	}
	return "", plugins.Terminal(fmt.Errorf("unknown step %q", s.Kind))
}
