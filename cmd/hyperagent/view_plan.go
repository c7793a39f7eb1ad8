package main

import (
	"bytes"
	"fmt"
	"io"

	"github.com/hypersdk/hyperagent/reconcile"
)

// renderPlanTo renders a plan for people or as JSON; both come from the
// same value. The whole rendering is one write, so redaction sees it whole.
func renderPlanTo(out io.Writer, p *reconcile.Plan, asJSON bool) error {
	var b bytes.Buffer
	if asJSON {
		enc, err := p.Encode()
		if err != nil {
			return err
		}
		b.Write(enc)
	} else if err := renderPlan(&b, p); err != nil {
		return err
	}
	_, err := out.Write(b.Bytes())
	return err
}

// viewResult renders the end-of-apply summary for people.
func viewResult(out io.Writer, r *reconcile.Result) {
	var b bytes.Buffer
	verb := "Apply complete"
	if !r.OK() {
		verb = "Apply finished with problems"
	}
	if len(r.Interrupted) > 0 {
		verb = "Apply interrupted"
	}
	fmt.Fprintf(&b, "\n%s: %d migrated, %d removed, %d failed, %d interrupted, %d skipped, %d not started.\n",
		verb, len(r.Migrated), len(r.Removed), len(r.Failed), len(r.Interrupted), len(r.Skipped), len(r.NotStarted))
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
