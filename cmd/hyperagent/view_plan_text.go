package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/hypersdk/hyperagent/reconcile"
)

// renderPlan writes the plan for people: one block per change with its
// symbol, reason and one line per step, the findings, and the summary
// line. It renders exactly the value that -json marshals.
func renderPlan(w io.Writer, p *reconcile.Plan) error {
	var b strings.Builder
	if !p.HasChanges() && p.Summary.Blocked == 0 {
		b.WriteString("No changes. The migrations match the configuration.\n")
		writeFindings(&b, p)
		_, err := io.WriteString(w, b.String())
		return err
	}
	b.WriteString("hyperagent will perform the following actions:\n")
	for _, c := range p.Changes {
		if c.Action == reconcile.ActionNoOp {
			continue
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "  # %s %s\n", c.Address, verb(c.Action))
		if c.Reason != "" {
			fmt.Fprintf(&b, "  # (%s)\n", c.Reason)
		}
		fmt.Fprintf(&b, "%5s %s\n", c.Action.Symbol(), c.Address)
		for _, s := range c.Steps {
			fmt.Fprintf(&b, "        %-8s %s\n", s.Kind, s.Detail)
		}
		for _, f := range c.Findings {
			fmt.Fprintf(&b, "      %s: %s\n", f.Severity, f.Summary)
			writeDetail(&b, f.Detail, "        ")
		}
		if c.Blocked {
			b.WriteString("      ! blocked: apply will skip this migration and its dependents\n")
		}
	}
	writeFindings(&b, p)
	b.WriteString("\n")
	b.WriteString(summaryLine(p))
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// writeFindings lists findings of migrations that have nothing to do (the
// others are shown with their change).
func writeFindings(b *strings.Builder, p *reconcile.Plan) {
	for _, c := range p.Changes {
		if c.Action != reconcile.ActionNoOp {
			continue
		}
		for _, f := range c.Findings {
			fmt.Fprintf(b, "\n%s: %s: %s\n", strings.ToUpper(f.Severity[:1])+f.Severity[1:], c.Address, f.Summary)
			writeDetail(b, f.Detail, "  ")
		}
	}
}

func verb(a reconcile.Action) string {
	switch a {
	case reconcile.ActionCreate:
		return "will be migrated"
	case reconcile.ActionUpdate:
		return "will be redefined in place"
	case reconcile.ActionReplace:
		return "must be redone"
	case reconcile.ActionDelete:
		return "will be forgotten"
	}
	return "has nothing to do"
}

// summaryLine is "Plan: 3 to migrate, 1 to replace, 0 to remove." (with
// "N to update" when there are updates, and the blocked count when any).
func summaryLine(p *reconcile.Plan) string {
	s := p.Summary
	line := fmt.Sprintf("Plan: %d to migrate", s.Migrate)
	if s.Update > 0 {
		line += fmt.Sprintf(", %d to update", s.Update)
	}
	line += fmt.Sprintf(", %d to replace, %d to remove.", s.Replace, s.Remove)
	if s.Blocked > 0 {
		line += fmt.Sprintf(" %d blocked by errors.", s.Blocked)
	}
	return line
}

// writeDetail writes a finding's detail (what to do about it), wrapped at
// about 78 columns under indent.
func writeDetail(b *strings.Builder, detail, indent string) {
	line := indent
	for _, w := range strings.Fields(detail) {
		if len(line) > len(indent) && len(line)+1+len(w) > 78 {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += w
	}
	if len(line) > len(indent) {
		b.WriteString(line + "\n")
	}
}
