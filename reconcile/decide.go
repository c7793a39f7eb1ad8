package reconcile

import (
	"fmt"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
)

// decide works out where one configured migration stands and what is left.
// Changed inputs are checked earliest step first, because redoing an early
// step redoes everything after it.
func decide(m *schema.Migration, ms *MigrationState, obs *Observed, forced bool) decision {
	a := m.Addr.String()
	if ms == nil || (ms.Export == nil && ms.Job == nil && ms.Domain == nil) {
		d := decision{from: fromExport, action: ActionCreate, phase: PhasePending, reason: "not yet migrated"}
		switch {
		case ms != nil && ms.LastError != nil:
			d.reason = fmt.Sprintf("the last %s failed (%s); trying again", ms.LastError.Step, ms.LastError.Message)
		case ms != nil && ms.ExportStartedAt != nil:
			d.reason = "an export was interrupted; exporting again (a completed export is adopted)"
		}
		return d
	}
	want := Digests(m)
	vm, vmSeen := obs.VMs[a]
	phase := currentPhase(ms, obs)
	replace := func(f from, why string) decision {
		return decision{from: f, action: ActionReplace, phase: phase, reason: why, withdraw: jobWithdrawable(ms, obs)}
	}
	switch {
	case forced:
		return replace(fromExport, "replacement requested with -replace")
	case ms.Export != nil && ms.Digests.Export != want.Export:
		return replace(fromExport, "export settings changed")
	case obs.Refreshed && vmSeen && vm.Found && ms.Fingerprint != "" && vm.Fingerprint != ms.Fingerprint:
		return drifted(replace(fromExport, fmt.Sprintf("source VM changed since export (fingerprint %s → %s)", ms.Fingerprint, vm.Fingerprint)))
	case ms.Job != nil && ms.Digests.Convert != "" && ms.Digests.Convert != want.Convert:
		return replace(reconvertFrom(ms, obs), "convert settings changed")
	}
	if ms.Export == nil {
		return decision{from: fromExport, action: ActionCreate, phase: PhasePending, reason: "not yet exported"}
	}
	if ms.Outputs == nil {
		return decideJob(ms, obs, phase)
	}
	if ms.Domain == nil {
		if miss := obs.MissingOutputs[a]; len(miss) > 0 && ms.DefineStartedAt != nil {
			return decision{from: fromDefine, action: ActionCreate, phase: PhaseConverted,
				reason: "a definition was interrupted, and the converted disks are no longer where the converter left them; defining again (disks the target placed are adopted)"}
		} else if len(miss) > 0 {
			return drifted(replace(reconvertFrom(ms, obs), "converted disk missing or changed: "+joinPaths(miss)))
		}
		return decision{from: fromDefine, action: ActionCreate, phase: PhaseConverted, reason: "converted; the domain is not defined yet"}
	}
	if obs.Refreshed {
		dom := obs.Domains[a]
		switch {
		case !dom.Exists:
			return drifted(replace(rebuildFrom(ms, obs), fmt.Sprintf("domain %q no longer exists", ms.Domain.Name)))
		case len(dom.MissingDisks) > 0:
			return drifted(replace(rebuildFrom(ms, obs), "domain disk missing: "+joinPaths(dom.MissingDisks)))
		case dom.Digest != ms.Domain.Digest:
			return drifted(decision{from: fromDefine, action: ActionUpdate, phase: PhaseDefined, reason: "the domain's definition drifted from what was defined"})
		}
	}
	if ms.Digests.Define != want.Define {
		return decision{from: fromDefine, action: ActionUpdate, phase: PhaseDefined, reason: "domain settings changed"}
	}
	return decision{from: fromNothing, action: ActionNoOp, phase: PhaseDefined}
}

// decideJob handles an exported migration whose conversion has not been
// recorded as done.
func decideJob(ms *MigrationState, obs *Observed, phase Phase) decision {
	a := ms.Address
	if miss := obs.MissingExport[a]; len(miss) > 0 {
		return drifted(decision{from: fromExport, action: ActionReplace, phase: phase, withdraw: jobWithdrawable(ms, obs),
			reason: "export file missing or changed: " + joinPaths(miss)})
	}
	if ms.Job == nil {
		return decision{from: fromSubmit, action: ActionCreate, phase: PhaseExported, reason: "exported; not submitted to the converter yet"}
	}
	j := jobState(ms, obs)
	switch j.State {
	case plugins.JobQueued:
		return decision{from: fromAwait, action: ActionCreate, phase: PhaseQueued, reason: fmt.Sprintf("job %s is queued", ms.Job.ID)}
	case plugins.JobProcessing:
		return decision{from: fromAwait, action: ActionCreate, phase: PhaseConverting, reason: fmt.Sprintf("job %s is converting", ms.Job.ID)}
	case plugins.JobSucceeded:
		return decision{from: fromAwait, action: ActionCreate, phase: PhaseConverted, reason: fmt.Sprintf("job %s succeeded; its outputs are not recorded yet", ms.Job.ID)}
	case plugins.JobFailed:
		return decision{from: fromSubmit, action: ActionCreate, phase: PhaseFailed,
			reason: fmt.Sprintf("job %s failed (%s); retrying as attempt %d", ms.Job.ID, j.Error, ms.Attempts+1),
			cond:   &Condition{Kind: ConditionJobFailed, JobID: ms.Job.ID, Detail: j.Error}}
	case plugins.JobStalled:
		stalled := &Condition{Kind: ConditionJobStalled, JobID: ms.Job.ID, Detail: j.Detail}
		if stalled.Detail == "" {
			stalled.Detail = j.Error
		}
		if j.Claimed {
			// It may still be converting: a second attempt beside it
			// would convert the VM twice. A person decides.
			return decision{from: fromSubmit, action: ActionCreate, phase: PhaseFailed,
				reason: fmt.Sprintf("job %s was claimed and shows no progress", ms.Job.ID), cond: stalled,
				refuse: &Finding{Plugin: ms.Job.Converter, Severity: string(plugins.SeverityError),
					Summary: fmt.Sprintf("job %s was claimed and shows no progress (%s)", ms.Job.ID, j.Detail),
					Detail: "It may still be running, so no second attempt is queued beside it. Check the converter (its service, its log); " +
						"once the job is known to be dead, hyperagent apply -replace=" + ms.Address + " converts again."}}
		}
		return decision{from: fromSubmit, action: ActionCreate, phase: PhaseFailed, withdraw: true, cond: stalled,
			reason: fmt.Sprintf("job %s stalled in the queue (%s); retrying as attempt %d", ms.Job.ID, j.Detail, ms.Attempts+1)}
	case plugins.JobForeign:
		return decision{from: fromSubmit, action: ActionCreate, phase: PhaseFailed,
			reason: fmt.Sprintf("job %s in %s is not this migration's", ms.Job.ID, ms.Job.Converter),
			refuse: &Finding{Plugin: ms.Job.Converter, Severity: string(plugins.SeverityError),
				Summary: fmt.Sprintf("job %s is not this migration's: %s", ms.Job.ID, j.Detail),
				Detail: "A job under this migration's job id was made by another campaign, for another migration, or from another export; " +
					"it is never adopted, awaited or withdrawn. To export and convert again under a new job id, leaving that job alone: " +
					"hyperagent apply -replace=" + ms.Address}}
	}
	if ms.Job.SubmittedAt == nil {
		return decision{from: fromSubmit, action: ActionCreate, phase: PhaseExported, sameJob: true,
			reason: fmt.Sprintf("the submission of job %s was interrupted; submitting it under the same id", ms.Job.ID)}
	}
	return decision{from: fromSubmit, action: ActionCreate, phase: PhaseFailed,
		reason: fmt.Sprintf("job %s is no longer known to %s; retrying as attempt %d", ms.Job.ID, ms.Job.Converter, ms.Attempts+1)}
}

// drifted marks d as caused by drift: an artifact state recorded is gone
// or changed, or the source VM changed since its export. The reason says
// what.
func drifted(d decision) decision {
	d.cond = &Condition{Kind: ConditionDrift, Detail: d.reason}
	return d
}

// jobState is the job as observed, or as last recorded without refresh.
func jobState(ms *MigrationState, obs *Observed) plugins.JobObservation {
	if j, ok := obs.Jobs[ms.Address]; ok {
		return j
	}
	if !obs.Refreshed && ms.Job.State != "" {
		return plugins.JobObservation{JobID: ms.Job.ID, State: ms.Job.State}
	}
	return plugins.JobObservation{JobID: ms.Job.ID, State: plugins.JobUnknown}
}

// jobWithdrawable says the recorded job is still waiting in the queue and
// is superseded, so it should be taken back before a new one goes in.
func jobWithdrawable(ms *MigrationState, obs *Observed) bool {
	if ms.Job == nil || ms.Outputs != nil {
		return false
	}
	s := jobState(ms, obs).State
	return s == plugins.JobQueued || s == plugins.JobStalled
}

// reconvertFrom is submit when the export files are intact, else export.
// An export that recorded no disks (an imported migration's: nothing was
// exported) has nothing to convert again.
func reconvertFrom(ms *MigrationState, obs *Observed) from {
	if ms.Export == nil || len(ms.Export.Disks) == 0 || len(obs.MissingExport[ms.Address]) > 0 {
		return fromExport
	}
	return fromSubmit
}

// rebuildFrom restarts from the step whose artifacts were lost: define
// again while the converted disks exist, else convert again while the
// export exists, else export.
func rebuildFrom(ms *MigrationState, obs *Observed) from {
	if len(ms.Outputs) > 0 && len(obs.MissingOutputs[ms.Address]) == 0 {
		return fromDefine
	}
	return reconvertFrom(ms, obs)
}

// currentPhase summarises state and observation for display.
func currentPhase(ms *MigrationState, obs *Observed) Phase {
	switch {
	case ms.Domain != nil:
		return PhaseDefined
	case ms.Outputs != nil:
		return PhaseConverted
	case ms.Job != nil:
		switch jobState(ms, obs).State {
		case plugins.JobQueued:
			return PhaseQueued
		case plugins.JobProcessing:
			return PhaseConverting
		case plugins.JobSucceeded:
			return PhaseConverted
		case plugins.JobFailed, plugins.JobStalled, plugins.JobForeign:
			return PhaseFailed
		}
		return PhaseExported
	case ms.Export != nil:
		return PhaseExported
	}
	return PhasePending
}
