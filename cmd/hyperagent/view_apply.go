package main

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/jsondoc"
)

// applyView shows an apply: the plan it made (when it made one), its
// steps as they start and end, the bytes plugins report, and the result.
// For people the steps and bytes are live lines on a terminal
// (ttyDisplay) and timestamped lines elsewhere (lineDisplay); with -json
// they are the machine-readable UI's lines (jsonApplyView). event and
// progress are called from many goroutines.
type applyView interface {
	problemView
	planned(p *reconcile.Plan)
	event(ev reconcile.Event)
	progress(ev plugins.ProgressEvent)
	// close ends the live display; the result follows.
	close()
	result(r *reconcile.Result)
}

// liveDisplay is how people see apply's steps and bytes.
type liveDisplay interface {
	event(ev reconcile.Event)
	progress(ev plugins.ProgressEvent)
	close()
}

var (
	_ liveDisplay = (*ttyDisplay)(nil)
	_ liveDisplay = (*lineDisplay)(nil)
	_ applyView   = (*humanApplyView)(nil)
	_ applyView   = (*jsonApplyView)(nil)
)

func newApplyView(e *env, asJSON bool) applyView {
	if asJSON {
		return &jsonApplyView{jsonUI: newJSONUI(e.stdout), t: newProgressTracker(time.Now)}
	}
	v := &humanApplyView{humanProblems: humanProblems{e}}
	if e.stdoutTTY {
		v.liveDisplay = newTTYDisplay(e.stdout, terminalSize, nil, time.Now)
	} else {
		v.liveDisplay = newLineDisplay(e.stdout, time.Now)
	}
	return v
}

// terminalSize is the size of the terminal on stdout (80×24 when it
// cannot be read).
func terminalSize() (width, height int) {
	w, h, err := term.GetSize(int(os.Stdout.Fd()))
	if err != nil || w <= 0 || h <= 0 {
		return 80, 24
	}
	return w, h
}

type humanApplyView struct {
	humanProblems
	liveDisplay
}

func (v *humanApplyView) planned(p *reconcile.Plan) {
	if err := renderPlanTo(v.e.stdout, p); err != nil {
		v.errorf("%v", err)
	}
}

func (v *humanApplyView) result(r *reconcile.Result) { viewResult(v.e.stdout, r) }

// jsonApplyView writes apply -json's lines: planned_change and
// change_summary when apply made the plan, apply_start, apply_progress,
// apply_complete and apply_errored as steps go, a diagnostic for every
// failure, and last the apply's change_summary and apply_result.
type jsonApplyView struct {
	*jsonUI
	t *progressTracker
}

func (v *jsonApplyView) planned(p *reconcile.Plan) { v.plan(p) }

// applyHook is the hook of apply_start, apply_complete and apply_errored.
type applyHook struct {
	Address string             `json:"address"`
	Step    reconcile.StepKind `json:"step"`
	Detail  *string            `json:"detail,omitempty"`
	Error   string             `json:"error,omitempty"`
	Elapsed *float64           `json:"elapsed_seconds,omitempty"`
}

// progressHook is the hook of apply_progress.
type progressHook struct {
	Address string             `json:"address"`
	Step    reconcile.StepKind `json:"step"`
	Item    string             `json:"item"`
	Done    int64              `json:"bytes_done"`
	Total   int64              `json:"bytes_total"`
	Percent *float64           `json:"percent"`
	Rate    float64            `json:"rate_bytes_per_second"`
	ETA     *float64           `json:"eta_seconds"`
	Elapsed float64            `json:"elapsed_seconds"`
}

func (v *jsonApplyView) event(ev reconcile.Event) {
	h := applyHook{Address: ev.Address, Step: ev.Step}
	if ev.Status == "start" {
		v.t.started(ev.Address, ev.Step)
		h.Detail = &ev.Detail
		v.emit(uiLine{Level: "info", Message: stepLine(ev), Type: uiApplyStart, Hook: h})
		return
	}
	elapsed := v.t.ended(ev.Address).Seconds()
	h.Elapsed = &elapsed
	if ev.Status != "failed" {
		// done, or waiting: handed to the converter, which later passes
		// follow (the agent).
		h.Detail = &ev.Detail
		v.emit(uiLine{Level: "info", Message: stepLine(ev), Type: uiApplyComplete, Hook: h})
		return
	}
	h.Error = "failed"
	if ev.Err != nil {
		h.Error = ev.Err.Error()
	}
	// The failure's diagnostic, with its place in the configuration when
	// a plugin named one, comes with the result.
	v.emit(uiLine{Level: "error", Message: stepLine(ev), Type: uiApplyErrored, Hook: h})
}

func (v *jsonApplyView) progress(ev plugins.ProgressEvent) {
	s, due := v.t.report(ev)
	if !due {
		return
	}
	h := progressHook{Address: ev.Address, Step: s.Step, Item: s.Item, Done: s.Done, Total: s.Total,
		Percent: s.percent(), Rate: s.Rate, Elapsed: s.Elapsed.Seconds()}
	if s.ETA != nil {
		eta := s.ETA.Seconds()
		h.ETA = &eta
	}
	v.emit(uiLine{Level: "info", Message: ev.Address + ": " + progressText(s), Type: uiApplyProgress, Hook: h})
}

func (v *jsonApplyView) close() {}

// result ends the stream: a diagnostic for each failed migration (at
// the value at fault when a plugin said which), the apply's
// change_summary, then the migrations by outcome.
func (v *jsonApplyView) result(r *reconcile.Result) {
	res := *r
	jsondoc.FillEmpty(&res)
	for _, f := range res.Failed {
		d := jsonDiagnostic{Severity: "error", Summary: fmt.Sprintf("step %s failed", f.Step),
			Detail: f.Error, Address: f.Address}
		if c := f.Config; c != nil && c.File != "" && c.Line > 0 {
			pos := jsonPos{Line: c.Line, Column: max(c.Column, 1)}
			d.Range = &jsonRange{Filename: c.File, Start: pos, End: pos}
			d.Detail += fmt.Sprintf(" (the value at fault: %s)", c)
		}
		v.diagnostic(d)
	}
	v.emit(uiLine{Level: "info", Message: resultLine(&res), Type: uiChangeSummary, Changes: applyCounts{
		Operation: "apply", Migrated: len(res.Migrated), Removed: len(res.Removed), Failed: len(res.Failed),
		Waiting: len(res.Waiting), Interrupted: len(res.Interrupted), Skipped: len(res.Skipped), NotStarted: len(res.NotStarted)}})
	v.emit(uiLine{Level: "info", Message: "Apply result", Type: uiApplyResult, Result: &res})
}
