package reconcile

import (
	"encoding/json"
	"fmt"
)

// PlanFormatVersion is the version of saved plans and of `plan -json`.
// Version 2 added the campaign lineage and the artifact names bound to it
// (a version 1 plan's job ids and export dirs are not); version 3 the
// variable values the plan was made with (apply FILE loads the
// configuration with them; a version 2 plan would need them all again).
const PlanFormatVersion = 3

// Action is what a change does to a migration.
type Action string

const (
	ActionNoOp    Action = "no-op"
	ActionCreate  Action = "create"  // + migrate (or continue migrating)
	ActionUpdate  Action = "update"  // ~ redefine the domain in place
	ActionReplace Action = "replace" // -/+ redo work already done
	ActionDelete  Action = "delete"  // - forget, pruning hyperagent's own artifacts
)

// Symbol is the marker people see in the plan.
func (a Action) Symbol() string {
	switch a {
	case ActionCreate:
		return "+"
	case ActionUpdate:
		return "~"
	case ActionReplace:
		return "-/+"
	case ActionDelete:
		return "-"
	}
	return " "
}

// StepKind names one step of a change.
type StepKind string

const (
	StepExport   StepKind = "export"   // source exports the VM
	StepSubmit   StepKind = "submit"   // queue a converter job
	StepAwait    StepKind = "await"    // observe the job until it ends
	StepDefine   StepKind = "define"   // target defines the domain
	StepWithdraw StepKind = "withdraw" // take back a job not yet claimed
	StepPrune    StepKind = "prune"    // delete hyperagent's export files
	StepForget   StepKind = "forget"   // drop the record from state
)

// Step is one step, with what Apply needs to run it without re-deciding.
type Step struct {
	Kind    StepKind `json:"step"`
	Dir     string   `json:"dir,omitempty"`     // export: the migration's export directory
	JobID   string   `json:"job_id,omitempty"`  // submit, await, withdraw
	Attempt int      `json:"attempt,omitempty"` // submit
	Domain  string   `json:"domain,omitempty"`  // define
	Detail  string   `json:"detail,omitempty"`  // display only
}

// Finding is a plugin's pre-flight finding about one migration.
type Finding struct {
	Plugin   string `json:"plugin"`
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
}

// ConditionKind names what a plan observed going wrong with a migration.
type ConditionKind string

const (
	// ConditionJobFailed: the converter failed the migration's job.
	ConditionJobFailed ConditionKind = "job_failed"
	// ConditionJobStalled: the job shows no progress, claimed by a
	// consumer or left in the queue.
	ConditionJobStalled ConditionKind = "job_stalled"
	// ConditionDrift: an artifact state recorded (an export file, a
	// converted disk, the domain or its definition) is gone or changed,
	// or the source VM changed since its export.
	ConditionDrift ConditionKind = "drift"
)

// Condition is what the plan observed going wrong with a migration, for
// machines (the agent's notifications); the change's Reason says it for
// people.
type Condition struct {
	Kind  ConditionKind `json:"kind"`
	JobID string        `json:"job_id,omitempty"` // job_failed, job_stalled
	// Detail is the converter's error, the stall's detail, or what
	// drifted (display only, redacted as reasons are).
	Detail string `json:"detail,omitempty"`
}

// Change is what the plan does to one migration.
type Change struct {
	Address  string    `json:"address"`
	Action   Action    `json:"action"`
	Reason   string    `json:"reason,omitempty"`
	Steps    []Step    `json:"steps,omitempty"`
	Findings []Finding `json:"findings,omitempty"`
	// Blocked is set when an error finding (or prevent_destroy) stops
	// this change; Apply skips it and its dependents.
	Blocked bool `json:"blocked,omitempty"`
	// Suspended is set when state holds the migration (agent suspend);
	// Apply skips it and its dependents until it is resumed.
	Suspended bool     `json:"suspended,omitempty"`
	DependsOn []string `json:"depends_on,omitempty"`
	// Phase is the observed phase the steps start from.
	Phase Phase `json:"phase"`
	// Condition is set when the observation found something wrong.
	Condition *Condition `json:"condition,omitempty"`
	VM        string     `json:"vm,omitempty"`
	Source    string     `json:"source,omitempty"`
	Converter string     `json:"converter,omitempty"`
	Target    string     `json:"target,omitempty"`
	// Identity is the address the migration's artifacts are named after
	// and owned by, when it is not Address (Identity in identity.go).
	Identity string `json:"identity,omitempty"`
}

// PriorState is the state a plan was computed against.
type PriorState struct {
	Lineage string `json:"lineage"`
	Serial  uint64 `json:"serial"`
}

// PlanOptions are the selections the plan was made with.
type PlanOptions struct {
	Targets  []string `json:"targets,omitempty"`
	Excludes []string `json:"excludes,omitempty"`
	Replace  []string `json:"replace,omitempty"`
	Refresh  bool     `json:"refresh"`
}

// Plan is the engine's output and Apply's only input besides the config:
// Apply performs its steps and never re-decides them.
type Plan struct {
	FormatVersion int        `json:"format_version"`
	ConfigDir     string     `json:"config_dir,omitempty"`
	ConfigDigest  string     `json:"config_digest"`
	Prior         PriorState `json:"prior_state"`
	// Lineage is the campaign the steps' artifact names belong to: the
	// prior state's lineage, or, against no state yet, the lineage the
	// first write will take.
	Lineage string      `json:"lineage"`
	Options PlanOptions `json:"options"`
	// Variables holds the value of every variable the plan was made with
	// whose value is not secret, as {"value": …, "type": …}: apply FILE
	// loads the configuration with them (schema.SavedVariables).
	Variables map[string]json.RawMessage `json:"variables"`
	// SensitiveVariables names the variables that were set when the plan
	// was made and whose values are secret: they are never written, so
	// apply FILE must be given them again.
	SensitiveVariables []string `json:"sensitive_variables"`
	// Fingerprints binds the plan to each involved source VM as observed.
	Fingerprints map[string]string `json:"fingerprints"`
	// Changes holds every selected migration, sorted by address, no-ops
	// included (they satisfy depends_on).
	Changes []Change `json:"changes"`
	Summary Summary  `json:"summary"`
}

// Summary counts the changes by action.
type Summary struct {
	Migrate   int `json:"migrate"`
	Update    int `json:"update"`
	Replace   int `json:"replace"`
	Remove    int `json:"remove"`
	Blocked   int `json:"blocked"`
	Suspended int `json:"suspended"`
}

func (p *Plan) summarize() {
	p.Summary = Summary{}
	for _, c := range p.Changes {
		if c.Blocked {
			p.Summary.Blocked++
		}
		if c.Suspended && c.Action != ActionNoOp {
			p.Summary.Suspended++
		}
		switch c.Action {
		case ActionCreate:
			p.Summary.Migrate++
		case ActionUpdate:
			p.Summary.Update++
		case ActionReplace:
			p.Summary.Replace++
		case ActionDelete:
			p.Summary.Remove++
		}
	}
}

// HasChanges says whether applying the plan would do anything.
func (p *Plan) HasChanges() bool {
	for _, c := range p.Changes {
		if c.Action != ActionNoOp && !c.Blocked && !c.Suspended {
			return true
		}
	}
	return false
}

// Change finds the change for an address.
func (p *Plan) Change(addr string) *Change {
	for i := range p.Changes {
		if p.Changes[i].Address == addr {
			return &p.Changes[i]
		}
	}
	return nil
}

// Encode renders the plan as indented JSON: the saved-plan file and the
// `plan -json` output are this same document.
func (p *Plan) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding plan: %w", err)
	}
	return append(b, '\n'), nil
}

// DecodePlan parses a saved plan and checks its version.
func DecodePlan(b []byte) (*Plan, error) {
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("not a saved plan: %w", err)
	}
	switch {
	case p.FormatVersion == 0:
		return nil, fmt.Errorf("not a saved plan: no format_version")
	case p.FormatVersion < PlanFormatVersion:
		return nil, fmt.Errorf("the saved plan has format_version %d, from an older hyperagent; this one reads version %d only "+
			"(it carries the variable values the plan was made with): make the plan again with `hyperagent plan -out=FILE`", p.FormatVersion, PlanFormatVersion)
	case p.FormatVersion > PlanFormatVersion:
		return nil, fmt.Errorf("the saved plan has format_version %d, from a newer hyperagent; this one reads version %d only: "+
			"apply it with the hyperagent that made it, or make the plan again with this one", p.FormatVersion, PlanFormatVersion)
	}
	return &p, nil
}
