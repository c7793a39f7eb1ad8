package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// stateWriteError means state could not be persisted: the run must stop,
// since further effects could not be recorded.
type stateWriteError struct{ err error }

func (e *stateWriteError) Error() string { return e.err.Error() }
func (e *stateWriteError) Unwrap() error { return e.err }

// write persists the state; the caller holds e.mu.
func (e *Engine) write() error {
	if err := e.Store.Write(e.State); err != nil {
		return &stateWriteError{err: err}
	}
	return nil
}

// update mutates the migration's record under the lock and writes state.
func (e *Engine) update(addr string, fn func(ms *MigrationState)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	ms := e.State.Migrations[addr]
	fn(ms)
	ms.UpdatedAt = e.now()
	return e.write()
}

// SyncRecords refreshes what state keeps about configured migrations
// (prevent_destroy, plugin addresses) without running a step. Apply does
// it first; a caller whose plan has no changes calls it instead, so that a
// prevent_destroy added to a finished migration is recorded before the
// migration can be removed from the config. The caller holds the lock.
func (e *Engine) SyncRecords(p *Plan) error { return e.syncRecords(p) }

// syncRecords creates records for planned migrations and refreshes the
// metadata state keeps about configured ones (prevent_destroy, plugin
// addresses), writing once if anything changed.
func (e *Engine) syncRecords(p *Plan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	changed := false
	for _, m := range e.Config.Migrations {
		a := m.Addr.String()
		ms := e.State.Migrations[a]
		c := p.Change(a)
		if ms == nil && (c == nil || c.Action == ActionNoOp || c.Blocked) {
			continue
		}
		if ms == nil {
			now := e.now()
			ms = &MigrationState{Address: a, CreatedAt: now, UpdatedAt: now}
			e.State.Migrations[a] = ms
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
	return e.write()
}

// runChange runs one change's steps in order, writing state after each;
// it returns the step that failed.
func (e *Engine) runChange(ctx context.Context, c *Change, res *Result, resMu *sync.Mutex) (StepKind, error) {
	var m *schema.Migration
	if c.Action != ActionDelete {
		a, err := addrs.ParseMigration(c.Address)
		if err != nil {
			return "", err
		}
		if m = e.Config.Migration(a); m == nil {
			return "", fmt.Errorf("%s is in the plan but not in the configuration", c.Address)
		}
	}
	r := &run{e: e, m: m, c: c}
	defer r.releaseConverter()
	for _, s := range c.Steps {
		e.emit(Event{Address: c.Address, Step: s.Kind, Status: "start", Detail: s.Detail})
		note, err := r.step(ctx, s)
		if err != nil {
			err = fmt.Errorf("%s %s: %w", s.Kind, c.Address, err)
			e.emit(Event{Address: c.Address, Step: s.Kind, Status: "failed", Err: err})
			r.recordError(s.Kind, err, ctx.Err() != nil)
			return s.Kind, err
		}
		if note != "" {
			resMu.Lock()
			res.Notes = append(res.Notes, c.Address+": "+note)
			resMu.Unlock()
		}
		e.emit(Event{Address: c.Address, Step: s.Kind, Status: "done", Detail: s.Detail})
	}
	resMu.Lock()
	if c.Action == ActionDelete {
		res.Removed = append(res.Removed, c.Address)
	} else {
		res.Migrated = append(res.Migrated, c.Address)
	}
	resMu.Unlock()
	return "", nil
}

// run is one change in progress.
type run struct {
	e *Engine
	m *schema.Migration // nil for a removal
	c *Change
	// convRelease holds the converter's limit from submit until await
	// ends: a job is "in flight" for the converter's max_parallel.
	convRelease func()
}

func (r *run) releaseConverter() {
	if r.convRelease != nil {
		r.convRelease()
		r.convRelease = nil
	}
}

func (r *run) recordError(step StepKind, err error, interrupted bool) {
	msg := r.e.redact(err.Error())
	if interrupted {
		msg = "interrupted: " + msg
	}
	e := r.e
	e.mu.Lock()
	defer e.mu.Unlock()
	ms := e.State.Migrations[r.c.Address]
	if ms == nil {
		return
	}
	var we *stateWriteError
	if errors.As(err, &we) {
		return // writing again would fail the same way
	}
	ms.LastError = &ErrorRecord{Step: step, Message: msg, At: e.now()}
	ms.UpdatedAt = e.now()
	if werr := e.write(); werr != nil {
		e.Log.Error("could not record the failure in state", "address", r.c.Address, "error", werr)
	}
}

func (r *run) step(ctx context.Context, s Step) (note string, err error) {
	switch s.Kind {
	case StepExport:
		return "", r.export(ctx, s)
	case StepSubmit:
		return "", r.submit(ctx, s)
	case StepAwait:
		return "", r.await(ctx, s)
	case StepDefine:
		return "", r.define(ctx, s)
	case StepWithdraw:
		return r.withdraw(ctx, s)
	case StepPrune:
		return "", r.prune(ctx)
	case StepForget:
		e := r.e
		e.mu.Lock()
		defer e.mu.Unlock()
		delete(e.State.Migrations, r.c.Address)
		return "", e.write()
	}
	return "", plugins.Terminal(fmt.Errorf("unknown step %q", s.Kind))
}

// record returns a copy of the migration's record, read under the lock.
func (r *run) record() MigrationState {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	return *r.e.State.Migrations[r.c.Address]
}
