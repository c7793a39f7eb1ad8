package reconcile

import (
	"errors"
)

// stateWriteError means state could not be persisted: the run must stop,
// since further effects could not be recorded.
type stateWriteError struct{ err error }

func (e *stateWriteError) Error() string { return e.err.Error() }
func (e *stateWriteError) Unwrap() error { return e.err }

// write persists the state, every change made so far included; the
// caller holds r.mu.
func (r *run) write() error {
	if err := r.e.Store.Write(r.st); err != nil {
		return &stateWriteError{err: err}
	}
	r.written = r.changes
	return nil
}

// update mutates the migration's record under the lock and returns once
// state holding that change is written. Writes are shared (a group
// commit): a migration whose change was made while another's write was
// under way waits for the lock, and finds its change already written by
// whichever waiter wrote next, so that migrations finishing steps at the
// same time wait for one fsync, not one each.
func (r *run) update(addr string, fn func(ms *MigrationState)) error {
	r.mu.Lock()
	ms := r.st.Migrations[addr]
	fn(ms)
	ms.UpdatedAt = r.e.now()
	r.changes++
	mine := r.changes
	r.mu.Unlock()

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.written >= mine {
		return nil
	}
	return r.write()
}

// record returns a copy of the migration's record, read under the lock
// (zero once it is forgotten).
func (r *run) record(addr string) MigrationState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ms := r.st.Migrations[addr]; ms != nil {
		return *ms
	}
	return MigrationState{Address: addr}
}

// syncRecords creates records for planned migrations and refreshes the
// metadata state keeps about configured ones (prevent_destroy, plugin
// addresses), writing once if anything changed.
func (r *run) syncRecords() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, m := range r.e.Config.Migrations {
		a := m.Addr.String()
		ms := r.st.Migrations[a]
		c := r.plan.Change(a)
		if ms == nil && (c == nil || c.Action == ActionNoOp || c.Blocked) {
			continue
		}
		if ms == nil {
			now := r.e.now()
			ms = &MigrationState{Address: a, CreatedAt: now, UpdatedAt: now}
			r.st.Migrations[a] = ms
			changed = true
		}
		if ms.PreventDestroy != m.PreventDestroy || ms.Source != m.Source.String() || ms.VM != m.VM ||
			ms.Converter != m.Converter.String() || ms.Target != m.Target.String() {
			ms.PreventDestroy, ms.VM = m.PreventDestroy, m.VM
			ms.Source, ms.Converter, ms.Target = m.Source.String(), m.Converter.String(), m.Target.String()
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return r.write()
}

// recordError records a step's failure as the migration's last error.
func (r *run) recordError(addr string, step StepKind, err error, interrupted bool) {
	msg := r.e.Redact.String(err.Error())
	if interrupted {
		msg = "interrupted: " + msg
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ms := r.st.Migrations[addr]
	if ms == nil {
		return
	}
	var we *stateWriteError
	if errors.As(err, &we) {
		return // writing again would fail the same way
	}
	ms.LastError = &ErrorRecord{Step: step, Message: msg, At: r.e.now()}
	ms.UpdatedAt = r.e.now()
	if werr := r.write(); werr != nil {
		r.e.log().Error("could not record the failure in state", "address", addr, "error", werr)
	}
}
