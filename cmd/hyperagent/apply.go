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
)

const applyHelp = `Usage: hyperagent apply [options] [FILE | DIR]

  Runs the steps of a plan. With FILE (from plan -out) it runs exactly
  that plan, after checking that nothing it was made from has moved. With
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
	if code, done := parseFlags(fs, e, applyHelp, args); done {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(e.stderr, "Error: apply takes one saved plan or one directory")
		return exitError
	}
	arg := "."
	if fs.NArg() == 1 {
		arg = fs.Arg(0)
	}
	var saved *reconcile.Plan
	dir := arg
	if isFile(arg) {
		if saved = readSavedPlan(e, arg, pf); saved == nil {
			return exitError
		}
		dir = saved.ConfigDir
	}
	// From here an interrupt cancels ctx: observing, asking and applying
	// all stop, the lock is released and the exit code is 130.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	interrupted, stop := watchSignals(e, cancel)
	defer stop()
	w := openWorkspace(ctx, e, dir, cf)
	if w == nil {
		return interruptedOr(interrupted, exitError)
	}
	defer w.close(e)
	if _, err := w.store.Lock("apply"); err != nil {
		return lockError(e, err)
	}
	defer func() {
		if err := w.store.Unlock(); err != nil {
			w.errorf(e, "%v", err)
		}
	}()
	st, err := w.store.Load()
	if err != nil {
		w.errorf(e, "%v", err)
		return exitError
	}
	p, code, ok := planToApply(ctx, e, w, st, saved, pf, *autoApprove, *asJSON)
	if !ok {
		return interruptedOr(interrupted, code)
	}
	return applyPlan(ctx, e, w, st, p, *parallelism, *asJSON, interrupted)
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

// planToApply checks a saved plan for staleness, or makes, shows and
// approves a new one. ok is false when there is nothing to run; code is
// then the exit code.
func planToApply(ctx context.Context, e *env, w *workspace, st *reconcile.State, saved *reconcile.Plan,
	pf planFlags, autoApprove, asJSON bool) (p *reconcile.Plan, code int, ok bool) {
	if saved != nil {
		if err := reconcile.CheckStale(ctx, saved, w.cfg, st, w.set); err != nil {
			w.errorf(e, "%v", err)
			return nil, exitError, false
		}
		return saved, 0, true
	}
	p, err := reconcile.MakePlan(ctx, w.cfg, st, w.set, pf.request())
	if err != nil {
		w.errorf(e, "%v", err)
		return nil, exitError, false
	}
	reconcile.RedactPlan(p, w.cfg.Secrets())
	if !asJSON {
		if err := viewPlan(w, p, false); err != nil {
			w.errorf(e, "%v", err)
			return nil, exitError, false
		}
	}
	if !p.HasChanges() {
		// Nothing to run, but what state keeps about the config
		// (prevent_destroy) is recorded.
		eng := &reconcile.Engine{Config: w.cfg, Plugins: w.set, Store: w.store, State: st, Log: e.log.Named("apply"),
			Secrets: w.cfg.Secrets()}
		if err := eng.SyncRecords(p); err != nil {
			w.errorf(e, "%v", err)
			return nil, exitError, false
		}
		if p.Summary.Blocked > 0 {
			fmt.Fprintf(e.stderr, "Error: %d migration(s) are blocked by errors (see the plan)\n", p.Summary.Blocked)
			return nil, exitError, false
		}
		return nil, exitOK, false
	}
	if asJSON && !autoApprove {
		fmt.Fprintln(e.stderr, "Error: apply -json cannot ask for approval: pass -auto-approve, or apply a saved plan")
		return nil, exitError, false
	}
	if code, ok := approve(ctx, e, autoApprove); !ok {
		return nil, code, false
	}
	return p, 0, true
}

// approve asks for "yes" on a terminal. An interrupt while it waits
// cancels the apply (the read is abandoned; the process is about to exit).
func approve(ctx context.Context, e *env, auto bool) (int, bool) {
	if auto {
		return 0, true
	}
	if !e.stdinTTY {
		fmt.Fprintln(e.stderr, "Error: apply needs approval: run it on a terminal, or pass -auto-approve (or apply a saved plan)")
		return exitError, false
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
			return 0, true
		}
	case <-ctx.Done():
	}
	fmt.Fprintln(e.stderr, "\nApply cancelled.")
	return exitError, false
}

// applyPlan runs the plan and reports the result. ctx is cancelled by an
// interrupt, which interrupted reports.
func applyPlan(ctx context.Context, e *env, w *workspace, st *reconcile.State, p *reconcile.Plan, parallelism int,
	asJSON bool, interrupted func() bool) int {

	var outMu sync.Mutex
	emit := func(v any) {
		b, _ := json.Marshal(v)
		outMu.Lock()
		defer outMu.Unlock()
		_, _ = w.out.Write(append(b, '\n'))
	}
	var jsonOut func(any)
	if asJSON {
		jsonOut = emit
	}
	progress := newProgressView(&outMu, w.out, e.stdoutTTY, jsonOut)
	eng := &reconcile.Engine{Config: w.cfg, Plugins: w.set, Store: w.store, State: st, Log: e.log.Named("apply"),
		Parallelism: parallelism, Secrets: w.cfg.Secrets(), Progress: progress.report}
	eng.Events = func(ev reconcile.Event) {
		if asJSON {
			emit(eventJSON(ev))
			return
		}
		line := fmt.Sprintf("%s: %s %s", ev.Address, ev.Step, ev.Status)
		if ev.Status == "failed" {
			line += ": " + ev.Err.Error()
		}
		progress.println(line)
	}
	res, err := eng.Apply(ctx, p)
	progress.done()
	if res != nil {
		if asJSON {
			emit(struct {
				Type   string            `json:"type"`
				Result *reconcile.Result `json:"result"`
			}{"summary", res})
		} else {
			viewResult(w.out, res)
		}
	}
	switch {
	case err != nil:
		w.errorf(e, "%v", err)
		return exitError
	case interrupted() || len(res.Interrupted) > 0:
		return exitInterrupted
	case !res.OK():
		return exitError
	}
	return exitOK
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
