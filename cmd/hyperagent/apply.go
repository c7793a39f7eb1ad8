package main

import (
	"bufio"
	"context"
	"encoding/json"
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
	asJSON := fs.Bool("json", false, "print JSON lines (events and the summary) on stdout")
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
	if len(pos) > 1 {
		fmt.Fprintln(e.stderr, "Error: apply takes one saved plan or one directory")
		return exitError
	}
	arg := "."
	if len(pos) == 1 {
		arg = pos[0]
	}
	var saved *reconcile.Plan
	dir := arg
	if isFile(arg) {
		if saved = readSavedPlan(e, arg, pf); saved == nil {
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
	w := openWorkspace(ctx, e, dir, cf)
	if w == nil {
		return interruptedOr(interrupted, exitError)
	}
	defer closeWorkspace(e, w)
	pf.warnTargeting(e)

	v := newApplyView(e, *asJSON)
	req := pass.Request{Mode: pass.ModeApply, Operation: "apply", Saved: saved, Plan: pf.request(),
		LockTimeout: lf.timeout, LockWaiting: lf.waiting(e),
		Apply: reconcile.ApplyOptions{Parallelism: *parallelism, Progress: v.progress.report, Events: v.event}}
	if saved == nil {
		req.Planned = func(p *reconcile.Plan) {
			if !*asJSON {
				if err := renderPlanTo(e.stdout, p, false); err != nil {
					fmt.Fprintf(e.stderr, "Error: %v\n", err)
				}
			}
		}
		req.Approve = func(ctx context.Context, p *reconcile.Plan) (bool, error) {
			if *asJSON && !*autoApprove {
				fmt.Fprintln(e.stderr, "Error: apply -json cannot ask for approval: pass -auto-approve, or apply a saved plan")
				return false, nil
			}
			return approve(ctx, e, *autoApprove), nil
		}
	}
	res, err := w.Run(ctx, req)
	v.progress.done()
	if res.Applied != nil {
		v.result(res.Applied)
	}
	switch {
	case err != nil:
		w.fail(e, err)
		return interruptedOr(interrupted, exitError)
	case res.Declined:
		return interruptedOr(interrupted, exitError)
	case res.Applied == nil && res.Plan.Summary.Blocked > 0:
		// Nothing could run: what is left is blocked.
		fmt.Fprintf(e.stderr, "Error: %d migration(s) are blocked by errors (see the plan)\n", res.Plan.Summary.Blocked)
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
func readSavedPlan(e *env, path string, pf planFlags) *reconcile.Plan {
	if len(pf.targets)+len(pf.excludes)+len(pf.replace) > 0 || !pf.refresh {
		fmt.Fprintln(e.stderr, "Error: -target, -exclude, -replace and -refresh shape a new plan; they cannot be used with a saved plan (make the plan with them instead)")
		return nil
	}
	b, err := os.ReadFile(path)
	if err == nil {
		var p *reconcile.Plan
		if p, err = reconcile.DecodePlan(b); err == nil {
			return p
		}
	}
	fmt.Fprintf(e.stderr, "Error: %s: %v\n", path, err)
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
func approve(ctx context.Context, e *env, auto bool) bool {
	if auto {
		return true
	}
	if !e.stdinTTY {
		fmt.Fprintln(e.stderr, "Error: apply needs approval: run it on a terminal, or pass -auto-approve (or apply a saved plan)")
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

// applyView shows an apply: step lines and progress for people, or
// JSON lines (events, progress, the summary) with -json.
type applyView struct {
	e        *env
	asJSON   bool
	outMu    sync.Mutex
	progress *progressView
}

func newApplyView(e *env, asJSON bool) *applyView {
	v := &applyView{e: e, asJSON: asJSON}
	var jsonOut func(any)
	if asJSON {
		jsonOut = v.emit
	}
	v.progress = newProgressView(&v.outMu, e.stdout, e.stdoutTTY, jsonOut)
	return v
}

func (v *applyView) emit(x any) {
	b, _ := json.Marshal(x)
	v.outMu.Lock()
	defer v.outMu.Unlock()
	_, _ = v.e.stdout.Write(append(b, '\n'))
}

func (v *applyView) event(ev reconcile.Event) {
	if v.asJSON {
		v.emit(eventJSON(ev))
		return
	}
	line := fmt.Sprintf("%s: %s %s", ev.Address, ev.Step, ev.Status)
	if ev.Status == "failed" {
		line += ": " + ev.Err.Error()
	}
	v.progress.println(line)
}

func (v *applyView) result(res *reconcile.Result) {
	if v.asJSON {
		v.emit(struct {
			Type   string            `json:"type"`
			Result *reconcile.Result `json:"result"`
		}{"summary", res})
		return
	}
	viewResult(v.e.stdout, res)
}

type stepEvent struct {
	Type    string `json:"type"`
	Address string `json:"address"`
	Step    string `json:"step"`
	Status  string `json:"status"`
	Detail  string `json:"detail,omitempty"`
	Error   string `json:"error,omitempty"`
}

func eventJSON(ev reconcile.Event) stepEvent {
	out := stepEvent{Type: "step", Address: ev.Address, Step: string(ev.Step), Status: ev.Status, Detail: ev.Detail}
	if ev.Err != nil {
		out.Error = ev.Err.Error()
	}
	return out
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
