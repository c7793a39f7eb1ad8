package agent

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/hypersdk/hyperagent/reconcile"
)

// StatusVersion is the format_version of Status as JSON (the status API).
const StatusVersion = APIVersion

// Status is what the agent knows now: its campaign by phase, its passes,
// what it waits on, and what is wrong. Everything in it is redacted.
type Status struct {
	FormatVersion string `json:"format_version"`
	Ready         bool   `json:"ready"` // a configuration loaded at least once
	AutoApply     bool   `json:"auto_apply"`
	// Phases counts the configured migrations by phase: as the last plan
	// observed them, moved on by the steps done since.
	Phases map[reconcile.Phase]int `json:"phases"`
	// OutOfSync counts the changes the last plan had (with auto_apply
	// off, what a person has to apply).
	OutOfSync int `json:"out_of_sync"`
	Suspended int `json:"suspended"`
	Blocked   int `json:"blocked"`

	Passes       int           `json:"passes"`
	LastPass     *time.Time    `json:"last_pass,omitempty"`
	LastPassTook time.Duration `json:"last_pass_took_ns"`
	LastError    string        `json:"last_error,omitempty"` // of the last pass, if it failed
	NextPass     *time.Time    `json:"next_pass,omitempty"`  // the periodic resync
	// Migrated, Waiting and Failed are the last applying pass's.
	Result *reconcile.Result `json:"last_result,omitempty"`

	// ConfigErrors are the diagnostics of the newest configuration when
	// it does not load; the last good one keeps running meanwhile.
	ConfigErrors []Diagnostic  `json:"config_errors"`
	Retrying     []RetryStatus `json:"retrying"`
	// NoEvents lists watched directories whose filesystem delivers no
	// file events (NFS): only the resync sees changes there.
	NoEvents []string `json:"no_events"`
	// Converters is each converter's health as of the last pass, with
	// its queue as the campaign stands now.
	Converters []ConverterStatus `json:"converters"`
	Version    string            `json:"version"`

	Plan *reconcile.Plan `json:"-"` // the last plan, for the API's /v1/plan
}

// Diagnostic is a configuration error with its place.
type Diagnostic struct {
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
}

func diagnostics(diags hcl.Diagnostics) []Diagnostic {
	out := make([]Diagnostic, 0, len(diags))
	for _, d := range diags {
		x := Diagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			x.Severity = "warning"
		}
		if d.Subject != nil {
			x.File, x.Line, x.Column = d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column
		}
		out = append(out, x)
	}
	return out
}

// phaseOrder is how phases are listed: furthest along first.
var phaseOrder = []reconcile.Phase{
	reconcile.PhaseDefined, reconcile.PhaseConverted, reconcile.PhaseConverting, reconcile.PhaseQueued,
	reconcile.PhaseExported, reconcile.PhasePending, reconcile.PhaseFailed,
}

// Line is the one-line summary systemd shows: "12 defined, 3 converting,
// 1 failed; 2 to apply".
func (s Status) Line() string {
	var parts []string
	for _, ph := range phaseOrder {
		if n := s.Phases[ph]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, ph))
		}
	}
	line := strings.Join(parts, ", ")
	if line == "" {
		line = "no migrations"
	}
	var extra []string
	if s.OutOfSync > 0 {
		if s.AutoApply {
			extra = append(extra, fmt.Sprintf("%d in progress", s.OutOfSync))
		} else {
			extra = append(extra, fmt.Sprintf("%d to apply (auto_apply is off)", s.OutOfSync))
		}
	}
	if n := len(s.Retrying); n > 0 {
		extra = append(extra, fmt.Sprintf("%d retrying", n))
	}
	if s.Suspended > 0 {
		extra = append(extra, fmt.Sprintf("%d suspended", s.Suspended))
	}
	if len(s.ConfigErrors) > 0 {
		extra = append(extra, fmt.Sprintf("configuration has %d error(s), running the last good one", len(s.ConfigErrors)))
	}
	if s.LastError != "" {
		extra = append(extra, "last pass failed")
	}
	if len(extra) > 0 {
		line += "; " + strings.Join(extra, "; ")
	}
	return line
}

func sortRetries(rs []RetryStatus) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Address < rs[j].Address })
}
