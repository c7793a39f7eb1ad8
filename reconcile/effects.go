package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/hypersdk/hyperagent/plugins"
)

// export records the intent, then exports (or adopts an export that a
// killed run completed), then records the result. A superseded job and
// its outputs are dropped with the old export: they belong to it.
func (r *run) export(ctx context.Context, s Step) error {
	e, a := r.e, r.c.Address
	src, ok := e.Plugins.Sources[r.m.Source.String()]
	if !ok {
		return plugins.Terminal(fmt.Errorf("no source instance %s", r.m.Source))
	}
	release, err := e.acquire(ctx, r.m.Source.String())
	if err != nil {
		return err
	}
	defer release()
	prior := r.record()
	interrupted := prior.ExportStartedAt != nil && prior.Export == nil
	if err := e.update(a, func(ms *MigrationState) {
		t := e.now()
		ms.ExportStartedAt = &t
		ms.Export, ms.Job, ms.Outputs, ms.Fingerprint = nil, nil, nil, ""
		ms.LastError = nil
	}); err != nil {
		return err
	}
	req := plugins.ExportRequest{Address: a, Campaign: e.State.Lineage, VM: r.m.VM, Dir: s.Dir,
		Settings: r.m.Export, Progress: r.progress()}
	if err := plugins.ClaimDir(req.Dir, owner(req.Campaign, a), 0o750); err != nil {
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
		if fp := e.plan.Fingerprints[a]; adopted && fp != "" && res.Fingerprint != fp {
			adopted = false
		}
		if adopted {
			e.Log.Info("adopted an export completed by an interrupted run", "address", a, "dir", res.Dir)
		}
	}
	if !adopted {
		resp, err := src.Export(ctx, req)
		if err != nil {
			return err
		}
		res = resp.Export
	}
	want := Digests(r.m)
	return e.update(a, func(ms *MigrationState) {
		ms.Export = &res
		ms.Fingerprint = res.Fingerprint
		ms.Digests.Export = want.Export
		ms.ExportStartedAt = nil
	})
}

func (r *run) progress() plugins.Progress {
	if r.e.Progress != nil {
		return r.e.Progress
	}
	return func(plugins.ProgressEvent) {}
}

// submit records the job id before calling Submit, so that a run killed in
// between finds the job by observation instead of submitting it twice.
func (r *run) submit(ctx context.Context, s Step) error {
	e, a := r.e, r.c.Address
	name := r.m.Converter.String()
	conv, ok := e.Plugins.Converters[name]
	if !ok {
		return plugins.Terminal(fmt.Errorf("no converter instance %s", name))
	}
	if err := r.takeConverter(ctx); err != nil {
		return err
	}
	rec := r.record()
	if rec.Export == nil {
		return plugins.Terminal(errors.New("nothing exported to submit"))
	}
	if err := e.update(a, func(ms *MigrationState) {
		ms.Job = &JobRecord{Converter: name, ID: s.JobID, Attempt: s.Attempt}
		ms.Attempts = max(ms.Attempts, s.Attempt)
		ms.Outputs = nil
		ms.LastError = nil
	}); err != nil {
		return err
	}
	resp, err := conv.Submit(ctx, plugins.SubmitRequest{Address: a, Campaign: e.State.Lineage, JobID: s.JobID,
		Export: *rec.Export, Options: r.m.Convert})
	if err != nil {
		return err
	}
	want := Digests(r.m)
	return e.update(a, func(ms *MigrationState) {
		t := e.now()
		if resp.JobID != "" {
			ms.Job.ID = resp.JobID
		}
		ms.Job.SubmittedAt = &t
		ms.Job.State = plugins.JobQueued
		ms.Digests.Convert = want.Convert
	})
}

// takeConverter holds a slot of the converter's limit until await ends.
func (r *run) takeConverter(ctx context.Context) error {
	if r.convRelease != nil {
		return nil
	}
	rel, err := r.e.acquire(ctx, r.m.Converter.String())
	if err != nil {
		return err
	}
	r.convRelease = rel
	return nil
}

// await observes the job until the converter reports it finished, failed
// or stalled. It never sleeps blindly: the poller observes at an interval
// and when the converter's Watcher says something moved.
func (r *run) await(ctx context.Context, s Step) error {
	e, a := r.e, r.c.Address
	name := r.m.Converter.String()
	conv, ok := e.Plugins.Converters[name]
	if !ok {
		return plugins.Terminal(fmt.Errorf("no converter instance %s", name))
	}
	if err := r.takeConverter(ctx); err != nil {
		return err
	}
	defer r.releaseConverter()
	rec := r.record()
	q := plugins.JobQuery{Address: a, JobID: s.JobID, Want: wantJob(e.State.Lineage, &rec)}
	if rec.Job != nil {
		q.JobID = rec.Job.ID
		if rec.Job.SubmittedAt != nil {
			q.SubmittedAt = *rec.Job.SubmittedAt
		}
	}
	obs, err := e.poller(ctx, name, conv).wait(ctx, q)
	if err != nil {
		return err
	}
	werr := e.update(a, func(ms *MigrationState) {
		if ms.Job != nil {
			ms.Job.State = obs.State
		}
		if obs.State == plugins.JobSucceeded {
			ms.Outputs = append([]plugins.Output{}, obs.Outputs...)
		}
	})
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

func (r *run) define(ctx context.Context, s Step) error {
	e, a := r.e, r.c.Address
	name := r.m.Target.String()
	tgt, ok := e.Plugins.Targets[name]
	if !ok {
		return plugins.Terminal(fmt.Errorf("no target instance %s", name))
	}
	release, err := e.acquire(ctx, name)
	if err != nil {
		return err
	}
	defer release()
	rec := r.record()
	if rec.Export == nil || rec.Outputs == nil {
		return plugins.Terminal(errors.New("no converted disks recorded to define"))
	}
	req := plugins.DefineRequest{Address: a, Campaign: e.State.Lineage, Name: s.Domain, Outputs: rec.Outputs,
		Facts: rec.Export.Facts, Domain: r.m.Domain}
	if rec.Domain != nil {
		req.UUID = rec.Domain.UUID
	}
	resp, err := tgt.Define(ctx, req)
	if err != nil {
		return err
	}
	want := Digests(r.m)
	return e.update(a, func(ms *MigrationState) {
		ms.Domain = &resp.Domain
		ms.Digests.Define = want.Define
		ms.ConfigDigest = r.m.Digest
		ms.LastError = nil
	})
}

// withdraw takes back a queued job. A job already claimed is reported in
// the result's notes, never killed, and does not fail the change.
func (r *run) withdraw(ctx context.Context, s Step) (string, error) {
	e := r.e
	name := r.c.Converter
	conv, ok := e.Plugins.Converters[name]
	if !ok {
		return fmt.Sprintf("job %s was not withdrawn: converter %s is no longer configured", s.JobID, name), nil
	}
	rec := r.record()
	resp, err := conv.Withdraw(ctx, plugins.WithdrawRequest{Address: r.c.Address, JobID: s.JobID, Want: wantJob(e.State.Lineage, &rec)})
	if err != nil {
		return "", err
	}
	if !resp.Withdrawn {
		return fmt.Sprintf("job %s was not withdrawn: %s", s.JobID, resp.Detail), nil
	}
	return "", e.update(r.c.Address, func(ms *MigrationState) {
		if ms.Job != nil && ms.Job.ID == s.JobID {
			ms.Job.State = "withdrawn"
		}
	})
}

// prune deletes the export files through the source's ExportPruner.
func (r *run) prune(ctx context.Context) error {
	e := r.e
	rec := r.record()
	if rec.Export == nil {
		return nil
	}
	pr, ok := e.Plugins.Sources[r.c.Source].(plugins.ExportPruner)
	if !ok {
		return plugins.Terminal(fmt.Errorf("%s cannot prune exports", r.c.Source))
	}
	if err := pr.PruneExport(ctx, plugins.PruneExportRequest{Address: r.c.Address, Campaign: e.State.Lineage, Export: *rec.Export}); err != nil {
		return err
	}
	releaseDir(rec.Export.Dir, owner(e.State.Lineage, r.c.Address), e.Log)
	return e.update(r.c.Address, func(ms *MigrationState) { ms.Export = nil })
}
