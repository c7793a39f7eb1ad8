package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/jsondoc"
	"github.com/hypersdk/hyperagent/schema"
)

// uiModule is the @module of every line of the machine-readable UI.
const uiModule = "hyperagent.ui"

// uiLine is one line of plan -json and apply -json: Terraform's
// machine-readable UI (docs/output.md, docs/schema/ui.json). The header
// is on every line; Type says which of the other fields is set.
type uiLine struct {
	Level     string `json:"@level"` // info | warn | error
	Message   string `json:"@message"`
	Module    string `json:"@module"`
	Timestamp string `json:"@timestamp"`
	Type      string `json:"type"`

	FormatVersion string            `json:"format_version,omitempty"` // version
	Hyperagent    string            `json:"hyperagent,omitempty"`     // version
	Change        *jsondoc.Change   `json:"change,omitempty"`         // planned_change
	Changes       any               `json:"changes,omitempty"`        // change_summary
	Hook          any               `json:"hook,omitempty"`           // apply_*
	Diagnostic    *jsonDiagnostic   `json:"diagnostic,omitempty"`     // diagnostic
	Result        *reconcile.Result `json:"result,omitempty"`         // apply_result
}

// Line types.
const (
	uiVersion       = "version"
	uiPlannedChange = "planned_change"
	uiChangeSummary = "change_summary"
	uiApplyStart    = "apply_start"
	uiApplyProgress = "apply_progress"
	uiApplyComplete = "apply_complete"
	uiApplyErrored  = "apply_errored"
	uiApplyResult   = "apply_result"
	uiDiagnostic    = "diagnostic"
)

// jsonUI writes UI lines to stdout, one whole line per write. It is safe
// for concurrent use (apply's steps report from many goroutines).
type jsonUI struct {
	mu  sync.Mutex
	out io.Writer
	now func() time.Time
}

// newJSONUI starts the stream with its version line.
func newJSONUI(out io.Writer) *jsonUI {
	u := &jsonUI{out: out, now: time.Now}
	v := currentVersion()
	u.emit(uiLine{Level: "info", Message: "hyperagent " + v, Type: uiVersion,
		FormatVersion: jsondoc.FormatVersion, Hyperagent: v})
	return u
}

func (u *jsonUI) emit(l uiLine) {
	l.Module = uiModule
	u.mu.Lock()
	defer u.mu.Unlock()
	l.Timestamp = u.now().Format(time.RFC3339Nano)
	// One Write per line. HTML characters stay as they are (not \u003c),
	// so that the redactor on stdout sees text as it was written.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(l); err != nil {
		// Plain data: cannot happen. Say so in the stream rather than
		// dropping the line.
		b.Reset()
		_ = enc.Encode(uiLine{Level: "error", Message: "encoding a UI line: " + err.Error(), Module: uiModule,
			Timestamp: l.Timestamp, Type: uiDiagnostic,
			Diagnostic: &jsonDiagnostic{Severity: "error", Summary: "encoding a UI line failed", Detail: err.Error()}})
	}
	_, _ = u.out.Write(b.Bytes())
}

// diagnostics writes each diagnostic as a line of its own.
func (u *jsonUI) diagnostics(files schema.Files, diags hcl.Diagnostics) {
	for _, d := range jsonDiagnostics(files, diags) {
		u.diagnostic(d)
	}
}

// errorf writes an error that has no place in the configuration.
func (u *jsonUI) errorf(format string, a ...any) {
	u.diagnostic(jsonDiagnostic{Severity: "error", Summary: fmt.Sprintf(format, a...)})
}

func (u *jsonUI) diagnostic(d jsonDiagnostic) {
	level, title := "error", "Error: "
	if d.Severity == "warning" {
		level, title = "warn", "Warning: "
	}
	msg := title + d.Summary
	if d.Address != "" {
		msg = title + d.Address + ": " + d.Summary
	}
	u.emit(uiLine{Level: level, Message: msg, Type: uiDiagnostic, Diagnostic: &d})
}

// plan writes a planned_change line per migration the plan changes, a
// diagnostic per finding (of every migration), and the change_summary.
func (u *jsonUI) plan(p *reconcile.Plan) {
	for _, c := range p.Changes {
		if c.Action != reconcile.ActionNoOp {
			ch := jsondoc.NewChange(c)
			u.emit(uiLine{Level: "info", Message: fmt.Sprintf("%s: Plan to %s", c.Address, c.Action),
				Type: uiPlannedChange, Change: &ch})
		}
		for _, f := range c.Findings {
			sev := "error"
			if f.Severity != "error" {
				sev = "warning"
			}
			u.diagnostic(jsonDiagnostic{Severity: sev, Summary: f.Summary, Detail: f.Detail, Address: c.Address})
		}
	}
	u.emit(uiLine{Level: "info", Message: summaryLine(p), Type: uiChangeSummary,
		Changes: planCounts{Operation: "plan", Summary: p.Summary}})
}

// planCounts is a plan's change_summary: the plan's summary.
type planCounts struct {
	Operation string `json:"operation"` // plan
	reconcile.Summary
}

// applyCounts is an apply's change_summary.
type applyCounts struct {
	Operation   string `json:"operation"` // apply
	Migrated    int    `json:"migrated"`
	Removed     int    `json:"removed"`
	Failed      int    `json:"failed"`
	Waiting     int    `json:"waiting"`
	Interrupted int    `json:"interrupted"`
	Skipped     int    `json:"skipped"`
	NotStarted  int    `json:"not_started"`
}
