package main

import (
	"bytes"
	"fmt"
	"io"

	"github.com/hypersdk/hyperagent/reconcile"
)

// planView shows what plan made: the plan for people, or the lines of
// the machine-readable UI with -json. Both come from the same value.
type planView interface {
	problemView
	plan(p *reconcile.Plan) error
	// saved says where -out wrote the plan.
	saved(path string)
}

func newPlanView(e *env, asJSON bool) planView {
	if asJSON {
		return jsonPlanView{newJSONUI(e.stdout)}
	}
	return humanPlanView{humanProblems{e}}
}

type humanPlanView struct{ humanProblems }

func (v humanPlanView) plan(p *reconcile.Plan) error { return renderPlanTo(v.e.stdout, p) }

func (v humanPlanView) saved(path string) {
	fmt.Fprintf(v.e.stdout, "\nSaved the plan to %s. To run exactly these steps: hyperagent apply %s\n", path, path)
}

type jsonPlanView struct{ *jsonUI }

func (v jsonPlanView) plan(p *reconcile.Plan) error { v.jsonUI.plan(p); return nil }

// saved says nothing: the stream is the plan, and the file is where -out
// said.
func (v jsonPlanView) saved(string) {}

// renderPlanTo renders a plan for people. The whole rendering is one
// write, so redaction sees it whole.
func renderPlanTo(out io.Writer, p *reconcile.Plan) error {
	var b bytes.Buffer
	if err := renderPlan(&b, p); err != nil {
		return err
	}
	_, err := out.Write(b.Bytes())
	return err
}

// viewResult renders the end-of-apply summary for people.
func viewResult(out io.Writer, r *reconcile.Result) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "\n%s\n", resultLine(r))
	section := func(title string, lines []string) {
		if len(lines) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s:\n", title)
		for _, l := range lines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	section("Migrated", r.Migrated)
	section("Removed", r.Removed)
	var lines []string
	for _, f := range r.Failed {
		line := fmt.Sprintf("%s (step %s): %s", f.Address, f.Step, f.Error)
		if f.Config != nil {
			line += "\n    the value at fault: " + f.Config.String()
		}
		lines = append(lines, line)
	}
	section("Failed", lines)
	lines = nil
	for _, f := range r.Interrupted {
		lines = append(lines, fmt.Sprintf("%s (step %s)", f.Address, f.Step))
	}
	section("Interrupted (state is recorded; apply again to continue)", lines)
	lines = nil
	for _, s := range r.Skipped {
		lines = append(lines, fmt.Sprintf("%s: %s", s.Address, s.Reason))
	}
	section("Skipped", lines)
	lines = nil
	for _, s := range r.Elsewhere {
		lines = append(lines, fmt.Sprintf("%s: %s", s.Address, s.Reason))
	}
	section("Left to other processes", lines)
	section("Not started", r.NotStarted)
	section("Notes", r.Notes)
	_, _ = out.Write(b.Bytes())
}

// resultLine is "Apply complete: 3 migrated, 0 removed, …, 0 not started."
func resultLine(r *reconcile.Result) string {
	verb := "Apply complete"
	if !r.OK() {
		verb = "Apply finished with problems"
	}
	if len(r.Interrupted) > 0 {
		verb = "Apply interrupted"
	}
	return fmt.Sprintf("%s: %d migrated, %d removed, %d failed, %d interrupted, %d skipped, %d not started.",
		verb, len(r.Migrated), len(r.Removed), len(r.Failed), len(r.Interrupted), len(r.Skipped), len(r.NotStarted))
}
