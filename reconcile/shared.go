package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hypersdk/hyperagent/schema"
)

// A run on a store held shared works beside other processes, on this
// host or others, on the same campaign (docs/state.md, section 9):
//
//   - A change runs only while its migration is claimed by this process;
//     one another process claims is left to it (Result.Elsewhere), and so
//     is one whose record another process wrote since this plan was made:
//     the plan's steps for it may be done already.
//   - Records are written one at a time, each against its own version,
//     under its claim: two processes never write the same record, and
//     never lose each other's updates.
//   - A source's and a target's limit are slots in the store, taken by
//     whichever process works; a converter's limit counts the records
//     whose jobs are in flight, whoever submitted them (the intent write
//     of a submission is refused while the converter is full).
//   - The claims and slots live as long as this process's session with
//     the store: one that dies loses them and another takes its
//     migrations over from their last recorded step. The session is
//     checked every SessionCheck; a lost one stops the run, since what
//     it does would no longer be this process's alone.

// defaultSessionCheck is how often a shared run checks its session.
const defaultSessionCheck = 5 * time.Second

// pingTimeout is how long the server has to answer a session check.
const pingTimeout = 5 * time.Second

// slotWaitMax caps the pause between two tries for a limit's slot.
const slotWaitMax = 500 * time.Millisecond

// claim takes the change's migration for this process and makes sure
// the record is still the one the plan was made from; then it syncs the
// record with the configuration (m; nil for a removal). ok false means
// the change does not run, and out says how it ended.
func (r *run) claim(ctx context.Context, c *Change, m *schema.Migration) (release func(), out nodeOutcome, ok bool) {
	a := c.Address
	err := r.e.Store.Claim(a)
	var ce *ClaimedError
	switch {
	case errors.As(err, &ce):
		r.addElsewhere(a, ce.Error())
		return nil, outcomeElsewhere, false
	case err != nil:
		r.fail(ctx, a, "", "", &stateWriteError{err: err})
		return nil, outcomeFailed, false
	}
	release = func() {
		if err := r.e.Store.Release(a); err != nil {
			r.e.log().Warn("could not release the claim", "address", a, "error", err)
		}
	}
	_, moved, err := r.e.Store.LoadRecord(a)
	if err != nil {
		release()
		r.fail(ctx, a, "", "", &stateWriteError{err: err})
		return nil, outcomeFailed, false
	}
	if moved {
		release()
		r.addElsewhere(a, "another process worked on it since this plan was made; the next pass plans it again")
		return nil, outcomeElsewhere, false
	}
	if m != nil {
		r.mu.Lock()
		var werr error
		if r.syncOne(m) {
			werr = r.write(a)
		}
		r.mu.Unlock()
		if werr != nil {
			release()
			r.fail(ctx, a, "", "", werr)
			return nil, outcomeFailed, false
		}
	}
	return release, outcomeDone, true
}

func (r *run) addElsewhere(addr, why string) {
	r.resMu.Lock()
	defer r.resMu.Unlock()
	r.res.Elsewhere = append(r.res.Elsewhere, Skip{Address: addr, Reason: why})
}

// syncShared syncs, each under its claim, the records of configured
// migrations whose change will not run (no change, blocked, suspended):
// a change that runs syncs its own when it claims it. A record another
// process claims is left to it.
func (r *run) syncShared() error {
	for _, m := range r.e.Config.Migrations {
		a := m.Addr.String()
		if c := r.change(a); c != nil && c.Action != ActionNoOp && !c.Blocked && !c.Suspended {
			continue
		}
		r.mu.Lock()
		want := r.wantsSync(m)
		r.mu.Unlock()
		if !want {
			continue
		}
		err := r.e.Store.Claim(a)
		var ce *ClaimedError
		if errors.As(err, &ce) {
			continue
		}
		if err != nil {
			return &stateWriteError{err: err}
		}
		err = r.syncClaimed(m)
		if rerr := r.e.Store.Release(a); rerr != nil {
			r.e.log().Warn("could not release the claim", "address", a, "error", rerr)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// syncClaimed syncs the record of m, claimed, as stored now.
func (r *run) syncClaimed(m *schema.Migration) error {
	a := m.Addr.String()
	ms, _, err := r.e.Store.LoadRecord(a)
	if err != nil {
		return &stateWriteError{err: err}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ms == nil {
		delete(r.st.Migrations, a)
	} else {
		r.st.Migrations[a] = ms
	}
	if !r.syncOne(m) {
		return nil
	}
	return r.write(a)
}

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
		r.mu.Lock()
		ms := r.st.Migrations[addr]
		prev := *ms
		fn(ms)
		ms.UpdatedAt = r.e.now()
		err := r.e.Store.WriteRecord(r.st, addr, n)
		if errors.Is(err, ErrJobLimit) {
			*ms = prev
		}
		r.mu.Unlock()
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, ErrJobLimit):
			return &stateWriteError{err: err}
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

// watchSession checks the store's session every SessionCheck while the
// run goes on. A lost session lost this process's claims and slots:
// another process may take its migrations over, so the run stops (as
// when a state write fails).
func (r *run) watchSession(ctx context.Context, cancel func()) {
	iv := r.e.SessionCheck
	if iv <= 0 {
		iv = defaultSessionCheck
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := r.e.Store.Ping(pingTimeout)
		if err != nil && ctx.Err() == nil {
			r.e.log().Error("the state store's session was lost; stopping", "error", err)
			r.resMu.Lock()
			if r.fatal == nil {
				r.fatal = &stateWriteError{err: fmt.Errorf("the session holding this process's claims ended, so other processes may take its migrations over: %w", err)}
			}
			r.resMu.Unlock()
			cancel()
			return
		}
	}
}
