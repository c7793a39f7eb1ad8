package main

import (
	"context"
	"flag"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pass"
)

const planHelp = `Usage: hyperagent plan [options] [DIR]

  Observes every VM, job and domain the configuration in DIR (default: the
  current directory) names, compares them with the configuration and the
  state, and shows the steps left. It changes nothing.

  With -json it prints the machine-readable UI instead, as Terraform's:
  JSON lines (planned_change, change_summary, diagnostic). The plan as one
  JSON document is show -json FILE, of a plan saved with -out.

Exit codes: 0 no changes (or, without -detailed-exitcode, success),
1 error, 2 changes pending (with -detailed-exitcode).

Options:
`

func runPlan(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	out := fs.String("out", "", "save the plan to `FILE` (mode 0600), for hyperagent apply FILE")
	asJSON := fs.Bool("json", false, "print the machine-readable UI on stdout: JSON lines (docs/output.md)")
	detailed := fs.Bool("detailed-exitcode", false, "exit 2 when changes are pending")
	var cf configFlags
	cf.register(fs)
	var pf planFlags
	pf.register(fs)
	var lf lockFlags
	lf.register(fs, true)
	pos, code, done := parseInterspersed(fs, e, planHelp, args)
	if done {
		return code
	}
	v := newPlanView(e, *asJSON)
	if len(pos) > 1 {
		v.errorf("plan takes at most one directory")
		return exitError
	}
	dir := "."
	if len(pos) == 1 {
		dir = pos[0]
	}
	w := openWorkspace(ctx, e, v, dir, cf)
	if w == nil {
		return exitError
	}
	defer closeWorkspace(e, w)
	pf.warnTargeting(v)
	res, err := w.Run(ctx, pass.Request{Mode: pass.ModePlan, Operation: "plan", Plan: pf.request(),
		LockTimeout: lf.timeout, NoLock: !lf.lock, LockWaiting: lf.waiting(e)})
	if err != nil {
		w.fail(v, err)
		return exitError
	}
	p := res.Plan
	if *out != "" {
		b, err := p.Encode()
		if err == nil {
			err = reconcile.WriteFileAtomic(*out, b)
		}
		if err != nil {
			v.errorf("saving the plan: %v", err)
			return exitError
		}
	}
	if err := v.plan(p); err != nil {
		v.errorf("%v", err)
		return exitError
	}
	if *out != "" {
		v.saved(*out)
	}
	switch {
	case p.Summary.Blocked > 0:
		v.errorf("%d migration(s) are blocked by errors (see the plan)", p.Summary.Blocked)
		return exitError
	case *detailed && p.HasChanges():
		return exitChanges
	}
	return exitOK
}
