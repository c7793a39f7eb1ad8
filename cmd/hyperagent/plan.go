package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/hypersdk/hyperagent/reconcile"
)

const planHelp = `Usage: hyperagent plan [options] [DIR]

  Observes every VM, job and domain the configuration in DIR (default: the
  current directory) names, compares them with the configuration and the
  state, and shows the steps left. It changes nothing.

Exit codes: 0 no changes (or, without -detailed-exitcode, success),
1 error, 2 changes pending (with -detailed-exitcode).

Options:
`

func runPlan(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	out := fs.String("out", "", "save the plan to FILE (mode 0600) for `apply FILE`")
	asJSON := fs.Bool("json", false, "print the plan as JSON on stdout")
	detailed := fs.Bool("detailed-exitcode", false, "exit 2 when changes are pending")
	var cf configFlags
	cf.register(fs)
	var pf planFlags
	pf.register(fs)
	if code, done := parseFlags(fs, e, planHelp, args); done {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(e.stderr, "Error: plan takes at most one directory")
		return exitError
	}
	dir := "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	w := openWorkspace(ctx, e, dir, cf)
	if w == nil {
		return exitError
	}
	defer w.close(e)
	st, err := w.store.Load()
	if err != nil {
		w.errorf(e, "%v", err)
		return exitError
	}
	p, err := reconcile.MakePlan(ctx, w.cfg, st, w.set, pf.request())
	if err != nil {
		w.errorf(e, "%v", err)
		return exitError
	}
	reconcile.RedactPlan(p, w.cfg.Secrets())
	if *out != "" {
		b, err := p.Encode()
		if err == nil {
			err = reconcile.WriteFileAtomic(*out, b)
		}
		if err != nil {
			w.errorf(e, "saving the plan: %v", err)
			return exitError
		}
	}
	if err := viewPlan(w, p, *asJSON); err != nil {
		w.errorf(e, "%v", err)
		return exitError
	}
	if *out != "" && !*asJSON {
		fmt.Fprintf(w.out, "\nSaved the plan to %s. To run exactly these steps: hyperagent apply %s\n", *out, *out)
	}
	switch {
	case p.Summary.Blocked > 0:
		fmt.Fprintf(e.stderr, "Error: %d migration(s) are blocked by errors (see the plan)\n", p.Summary.Blocked)
		return exitError
	case *detailed && p.HasChanges():
		return exitChanges
	}
	return exitOK
}
