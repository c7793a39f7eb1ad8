package reconcile

import "sort"

// Result is the end-of-apply summary.
type Result struct {
	Migrated []string  `json:"migrated"` // create, update and replace that finished
	Removed  []string  `json:"removed"`
	Failed   []Failure `json:"failed"`
	Waiting  []Wait    `json:"waiting"` // handed to the converter; later passes go on
	Skipped  []Skip    `json:"skipped"`
	// Elsewhere are migrations another process works on, or worked on
	// since this plan was made (a campaign several hosts share): not
	// this run's to do, and not a problem. Their dependents wait with
	// them.
	Elsewhere   []Skip    `json:"elsewhere,omitempty"`
	NotStarted  []string  `json:"not_started"`
	Interrupted []Failure `json:"interrupted"` // cancelled mid-step
	Notes       []string  `json:"notes,omitempty"`
}

// Failure is a migration that stopped at a step.
type Failure struct {
	Address string   `json:"address"`
	Step    StepKind `json:"step"`
	Error   string   `json:"error"`
	// Terminal says retrying cannot fix it (a refused definition, a VM
	// that is gone): it waits for a change to the config or the source.
	Terminal bool `json:"terminal,omitempty"`
	// Config is where the value behind the failure was written, when the
	// plugin said (a URI no daemon serves): fix it there.
	Config *ConfigPlace `json:"config,omitempty"`
}

// Wait is a migration whose job is in the converter's hands (ApplyOptions
// SkipAwait): not failed, not finished.
type Wait struct {
	Address string `json:"address"`
	JobID   string `json:"job_id"`
}

// Skip is a migration that was not run, and why.
type Skip struct {
	Address string `json:"address"`
	Reason  string `json:"reason"`
}

// OK says everything planned finished or was handed on (to the
// converter, or to another process that has it).
func (r *Result) OK() bool {
	return len(r.Failed) == 0 && len(r.Skipped) == 0 && len(r.NotStarted) == 0 && len(r.Interrupted) == 0
}

func (r *Result) sort() {
	sort.Strings(r.Migrated)
	sort.Strings(r.Removed)
	sort.Strings(r.NotStarted)
	sort.Slice(r.Failed, func(i, j int) bool { return r.Failed[i].Address < r.Failed[j].Address })
	sort.Slice(r.Interrupted, func(i, j int) bool { return r.Interrupted[i].Address < r.Interrupted[j].Address })
	sort.Slice(r.Skipped, func(i, j int) bool { return r.Skipped[i].Address < r.Skipped[j].Address })
	sort.Slice(r.Elsewhere, func(i, j int) bool { return r.Elsewhere[i].Address < r.Elsewhere[j].Address })
	sort.Slice(r.Waiting, func(i, j int) bool { return r.Waiting[i].Address < r.Waiting[j].Address })
}

// emptyNotNil makes every list of the result marshal as [], not null.
func (r *Result) emptyNotNil() {
	if r.Migrated == nil {
		r.Migrated = []string{}
	}
	if r.Removed == nil {
		r.Removed = []string{}
	}
	if r.Failed == nil {
		r.Failed = []Failure{}
	}
	if r.Waiting == nil {
		r.Waiting = []Wait{}
	}
	if r.Skipped == nil {
		r.Skipped = []Skip{}
	}
	if r.NotStarted == nil {
		r.NotStarted = []string{}
	}
	if r.Interrupted == nil {
		r.Interrupted = []Failure{}
	}
}
