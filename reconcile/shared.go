package reconcile

import (
	"context"
	"errors"
	"fmt"
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
