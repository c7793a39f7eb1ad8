package jsondoc

import (
	"encoding/json"

	"github.com/hypersdk/hyperagent/reconcile"
)

// Plan is the plan as a document (docs/schema/plan.json).
type Plan struct {
	FormatVersion     string               `json:"format_version"`
	HyperagentVersion string               `json:"hyperagent_version"`
	ConfigDir         string               `json:"config_dir"`
	ConfigDigest      string               `json:"config_digest"`
	PriorState        reconcile.PriorState `json:"prior_state"`
	Lineage           string               `json:"lineage"`
	Options           Options              `json:"options"`
	// Variables are the values the plan was made with, each
	// {"value": …, "type": …}, but for the sensitive ones, which are only
	// named in SensitiveVariables: they are never written.
	Variables          map[string]json.RawMessage `json:"variables"`
	SensitiveVariables []string                   `json:"sensitive_variables"`
	Fingerprints       map[string]string          `json:"fingerprints"`
	Changes            []Change                   `json:"changes"`
	Summary            reconcile.Summary          `json:"summary"`
}

// Options are the selections the plan was made with.
type Options struct {
	Targets  []string `json:"targets"`
	Excludes []string `json:"excludes"`
	Replace  []string `json:"replace"`
	Refresh  bool     `json:"refresh"`
}

// Change is what the plan does to one migration, every list present.
type Change struct {
	Address string           `json:"address"`
	Action  reconcile.Action `json:"action"`
	Reason  string           `json:"reason"`
	Phase   reconcile.Phase  `json:"phase"`
	// Condition is what the observation found wrong (a failed or stalled
	// job, drift); null when nothing.
	Condition *reconcile.Condition `json:"condition"`
	VM        string               `json:"vm"`
	Source    string               `json:"source"`
	Converter string               `json:"converter"`
	Target    string               `json:"target"`
	Steps     []reconcile.Step     `json:"steps"`
	Findings  []reconcile.Finding  `json:"findings"`
	Blocked   bool                 `json:"blocked"`
	Suspended bool                 `json:"suspended"`
	DependsOn []string             `json:"depends_on"`
	// Identity is the address the migration's artifacts are named after
	// and owned by, when it is not Address; absent otherwise.
	Identity string `json:"identity,omitempty"`
}

// NewPlan renders p; version is the hyperagent that renders it.
func NewPlan(p *reconcile.Plan, version string) Plan {
	out := Plan{
		FormatVersion: FormatVersion, HyperagentVersion: version,
		ConfigDir: p.ConfigDir, ConfigDigest: p.ConfigDigest, PriorState: p.Prior, Lineage: p.Lineage,
		Options: Options{Targets: list(p.Options.Targets), Excludes: list(p.Options.Excludes),
			Replace: list(p.Options.Replace), Refresh: p.Options.Refresh},
		Variables:          map[string]json.RawMessage{},
		SensitiveVariables: list(p.SensitiveVariables),
		Fingerprints:       map[string]string{},
		Changes:            make([]Change, 0, len(p.Changes)),
		Summary:            p.Summary,
	}
	for n, v := range p.Variables {
		out.Variables[n] = v
	}
	for a, f := range p.Fingerprints {
		out.Fingerprints[a] = f
	}
	for _, c := range p.Changes {
		out.Changes = append(out.Changes, NewChange(c))
	}
	return out
}

// NewChange renders one change (also a planned_change UI line's).
func NewChange(c reconcile.Change) Change {
	return Change{
		Address: c.Address, Action: c.Action, Reason: c.Reason, Phase: c.Phase, Condition: c.Condition,
		VM: c.VM, Source: c.Source, Converter: c.Converter, Target: c.Target,
		Steps: list(c.Steps), Findings: list(c.Findings),
		Blocked: c.Blocked, Suspended: c.Suspended, DependsOn: list(c.DependsOn), Identity: c.Identity,
	}
}

// list is s, or an empty list for nil: documents have [] where there is
// nothing, never null.
func list[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
