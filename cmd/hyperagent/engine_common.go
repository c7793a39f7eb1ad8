package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pass"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// addrList is a repeatable flag of migration addresses.
type addrList []addrs.Migration

func (l *addrList) String() string {
	var s []string
	for _, a := range *l {
		s = append(s, a.String())
	}
	return strings.Join(s, ",")
}

func (l *addrList) Set(s string) error {
	a, err := addrs.ParseMigration(s)
	if err != nil {
		return err
	}
	*l = append(*l, a)
	return nil
}

// planFlags are the flags that shape a plan (plan, and apply without a
// saved plan).
type planFlags struct {
	targets, excludes, replace addrList
	refresh                    bool
}

func (pf *planFlags) register(fs *flag.FlagSet) {
	fs.Var(&pf.targets, "target", "plan only this migration (and what it depends on); repeatable")
	fs.Var(&pf.excludes, "exclude", "leave this migration out; repeatable")
	fs.Var(&pf.replace, "replace", "redo this migration from the export; repeatable")
	fs.BoolVar(&pf.refresh, "refresh", true, "observe the plugins (false: plan from state alone)")
}

func (pf *planFlags) request() reconcile.PlanRequest {
	return reconcile.PlanRequest{
		Selection: reconcile.Selection{Targets: pf.targets, Excludes: pf.excludes},
		Replace:   pf.replace, Refresh: pf.refresh,
	}
}

// lockFlags are -lock-timeout (and, where a command may skip the lock,
// -lock), as Terraform's.
type lockFlags struct {
	timeout time.Duration
	lock    bool
}

func (lf *lockFlags) register(fs *flag.FlagSet, canSkip bool) {
	fs.DurationVar(&lf.timeout, "lock-timeout", 0, "how long to wait for the state lock another process holds (e.g. 5m)")
	lf.lock = true
	if canSkip {
		fs.BoolVar(&lf.lock, "lock", true, "take the state lock (false: read the state without it)")
	}
}

// waiting tells the person that the pass waits for the lock, once.
func (lf *lockFlags) waiting(e *env) func(reconcile.LockInfo, time.Duration) {
	told := false
	return func(holder reconcile.LockInfo, _ time.Duration) {
		if !told {
			told = true
			fmt.Fprintf(e.stderr, "Waiting up to %s for the state lock (%s)...\n", lf.timeout, holder)
		}
	}
}

// openWorkspace loads the config in dir and opens it for passes. It
// prints diagnostics and returns nil on failure.
func openWorkspace(ctx context.Context, e *env, dir string, cf configFlags) *pass.Workspace {
	cfg, files, diags := loadConfig(e, dir, cf)
	writeDiagnostics(e, files, diags)
	if diags.HasErrors() {
		return nil
	}
	w, err := pass.Open(ctx, pass.OpenRequest{Config: cfg, Registry: e.registry, Log: e.log, Redact: e.redact})
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return nil
	}
	return w
}

func closeWorkspace(e *env, w *pass.Workspace) {
	if err := w.Close(); err != nil {
		e.log.Warn("closing plugins", "error", err)
	}
}

// stateDirFor finds the state directory for commands that only need the
// state: -state-dir when given, else the config's agent.state_dir. With no
// config files in "." it is ./.hyperagent; a config that does not load is
// an error (its state_dir is unknown, and guessing could show or edit the
// wrong state), reported with its diagnostics.
func stateDirFor(e *env, flagDir string, cf configFlags) (string, bool) {
	if flagDir != "" {
		return flagDir, true
	}
	cfg, files, diags := loadConfig(e, ".", cf)
	if !diags.HasErrors() && cfg != nil {
		return cfg.Agent.StateDir, true
	}
	if len(diags) == 1 && diags[0].Summary == "No configuration files" {
		return schema.DefaultStateDir, true
	}
	writeDiagnostics(e, files, diags)
	fmt.Fprintln(e.stderr, "Error: the configuration in . does not load, so its state directory is unknown; fix it, pass its -var/-var-file, or name the directory with -state-dir")
	return "", false
}

// readState loads the state for commands that only read it; a state
// directory that does not exist is an empty state, and is not created.
func readState(dir string) (*reconcile.State, error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return reconcile.NewState(), nil
	}
	store, err := reconcile.OpenStore(dir)
	if err != nil {
		return nil, err
	}
	return store.Load()
}

// isFile says whether path names a regular file (a saved plan).
func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// parseFlags parses with the usage text; done reports -h or an error.
func parseFlags(fs *flag.FlagSet, e *env, help string, args []string) (code int, done bool) {
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprint(e.stderr, help)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK, true
		}
		return exitError, true
	}
	return 0, false
}
