package reconcile

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// DiffRequest is everything Diff decides from. Diff is pure: it performs
// no I/O.
type DiffRequest struct {
	Config    *schema.Config
	State     *State
	Observed  *Observed // nil with -refresh=false: phases come from state alone
	Selection Selection
	Replace   []addrs.Migration
	// CanPrune says whether a source instance can delete its exports
	// (implements plugins.ExportPruner); nil means none can.
	CanPrune func(source string) bool
	// NewLineage is the campaign for a state that has no lineage yet (no
	// state written): the plan names artifacts with it and Apply gives it
	// to the state.
	NewLineage string
}

// from is the first step a change runs.
type from int

const (
	fromExport from = iota
	fromSubmit
	fromAwait
	fromDefine
	fromNothing
)

// decision is the outcome for one configured migration.
type decision struct {
	from     from
	action   Action
	reason   string
	phase    Phase
	sameJob  bool // resubmit the recorded job id (its submission was interrupted)
	withdraw bool // withdraw the recorded job first (stalled or obsolete)
	// refuse is an error finding that blocks the change (an artifact in
	// a shared place that is not this migration's).
	refuse *Finding
	// cond is what the observation found wrong, for machines.
	cond *Condition
}

// Diff compares the desired config with the observed world and the
// recorded state and returns the plan.
func Diff(req DiffRequest) *Plan {
	cfg, st := req.Config, req.State
	obs := req.Observed
	if obs == nil {
		obs = newObserved()
	}
	lineage := st.Lineage
	if lineage == "" {
		lineage = req.NewLineage
	}
	p := &Plan{
		FormatVersion: PlanFormatVersion,
		ConfigDir:     cfg.Dir,
		ConfigDigest:  cfg.Digest,
		Prior:         PriorState{Lineage: st.Lineage, Serial: st.Serial},
		Lineage:       lineage,
		Options:       PlanOptions{Refresh: obs.Refreshed},
		Fingerprints:  map[string]string{},
	}
	p.Variables, p.SensitiveVariables = cfg.CarriedVariables()
	for _, a := range req.Selection.Targets {
		p.Options.Targets = append(p.Options.Targets, a.String())
	}
	for _, a := range req.Selection.Excludes {
		p.Options.Excludes = append(p.Options.Excludes, a.String())
	}
	for _, a := range req.Replace {
		p.Options.Replace = append(p.Options.Replace, a.String())
	}
	byName := blockIndex(cfg)
	names := domainNames(cfg, st, obs)
	inCfg := addrSet(cfg.Migrations)
	selected := req.Selection.Select(cfg)
	ids := newIdentities(st)
	p.Changes = make([]Change, 0, len(selected))
	for _, m := range selected {
		a := m.Addr.String()
		ms := st.Migrations[a]
		forced := false
		for _, r := range req.Replace {
			forced = forced || r.Contains(m.Addr)
		}
		d := decide(m, ms, obs, forced)
		c := Change{
			Address: a, Action: d.action, Reason: d.reason, Phase: d.phase, Condition: d.cond,
			DependsOn: dependencies(m, byName), VM: m.VM,
			Source: m.Source.String(), Converter: m.Converter.String(), Target: m.Target.String(),
		}
		ident := ids.of(a)
		if ident != a {
			c.Identity = ident
		}
		conv, note := converterFor(cfg, m, obs)
		c.Converter = conv
		c.Steps = planSteps(lineage, ident, m, ms, obs, d, conv)
		c.Findings = findings(m, obs)
		if d.refuse != nil {
			c.Findings = append(c.Findings, *d.refuse)
		}
		if note != nil && hasStep(c.Steps, StepSubmit) {
			c.Findings = append(c.Findings, *note)
		} else {
			c.Converter, conv = m.Converter.String(), m.Converter.String()
			c.Steps = planSteps(lineage, ident, m, ms, obs, d, conv)
		}
		if obs.Refreshed {
			c.Findings = append(c.Findings, preflight(m, ms, obs, c.Steps, names, conv)...)
		}
		if vm, ok := obs.VMs[a]; obs.Refreshed && ok && vm.Found && d.action != ActionNoOp {
			p.Fingerprints[a] = vm.Fingerprint
		}
		if obs.Refreshed && d.from == fromExport {
			if vm, ok := obs.VMs[a]; !ok || !vm.Found {
				c.Findings = append(c.Findings, Finding{Plugin: c.Source, Severity: string(plugins.SeverityError),
					Summary: fmt.Sprintf("VM %q not found", m.VM)})
			}
		}
		c.Blocked = d.action != ActionNoOp && hasError(c.Findings)
		c.Suspended = st.IsSuspended(a)
		p.Changes = append(p.Changes, c)
	}
	for _, a := range st.Addresses() {
		if inCfg[a] || !req.Selection.KeepsRemoved(a) {
			continue
		}
		rc := removal(st.Migrations[a], obs, req.CanPrune)
		rc.Suspended = st.IsSuspended(a)
		p.Changes = append(p.Changes, rc)
	}
	less := func(i, j int) bool { return p.Changes[i].Address < p.Changes[j].Address }
	if !sort.SliceIsSorted(p.Changes, less) {
		sort.SliceStable(p.Changes, less)
	}
	p.summarize()
	return p
}

func hasError(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == string(plugins.SeverityError) {
			return true
		}
	}
	return false
}

func findings(m *schema.Migration, obs *Observed) []Finding {
	a := m.Addr.String()
	var out []Finding
	for _, f := range obs.VMs[a].Findings {
		out = append(out, Finding{Plugin: m.Source.String(), Severity: string(f.Severity), Summary: f.Summary, Detail: f.Detail})
	}
	for _, f := range obs.Domains[a].Findings {
		out = append(out, Finding{Plugin: m.Target.String(), Severity: string(f.Severity), Summary: f.Summary, Detail: f.Detail})
	}
	return out
}

// removal plans a migration that left the config: withdraw its job if
// nobody claimed it, prune its export files, forget it. The source VM and
// a defined domain are never touched.
func removal(ms *MigrationState, obs *Observed, canPrune func(string) bool) Change {
	c := Change{Address: ms.Address, Action: ActionDelete, Phase: PhaseRemoved, VM: ms.VM,
		Source: ms.Source, Converter: ms.Converter, Target: ms.Target, Identity: ms.Origin,
		Reason: "no longer in the configuration; the source VM and any defined domain are kept"}
	if ms.Job != nil && ms.Outputs == nil {
		state := ms.Job.State
		if j, ok := obs.Jobs[ms.Address]; ok {
			state = j.State
		}
		if state == plugins.JobForeign {
			c.Reason += fmt.Sprintf("; job %s is not this migration's and is left alone", ms.Job.ID)
		} else if state == plugins.JobQueued || state == "" && ms.Job.SubmittedAt == nil {
			c.Steps = append(c.Steps, Step{Kind: StepWithdraw, JobID: ms.Job.ID,
				Detail: fmt.Sprintf("job %s from %s", ms.Job.ID, ms.Job.Converter)})
		}
	}
	if ms.Export != nil {
		if canPrune != nil && canPrune(ms.Source) {
			c.Steps = append(c.Steps, Step{Kind: StepPrune, Detail: fmt.Sprintf("%d export files in %s", len(ms.Export.Files), ms.Export.Dir)})
		} else {
			c.Reason += fmt.Sprintf("; export files in %s are kept (%s cannot prune them)", ms.Export.Dir, ms.Source)
		}
	}
	c.Steps = append(c.Steps, Step{Kind: StepForget, Detail: "remove the record from state"})
	if ms.PreventDestroy {
		c.Blocked = true
		c.Findings = append(c.Findings, Finding{Plugin: ms.Address, Severity: string(plugins.SeverityError),
			Summary: "lifecycle.prevent_destroy is set",
			Detail:  "the migration was removed from the configuration, but its last applied configuration sets prevent_destroy; put it back, or set prevent_destroy = false and apply first"})
	}
	return c
}

// planSteps lists the steps from d.from to a defined domain; the export
// directory and job ids are named after ident, the migration's Identity.
func planSteps(lineage, ident string, m *schema.Migration, ms *MigrationState, obs *Observed, d decision, converter string) []Step {
	if d.from == fromNothing {
		return nil
	}
	a := m.Addr.String()
	var steps []Step
	if d.withdraw && ms != nil && ms.Job != nil {
		steps = append(steps, Step{Kind: StepWithdraw, JobID: ms.Job.ID, Detail: fmt.Sprintf("job %s from %s", ms.Job.ID, ms.Job.Converter)})
	}
	if d.from <= fromExport {
		dir := ExportDir(m.Export.Dir, lineage, ident)
		steps = append(steps, Step{Kind: StepExport, Dir: dir, Detail: fmt.Sprintf("%s into %s", m.VM, dir)})
	}
	jobID := ""
	if ms != nil && ms.Job != nil {
		jobID = ms.Job.ID
	}
	if d.from <= fromSubmit {
		attempt := 1
		if ms != nil {
			attempt = ms.Attempts + 1
		}
		if d.sameJob {
			attempt = ms.Job.Attempt
		}
		jobID = JobID(lineage, ident, attempt)
		steps = append(steps, Step{Kind: StepSubmit, JobID: jobID, Attempt: attempt,
			Detail: fmt.Sprintf("job %s to %s", jobID, converter)})
	}
	if d.from <= fromAwait {
		on := converter
		if d.from == fromAwait && ms != nil && ms.Job != nil {
			on = ms.Job.Converter
		}
		steps = append(steps, Step{Kind: StepAwait, JobID: jobID, Detail: fmt.Sprintf("job %s on %s", jobID, on)})
	}
	name := DomainName(m, ms, obs.VMs[a])
	steps = append(steps, Step{Kind: StepDefine, Domain: name, Detail: fmt.Sprintf("domain %q on %s", name, m.Target)})
	return steps
}

func hasStep(steps []Step, k StepKind) bool {
	for _, s := range steps {
		if s.Kind == k {
			return true
		}
	}
	return false
}

func joinPaths(p []string) string {
	if len(p) > 3 {
		return strings.Join(p[:3], ", ") + fmt.Sprintf(" and %d more", len(p)-3)
	}
	return strings.Join(p, ", ")
}
