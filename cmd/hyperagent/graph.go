package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pass"
)

const graphHelp = `Usage: hyperagent graph [options] [DIR]

  Prints the migrations of the configuration in DIR (default: the current
  directory) as a graph in Graphviz's DOT language: one cluster per wave
  of the depends_on graph (a wave starts once the one before it is
  defined), an edge from each migration to each migration it depends on,
  and dashed edges to the source, converter and target it uses. Render it
  with, for example: hyperagent graph | dot -Tsvg > graph.svg

  Without -type it reads only the configuration (no variable values are
  needed, as for validate). With -type=plan it makes the plan, as
  hyperagent plan does (observing everything, under the state lock), and
  colours each migration by what the plan would do: create (green),
  update (yellow), replace (orange), remove (red), nothing (grey); a
  migration the plan blocks has a red border.

Options:
`

// graphSynopsis is graph's line in the command table.
const graphSynopsis = "Show the migrations and their depends_on waves as a DOT graph"

func runGraph(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("graph", flag.ContinueOnError)
	typ := fs.String("type", "", `"plan": colour each migration by what the plan would do`)
	var cf configFlags
	cf.register(fs)
	var lf lockFlags
	lf.register(fs, true)
	if code, done := parseFlags(fs, e, graphHelp, args); done {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(e.stderr, "Error: graph takes at most one directory")
		return exitError
	}
	if *typ != "" && *typ != "plan" {
		fmt.Fprintf(e.stderr, "Error: -type=%s: the only type is \"plan\"\n", *typ)
		return exitError
	}
	dir := "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	var p *reconcile.Plan
	if *typ == "plan" {
		if p = graphPlan(ctx, e, dir, cf, lf); p == nil {
			return exitError
		}
	} else {
		cfg, _, ok := loadForDiscovery(e, dir, cf)
		if !ok {
			return exitError
		}
		// The configuration alone: Diff is pure, and against an empty
		// state it lists every migration with its dependencies.
		p = reconcile.Diff(reconcile.DiffRequest{Config: cfg, State: reconcile.NewState()})
	}
	if _, err := fmt.Fprint(e.stdout, renderDOT(p, *typ == "plan")); err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	return exitOK
}

// graphPlan makes the plan as hyperagent plan does.
func graphPlan(ctx context.Context, e *env, dir string, cf configFlags, lf lockFlags) *reconcile.Plan {
	w := openWorkspace(ctx, e, humanProblems{e}, dir, cf)
	if w == nil {
		return nil
	}
	defer closeWorkspace(e, w)
	res, err := w.Run(ctx, pass.Request{Mode: pass.ModePlan, Operation: "graph", Plan: reconcile.PlanRequest{Refresh: true},
		LockTimeout: lf.timeout, NoLock: !lf.lock, LockWaiting: lf.waiting(e)})
	if err != nil {
		w.fail(humanProblems{e}, err)
		return nil
	}
	return res.Plan
}
