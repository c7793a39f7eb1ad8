package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pass"
	"github.com/hypersdk/hyperagent/schema"
)

const applyHelp = `Usage: hyperagent apply [options] [FILE | DIR] [options]

  Runs the steps of a plan. With FILE (from plan -out) it runs exactly
  that plan, after checking that nothing it was made from has moved, with
  the variable values it was made with: the plan carries them, except the
  secret ones (sensitive variables), which are never written and must be
  given again (-var, -var-file or HYPERAGENT_VAR_name). With
  DIR (default: the current directory) it makes a plan, shows it, and asks
  for "yes" on a terminal (use -auto-approve elsewhere).

  On a terminal each running migration has a line redrawn in place (its
  step, bar, percentage, rate and ETA); elsewhere apply prints timestamped
  lines. With -json it prints the machine-readable UI (JSON lines,
  docs/output.md) and needs -auto-approve or a saved plan.

  The first interrupt (SIGINT, SIGTERM) starts no new steps, cancels those
  in flight, records state and exits 130; a second exits at once (state is
  still consistent: every write is atomic).

Options:
`

// exitInterrupted is the exit code after an interrupt (128 + SIGINT).
const exitInterrupted = 130

// exitNow ends the process on a second interrupt: the one exit outside
// main, because waiting for in-flight steps to wind down is exactly what
// the user refused. Every state write is atomic, so the state on disk is
// consistent at any instant.
var exitNow = os.Exit

func runApply(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	autoApprove := fs.Bool("auto-approve", false, "do not ask for approval")
	parallelism := fs.Int("parallelism", 0, "migrations in flight at once (default: agent.parallelism)")
	asJSON := fs.Bool("json", false, "print the machine-readable UI on stdout: JSON lines (docs/output.md)")
	var cf configFlags
	cf.register(fs)
	var pf planFlags
	pf.register(fs)
	var lf lockFlags
	lf.register(fs, false)
	pos, code, done := parseInterspersed(fs, e, applyHelp, args)
	if done {
		return code
	}
	v := newApplyView(e, *asJSON)
	if len(pos) > 1 {
		v.errorf("apply takes one saved plan or one directory")
		return exitError
	}
	arg := "."
	if len(pos) == 1 {
		arg = pos[0]
	}
	var saved *reconcile.Plan
	dir := arg
	if isFile(arg) {
		if saved = readSavedPlan(v, arg, pf); saved == nil {
			return exitError
		}
		dir = saved.ConfigDir
		// The configuration is loaded with the values the plan was made
		// with; the secret ones it withheld come from -var and the rest.
		cf.saved = &schema.SavedVariables{From: arg, Values: saved.Variables, Withheld: saved.SensitiveVariables}
	}
	// From here an interrupt cancels ctx: waiting for the lock,
	// observing, asking and applying all stop, the lock is released and
	// the exit code is 130.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	interrupted, stop := watchSignals(e, cancel)
	defer stop()
	w := openWorkspace(ctx, e, v, dir, cf)
	if w == nil {
		return interruptedOr(interrupted, exitError)
	}
	defer closeWorkspace(e, w)
	pf.warnTargeting(v)

	req := pass.Request{Mode: pass.ModeApply, Operation: "apply", Saved: saved, Plan: pf.request(),
		LockTimeout: lf.timeout, LockWaiting: lf.waiting(e),
		Apply: reconcile.ApplyOptions{Parallelism: *parallelism, Progress: v.progress, Events: v.event}}
	if saved == nil {
		req.Planned = v.planned
		req.Approve = func(ctx context.Context, p *reconcile.Plan) (bool, error) {
			if *asJSON && !*autoApprove {
				v.errorf("apply -json cannot ask for approval: pass -auto-approve, or apply a saved plan")
				return false, nil
			}
			return approve(ctx, e, v, *autoApprove), nil
		}
	}
	res, err := w.Run(ctx, req)
	v.close()
	if res.Applied != nil {
		v.result(res.Applied)
	}
	switch {
	case err != nil:
		w.fail(v, err)
		return interruptedOr(interrupted, exitError)
	case res.Declined:
		return interruptedOr(interrupted, exitError)
	case res.Applied == nil && res.Plan.Summary.Blocked > 0:
		// Nothing could run: what is left is blocked.
		v.errorf("%d migration(s) are blocked by errors (see the plan)", res.Plan.Summary.Blocked)
		return exitError
	case res.Applied == nil:
		return exitOK
	case interrupted() || len(res.Applied.Interrupted) > 0:
		return exitInterrupted
	case !res.Applied.OK():
		return exitError
	}
	return exitOK
}

// readSavedPlan reads a plan file. A saved plan is applied exactly as
// made: flags that would shape another plan are refused, not ignored.
func readSavedPlan(pv problemView, path string, pf planFlags) *reconcile.Plan {
	if len(pf.targets)+len(pf.excludes)+len(pf.replace) > 0 || !pf.refresh {
		pv.errorf("-target, -exclude, -replace and -refresh shape a new plan; they cannot be used with a saved plan (make the plan with them instead)")
		return nil
	}
	b, err := os.ReadFile(path)
	if err == nil {
		var p *reconcile.Plan
		if p, err = reconcile.DecodePlan(b); err == nil {
			return p
		}
	}
	pv.errorf("%s: %v", path, err)
	return nil
}

// interruptedOr is 130 after an interrupt, else code.
func interruptedOr(interrupted func() bool, code int) int {
	if interrupted() {
		return exitInterrupted
	}
	return code
}

// approve asks for "yes" on a terminal. An interrupt while it waits
// cancels the apply (the read is abandoned; the process is about to exit).
func approve(ctx context.Context, e *env, pv problemView, auto bool) bool {
	if auto {
		return true
	}
	if !e.stdinTTY {
		pv.errorf("apply needs approval: run it on a terminal, or pass -auto-approve (or apply a saved plan)")
		return false
	}
	fmt.Fprint(e.stdout, "\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ")
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(e.stdin).ReadString('\n')
		answer <- line
	}()
	select {
	case line := <-answer:
		if strings.TrimSpace(line) == "yes" {
			return true
		}
	case <-ctx.Done():
	}
	fmt.Fprintln(e.stderr, "\nApply cancelled.")
	return false
}

// watchSignals cancels the apply on the first SIGINT/SIGTERM and exits on
// the second. interrupted says whether a signal arrived; stop ends the
// watch.
func watchSignals(e *env, cancel context.CancelFunc) (interrupted func() bool, stop func()) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	var got atomic.Bool
	go func() {
		select {
		case <-ch:
		case <-done:
			return
		}
		got.Store(true)
		fmt.Fprintln(e.stderr, "\nInterrupt received: starting no new steps, cancelling those in flight, recording state. Interrupt again to exit at once.")
		cancel()
		select {
		case <-ch:
		case <-done:
			return
		}
		fmt.Fprintln(e.stderr, "Second interrupt: exiting now. State is consistent; apply again to continue.")
		exitNow(exitInterrupted)
	}()
	var once sync.Once
	return got.Load, func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
		})
	}
}
