package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Limits of a run on a store held shared, counted in the store across
// every process working on the campaign (shared.go, docs/state.md
// section 9): a source's and a target's as slots, a converter's from
// the records whose jobs are in flight.

// slotWaitMax caps the pause between two tries for a limit's slot.
const slotWaitMax = 500 * time.Millisecond

// acquireShared takes one of the store's slots of instance's limit,
// trying again, with pauses growing to slotWaitMax, while every slot is
// another's or this process's.
func (r *run) acquireShared(ctx context.Context, instance string) (func(), error) {
	n := r.caps[instance]
	if n == 0 {
		return func() {}, nil
	}
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, slotWaitMax) {
		slot, ok, err := r.e.Store.TakeSlot(instance, n)
		if err != nil {
			return nil, &stateWriteError{err: fmt.Errorf("taking a slot of %s: %w", instance, err)}
		}
		if ok {
			var once sync.Once
			return func() {
				once.Do(func() {
					if err := r.e.Store.GiveSlot(instance, slot); err != nil {
						r.e.log().Warn("could not give a slot back", "limit", instance, "error", err)
					}
				})
			}, nil
		}
		if err := pause(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// pause waits d, or returns errNoSlot when ctx ends first.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", errNoSlot, ctx.Err())
	}
}

// updateJobLimited is update for the write that puts the change's job in
// flight on converter conv: the store refuses it while conv has as many
// jobs in flight as its limit, and it is tried again, the record put
// back as it was meanwhile, until it fits or ctx ends. Waiting is not
// work: the parallelism slot is given back meanwhile, so that this
// process's other migrations can collect the jobs whose end frees the
// converter.
func (ch *change) updateJobLimited(ctx context.Context, conv string, fn func(ms *MigrationState)) error {
	r, addr := ch.r, ch.c.Address
	n := r.caps[conv]
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, slotWaitMax) {
		err := r.updateRecord(addr, fn, n)
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, ErrJobLimit):
			return err
		case r.opts.SkipAwait && r.collecting(conv) == 0:
			// Only a collection frees a slot, and none of this run's
			// is left: a later pass submits the job.
			return &converterFullError{converter: conv, limit: n}
		}
		ch.slot.give()
		if err := pause(ctx, wait); err != nil {
			return err
		}
		if err := ch.slot.take(ctx); err != nil {
			return fmt.Errorf("%w: %w", errNoSlot, err)
		}
	}
}

// collecting counts this run's changes collecting a job of conv now:
// while there are some, a submission waiting for one of conv's slots may
// get the one a collection frees.
func (r *run) collecting(conv string) int {
	r.collectMu.Lock()
	defer r.collectMu.Unlock()
	return r.collects[conv]
}

// collectStart and collected bracket a change that collects a job.
func (r *run) collectStart(conv string) {
	r.collectMu.Lock()
	defer r.collectMu.Unlock()
	if r.collects == nil {
		r.collects = map[string]int{}
	}
	r.collects[conv]++
}

// collectOf is the converter whose job c collects first thing, or "".
func (r *run) collectOf(c *Change) string {
	if c.Phase != PhaseConverted || len(c.Steps) == 0 || c.Steps[0].Kind != StepAwait {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ms := r.st.Migrations[c.Address]; ms != nil && ms.Job != nil {
		return ms.Job.Converter
	}
	return c.Converter
}

// collected says a collection is over (done or not).
func (r *run) collected(conv string) {
	r.collectMu.Lock()
	defer r.collectMu.Unlock()
	r.collects[conv]--
}
