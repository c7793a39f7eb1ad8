package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

// export claims the migration's export directory, records the intent,
// then exports (or adopts an export that a killed run completed), then
// records the result. A superseded job and its outputs are dropped with
// the old export: they belong to it.
func (ch *change) export(ctx context.Context, s Step) error {
	r, a := ch.r, ch.c.Address
	src, ok := r.e.Plugins.Sources[ch.m.Source.String()]
	if !ok {
		return plugins.Terminal(fmt.Errorf("no source instance %s", ch.m.Source))
	}
	release, err := r.acquire(ctx, ch.m.Source.String())
	if err != nil {
		return err
	}
	defer release()
	prior := r.record(a)
	interrupted := prior.ExportStartedAt != nil && prior.Export == nil
	if err := r.update(a, func(ms *MigrationState) {
		t := r.e.now()
		ms.ExportStartedAt = &t
		ms.Export, ms.Job, ms.Outputs, ms.Fingerprint = nil, nil, nil, ""
		ms.LastError = nil
	}); err != nil {
		return err
	}
	ident := prior.Identity()
	req := plugins.ExportRequest{Address: ident, Campaign: r.st.Lineage, VM: ch.m.VM, Dir: s.Dir,
		Settings: ch.m.Export, Progress: ch.progress()}
	if err := plugins.ClaimDir(req.Dir, owner(req.Campaign, ident), 0o750); err != nil {
		return err
	}
	var res plugins.ExportResult
	adopted := false
	if ad, ok := src.(plugins.ExportAdopter); ok && interrupted {
		res, adopted, err = ad.AdoptExport(ctx, req)
		if err != nil {
			return fmt.Errorf("looking for a completed export: %w", err)
		}
		// An export of the VM as it was before it changed is not adopted.
		if fp := r.plan.Fingerprints[a]; adopted && fp != "" && res.Fingerprint != fp {
			adopted = false
		}
		if adopted {
			r.e.log().Info("adopted an export completed by an interrupted run", "address", a, "dir", res.Dir)
		}
	}
	if !adopted {
		resp, err := src.Export(ctx, req)
		if err != nil {
			return err
		}
		res = resp.Export
	}
	want := Digests(ch.m)
	return r.update(a, func(ms *MigrationState) {
		ms.Export = &res
		ms.Fingerprint = res.Fingerprint
		ms.Digests.Export = want.Export
		ms.ExportStartedAt = nil
	})
}

// progress reports a plugin's progress under the migration's address
// (the plugin is given its Identity, which a moved record's differs
// from).
func (ch *change) progress() plugins.Progress {
	p := ch.r.opts.Progress
	if p == nil {
		return func(plugins.ProgressEvent) {}
	}
	return func(ev plugins.ProgressEvent) {
		ev.Address = ch.c.Address
		p(ev)
	}
}

// submit records the job id before calling Submit, so that a run killed in
// between finds the job by observation instead of submitting it twice.
func (ch *change) submit(ctx context.Context, s Step) error {
	r, a := ch.r, ch.c.Address
	name := ch.c.Converter
	conv, ok := r.e.Plugins.Converters[name]
	if !ok {
		return plugins.Terminal(fmt.Errorf("no converter instance %s", name))
	}
	if !r.shared {
		if err := ch.takeConverter(ctx); err != nil {
			return err
		}
	}
	rec := r.record(a)
	if rec.Export == nil {
		return plugins.Terminal(errors.New("nothing exported to submit"))
	}
	intent := func(ms *MigrationState) {
		ms.Job = &JobRecord{Converter: name, ID: s.JobID, Attempt: s.Attempt}
		ms.Attempts = max(ms.Attempts, s.Attempt)
		ms.Outputs = nil
		ms.LastError = nil
	}
	// Shared, the converter's limit is counted in the store: the intent
	// recorded is the slot taken (and so held until the job is seen to
	// end, by whichever process sees it).
	var err error
	if r.shared {
		err = ch.updateJobLimited(ctx, name, intent)
	} else {
		err = r.update(a, intent)
	}
	if err != nil {
		return err
	}
	resp, err := conv.Submit(ctx, plugins.SubmitRequest{Address: rec.Identity(), Campaign: r.st.Lineage, JobID: s.JobID,
		Export: *rec.Export, Options: ch.m.Convert})
	if err != nil {
		return err
	}
	want := Digests(ch.m)
	return r.update(a, func(ms *MigrationState) {
		t := r.e.now()
		if resp.JobID != "" {
			ms.Job.ID = resp.JobID
		}
		ms.Job.SubmittedAt = &t
		ms.Job.State = plugins.JobQueued
		ms.Digests.Convert = want.Convert
	})
}

// takeConverter holds a slot of the converter's limit until await ends.
// With SkipAwait the slot outlives the run (keepConverter) and nothing of
// the run frees one (a job collected had ended, and held none), so it
// does not wait: a full converter is a *converterFullError, and a later
// pass submits the job.
func (ch *change) takeConverter(ctx context.Context) error {
	if ch.convRelease != nil {
		return nil
	}
	r := ch.r
	if r.opts.SkipAwait {
		sem := r.limits[ch.c.Converter]
		if sem == nil {
			return nil
		}
		select {
		case sem <- struct{}{}:
		default:
			return &converterFullError{converter: ch.c.Converter, limit: cap(sem)}
		}
		var once sync.Once
		ch.convRelease = func() { once.Do(func() { <-sem }) }
		return nil
	}
	rel, err := r.acquire(ctx, ch.c.Converter)
	if err != nil {
		return err
	}
	ch.convRelease = rel
	return nil
}

// converterFullError is a submission a run that does not await (the
// agent's) leaves to a later pass: the converter has as many jobs in
// flight as its limit, and none will end within this run.
type converterFullError struct {
	converter string
	limit     int
}

func (e *converterFullError) Error() string {
	return fmt.Sprintf("%s has %d jobs in flight, its limit; a later pass submits this one", e.converter, e.limit)
}

// await observes the job until the converter reports it finished, failed
// or stalled. It never sleeps blindly: the poller observes at an interval
// and when the converter's Watcher says something moved.
func (ch *change) await(ctx context.Context, s Step) error {
	r, a := ch.r, ch.c.Address
	rec := r.record(a)
	name := ch.c.Converter
	if rec.Job != nil {
		name = rec.Job.Converter
	}
	conv, ok := r.e.Plugins.Converters[name]
	if !ok {
		return plugins.Terminal(fmt.Errorf("no converter instance %s", name))
	}
	// Shared, the record's job holds its converter's slot already; a job
	// collected by a run that does not await (it ended before the plan)
	// holds none.
	if !r.shared && !r.opts.SkipAwait {
		if err := ch.takeConverter(ctx); err != nil {
			return err
		}
	}
	defer ch.releaseConverter()
	q := plugins.JobQuery{Address: a, JobID: s.JobID, Want: wantJob(r.st.Lineage, &rec)}
	if rec.Job != nil {
		q.JobID = rec.Job.ID
		if rec.Job.SubmittedAt != nil {
			q.SubmittedAt = *rec.Job.SubmittedAt
		}
	}
	// Waiting is not work: the parallelism slot goes to a migration that
	// can export meanwhile, and is taken back before the define.
	ch.slot.give()
	obs, err := r.poller(ctx, name, conv).wait(ctx, q)
	// The job ended: its converter slot goes back before the parallelism
	// slot is taken again (holding one while waiting for the other could
	// deadlock with a migration that holds the other and wants the one).
	ch.releaseConverter()
	if err != nil {
		return err
	}
	if obs.State == plugins.JobSucceeded {
		if obs.Outputs, err = sumOutputs(ctx, obs.Outputs); err != nil {
			return err
		}
	}
	record := func() error {
		return r.update(a, func(ms *MigrationState) {
			if ms.Job != nil {
				ms.Job.State = obs.State
			}
			if obs.State == plugins.JobSucceeded {
				ms.Outputs = append([]plugins.Output{}, obs.Outputs...)
				// The define comes next: its intent is recorded with
				// what it consumes, in the same write.
				if ms.Domain == nil {
					t := r.e.now()
					ms.DefineStartedAt = &t
				}
			}
		})
	}
	var werr error
	if r.shared {
		// Shared, recording the end is what gives the converter's slot
		// back: it is written first, for the same reason.
		werr = record()
		if err := ch.slot.take(ctx); err != nil {
			return err
		}
	} else {
		if err := ch.slot.take(ctx); err != nil {
			return err
		}
		werr = record()
	}
	switch obs.State {
	case plugins.JobForeign:
		return plugins.Terminal(fmt.Errorf("job %s is not this migration's: %s", q.JobID, obs.Detail))
	case plugins.JobFailed:
		return fmt.Errorf("job %s failed: %s", q.JobID, obs.Error)
	case plugins.JobStalled:
		return fmt.Errorf("job %s stalled: %s", q.JobID, obs.Detail)
	}
	return werr
}

// sumOutputs fills in the sha256 of each output whose converter did not
// report one (plugins.JobObservation): read here, in the migration's own
// step, rather than in the poller's round, where one large output would
// hold back the notice of every other job. The size is the bytes hashed.
func sumOutputs(ctx context.Context, outs []plugins.Output) ([]plugins.Output, error) {
	outs = slices.Clone(outs)
	for i, o := range outs {
		if o.SHA256 != "" {
			continue
		}
		sum, n, err := fsutil.SHA256File(ctx, o.Path, nil)
		if err != nil {
			return nil, fmt.Errorf("output %s of disk %s: %w", o.Path, o.DiskID, err)
		}
		outs[i].SHA256, outs[i].Size = sum, n
	}
	return outs, nil
}

func (ch *change) define(ctx context.Context, s Step) error {
	r, a := ch.r, ch.c.Address
	name := ch.m.Target.String()
	tgt, ok := r.e.Plugins.Targets[name]
	if !ok {
		return plugins.Terminal(fmt.Errorf("no target instance %s", name))
	}
	release, err := r.acquire(ctx, name)
	if err != nil {
		return err
	}
	defer release()
	rec := r.record(a)
	if rec.Export == nil || rec.Outputs == nil {
		return plugins.Terminal(errors.New("no converted disks recorded to define"))
	}
	req := plugins.DefineRequest{Address: rec.Identity(), Campaign: r.st.Lineage, Name: s.Domain, Outputs: rec.Outputs,
		Facts: rec.Export.Facts, Domain: ch.m.Domain}
	if rec.Domain != nil {
		req.UUID = rec.Domain.UUID
	}
	if rec.Domain == nil && rec.DefineStartedAt == nil {
		if err := r.update(a, func(ms *MigrationState) {
			t := r.e.now()
			ms.DefineStartedAt = &t
		}); err != nil {
			return err
		}
	}
	resp, err := tgt.Define(ctx, req)
	if err != nil {
		if plugins.IsTerminal(err) {
			// Defining again cannot help: the next plan looks at the
			// outputs afresh (converting again if they are gone).
			if werr := r.update(a, func(ms *MigrationState) { ms.DefineStartedAt = nil }); werr != nil {
				return werr
			}
		}
		return err
	}
	want := Digests(ch.m)
	now := r.e.now()
	return r.update(a, func(ms *MigrationState) {
		ms.Domain = &resp.Domain
		ms.DefineStartedAt = nil
		ms.DefinedAt = &now
		ms.Digests.Define = want.Define
		ms.ConfigDigest = ch.m.Digest
		ms.LastError = nil
	})
}

// withdraw takes back a queued job. A job already claimed is reported in
// the result's notes, never killed, and does not fail the change.
func (ch *change) withdraw(ctx context.Context, s Step) (string, error) {
	r := ch.r
	rec := r.record(ch.c.Address)
	name := ch.c.Converter
	if rec.Job != nil {
		name = rec.Job.Converter
	}
	conv, ok := r.e.Plugins.Converters[name]
	if !ok {
		return fmt.Sprintf("job %s was not withdrawn: converter %s is no longer configured", s.JobID, name), nil
	}
	resp, err := conv.Withdraw(ctx, plugins.WithdrawRequest{Address: rec.Identity(), JobID: s.JobID, Want: wantJob(r.st.Lineage, &rec)})
	if err != nil {
		return "", err
	}
	if !resp.Withdrawn {
		return fmt.Sprintf("job %s was not withdrawn: %s", s.JobID, resp.Detail), nil
	}
	return "", r.update(ch.c.Address, func(ms *MigrationState) {
		if ms.Job != nil && ms.Job.ID == s.JobID {
			ms.Job.State = plugins.JobWithdrawn
		}
	})
}

// prune deletes the export files through the source's ExportPruner, then
// releases the export directory.
func (ch *change) prune(ctx context.Context) error {
	r := ch.r
	rec := r.record(ch.c.Address)
	if rec.Export == nil {
		return nil
	}
	pr, ok := r.e.Plugins.Sources[ch.c.Source].(plugins.ExportPruner)
	if !ok {
		return plugins.Terminal(fmt.Errorf("%s cannot prune exports", ch.c.Source))
	}
	if err := pr.PruneExport(ctx, plugins.PruneExportRequest{Address: rec.Identity(), Campaign: r.st.Lineage, Export: *rec.Export}); err != nil {
		return err
	}
	releaseDir(rec.Export.Dir, owner(r.st.Lineage, rec.Identity()), r.e.log())
	return r.update(ch.c.Address, func(ms *MigrationState) { ms.Export = nil })
}
