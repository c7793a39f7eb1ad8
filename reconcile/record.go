package reconcile

import (
	"errors"

	"github.com/hypersdk/hyperagent/schema"
)

// stateWriteError means state could not be persisted: the run must stop,
// since further effects could not be recorded.
type stateWriteError struct{ err error }

func (e *stateWriteError) Error() string { return e.err.Error() }
func (e *stateWriteError) Unwrap() error { return e.err }

// write persists the state after the record of addr changed: the
// whole state, or (shared) that record alone. The caller holds r.mu.
func (r *run) write(addr string) error {
	var err error
	if r.shared {
		err = r.e.Store.WriteRecord(r.st, addr, 0)
	} else {
		err = r.e.Store.Write(r.st)
	}
	if err != nil {
		return &stateWriteError{err: err}
	}
	r.written = r.updates
	return nil
}

// update changes the migration's record with fn and returns once state
// holding that change is written. Whole-state writes are shared (a group
// commit): the change is queued without waiting for the write under way,
// and whichever waiter takes the lock next applies every change queued
// meanwhile, in order, and writes them in one go; the others find their
// change written. So steps ending while a write is under way wait for it
// and one more, not one write each. On a shared store each record is
// changed and written alone, under its claim.
func (r *run) update(addr string, fn func(ms *MigrationState)) error {
	if r.shared {
		return r.updateRecord(addr, fn, 0)
	}
	r.queueMu.Lock()
	r.queue = append(r.queue, queuedUpdate{addr: addr, fn: fn})
	r.queued++
	mine := r.queued
	r.queueMu.Unlock()

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.written >= mine {
		return nil
	}
	r.applyQueued()
	return r.write(addr)
}

// updateRecord is update on a shared store: the record changed with fn
// and written alone, under its claim, counting jobLimit (0: none) against
// its converter's jobs in flight. A write refused for that limit
// (ErrJobLimit, returned as is) leaves the record as it was.
func (r *run) updateRecord(addr string, fn func(ms *MigrationState), jobLimit int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ms := r.st.Migrations[addr]
	prev := *ms
	fn(ms)
	ms.UpdatedAt = r.e.now()
	err := r.e.Store.WriteRecord(r.st, addr, jobLimit)
	switch {
	case errors.Is(err, ErrJobLimit):
		*ms = prev
		return err
	case err != nil:
		return &stateWriteError{err: err}
	}
	return nil
}

// queuedUpdate is a change update has queued and not yet applied.
type queuedUpdate struct {
	addr string
	fn   func(ms *MigrationState)
}

// applyQueued applies the changes queued so far to st, in the order they
// were queued. The caller holds r.mu.
func (r *run) applyQueued() {
	r.queueMu.Lock()
	batch, upto := r.queue, r.queued
	r.queue = nil
	r.queueMu.Unlock()
	now := r.e.now()
	for _, u := range batch {
		ms := r.st.Migrations[u.addr]
		u.fn(ms)
		ms.UpdatedAt = now
	}
	r.updates = upto
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
// addresses), writing once if anything changed. Shared, each record is
// synced under its claim: here those of changes that will not run, the
// others when their change claims them (syncShared).
func (r *run) syncRecords() error {
	if r.shared {
		return r.syncShared()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, m := range r.e.Config.Migrations {
		changed = r.syncOne(m) || changed
	}
	if !changed {
		return nil
	}
	return r.write("")
}

// syncOne creates the record of m when its change is planned, and
// refreshes what it keeps of the configuration; it says whether it
// changed anything. The caller holds r.mu.
func (r *run) syncOne(m *schema.Migration) bool {
	if !r.wantsSync(m) {
		return false
	}
	a := m.Addr.String()
	ms := r.st.Migrations[a]
	if ms == nil {
		now := r.e.now()
		ms = &MigrationState{Address: a, CreatedAt: now, UpdatedAt: now}
		if c := r.change(a); c != nil {
			ms.Origin = c.Identity
		}
		r.st.Migrations[a] = ms
	}
	ms.PreventDestroy, ms.VM = m.PreventDestroy, m.VM
	ms.Source, ms.Converter, ms.Target = m.Source.String(), m.Converter.String(), m.Target.String()
	return true
}

// wantsSync says syncOne would change the record of m. The caller
// holds r.mu.
func (r *run) wantsSync(m *schema.Migration) bool {
	a := m.Addr.String()
	ms := r.st.Migrations[a]
	if ms == nil {
		c := r.change(a)
		return c != nil && c.Action != ActionNoOp && !c.Blocked
	}
	return ms.PreventDestroy != m.PreventDestroy || ms.Source != m.Source.String() || ms.VM != m.VM ||
		ms.Converter != m.Converter.String() || ms.Target != m.Target.String()
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
	if werr := r.write(addr); werr != nil {
		r.e.log().Error("could not record the failure in state", "address", addr, "error", werr)
	}
}
