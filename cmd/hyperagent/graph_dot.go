package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hypersdk/hyperagent/reconcile"
)

// actionStyle is how -type=plan shows an action: its fill and border.
var actionStyle = map[reconcile.Action][2]string{
	reconcile.ActionCreate:  {"#c8f0c8", "#1e7b1e"},
	reconcile.ActionUpdate:  {"#fff1b8", "#9a7b00"},
	reconcile.ActionReplace: {"#ffd3a8", "#b35900"},
	reconcile.ActionDelete:  {"#f8c4c4", "#a31515"},
	reconcile.ActionNoOp:    {"#eeeeee", "#777777"},
}

// renderDOT writes the plan's migrations as a DOT digraph: a cluster per
// wave (Plan.Waves), an edge from each migration to each one it depends
// on (Terraform's direction: the dependent points at its dependency,
// drawn right to left so wave 1 is leftmost), and dashed edges, which do
// not rank, to the plugins it uses. With actions, nodes are coloured by
// what the plan does and labelled with its symbol.
func renderDOT(p *reconcile.Plan, actions bool) string {
	var b strings.Builder
	b.WriteString("digraph \"hyperagent\" {\n")
	b.WriteString("  rankdir = \"RL\"\n  newrank = \"true\"\n  fontname = \"sans-serif\"\n")
	b.WriteString("  node [shape = \"box\", fontname = \"sans-serif\", fontsize = \"11\"]\n")
	b.WriteString("  edge [fontname = \"sans-serif\", fontsize = \"9\"]\n")
	if actions {
		fmt.Fprintf(&b, "  label = %s\n  labelloc = \"t\"\n", dotQuote(summaryLine(p)))
	}
	waves := p.Waves()
	byWave := map[int][]reconcile.Change{}
	last := 0
	for _, c := range p.Changes {
		w := waves[c.Address]
		byWave[w] = append(byWave[w], c)
		last = max(last, w)
	}
	for w := 0; w <= last; w++ {
		if len(byWave[w]) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n  subgraph \"cluster_wave_%d\" {\n    label = \"wave %d\"\n    style = \"rounded\"\n", w+1, w+1)
		for _, c := range byWave[w] {
			fmt.Fprintf(&b, "    %s [%s]\n", dotQuote(c.Address), nodeAttrs(c, actions))
		}
		b.WriteString("  }\n")
	}
	plugins := map[string]string{}
	for _, c := range p.Changes {
		for _, pl := range []struct{ addr, shape string }{{c.Source, "cylinder"}, {c.Converter, "component"}, {c.Target, "box3d"}} {
			if pl.addr != "" {
				plugins[pl.addr] = pl.shape
			}
		}
	}
	if len(plugins) > 0 {
		b.WriteString("\n")
	}
	for _, a := range slices.Sorted(maps.Keys(plugins)) {
		fmt.Fprintf(&b, "  %s [shape = %s, style = \"filled\", fillcolor = \"#dde8f8\"]\n", dotQuote(a), dotQuote(plugins[a]))
	}
	b.WriteString("\n")
	for _, c := range p.Changes {
		for _, d := range c.DependsOn {
			fmt.Fprintf(&b, "  %s -> %s\n", dotQuote(c.Address), dotQuote(d))
		}
	}
	for _, c := range p.Changes {
		for _, pl := range []string{c.Source, c.Converter, c.Target} {
			if pl != "" {
				fmt.Fprintf(&b, "  %s -> %s [style = \"dashed\", color = \"#8899bb\", arrowhead = \"none\", constraint = \"false\"]\n", dotQuote(c.Address), dotQuote(pl))
			}
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// nodeAttrs are one migration's node attributes.
func nodeAttrs(c reconcile.Change, actions bool) string {
	if !actions {
		return "label = " + dotQuote(c.Address)
	}
	st := actionStyle[c.Action]
	label := strings.TrimSpace(c.Action.Symbol() + " " + c.Address)
	color, pen := st[1], "1"
	switch {
	case c.Blocked:
		label += "\n(blocked)"
		color, pen = "#e00000", "3"
	case c.Suspended:
		label += "\n(suspended)"
	}
	return fmt.Sprintf("label = %s, style = \"filled\", fillcolor = %s, color = %s, penwidth = %s, tooltip = %s",
		dotQuote(label), dotQuote(st[0]), dotQuote(color), dotQuote(pen), dotQuote(string(c.Action)+": "+c.Reason))
}

// dotQuote is s as a DOT quoted string: backslashes and quotes escaped,
// newlines as DOT's \n.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", "")
	return `"` + r.Replace(s) + `"`
}
