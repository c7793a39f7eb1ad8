package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pass"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// planFlags are the flags that shape a plan (plan, and apply without a
// saved plan).
type planFlags struct {
	targets, excludes, replace []addrs.Migration
	refresh                    bool
}

func (pf *planFlags) register(fs *flag.FlagSet) {
	fs.Var(addrsFlag(&pf.targets), "target", "plan only the migration at `ADDR` (and what it depends on); repeatable")
	fs.Var(addrsFlag(&pf.excludes), "exclude", "leave the migration at `ADDR` out; repeatable")
	fs.Var(addrsFlag(&pf.replace), "replace", "redo the migration at `ADDR` from the export; repeatable")
	fs.BoolVar(&pf.refresh, "refresh", true, "observe the plugins (false: plan from state alone)")
}

// warnTargeting says, as Terraform does, that a targeted plan may not be
// all the configuration asks for.
func (pf *planFlags) warnTargeting(pv problemView) {
	if len(pf.targets) == 0 {
		return
	}
	pv.diagnostics(nil, hcl.Diagnostics{{Severity: hcl.DiagWarning, Summary: "Targeting is in effect",
		Detail: "This plan is limited to the migrations -target names and what they depend on, so it may not be " +
			"all the configuration asks for. -target is for exceptional situations (recovering from an error), not routine use."}})
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

// workspace is an opened configuration with its source files, for
// diagnostics with snippets.
type workspace struct {
	*pass.Workspace
	files schema.Files
}

// openWorkspace loads the config in dir and opens it for passes. It
// shows diagnostics in pv and returns nil on failure.
func openWorkspace(ctx context.Context, e *env, pv problemView, dir string, cf configFlags) *workspace {
	cfg, files, diags := loadConfig(e, dir, cf)
	pv.diagnostics(files, diags)
	if diags.HasErrors() {
		return nil
	}
	w, err := pass.Open(ctx, pass.OpenRequest{Config: cfg, Registry: e.registry, Log: e.log, Redact: e.redact})
	if err != nil {
		pv.diagnostics(files, pluginDiagnostics(cfg, err))
		return nil
	}
	return &workspace{Workspace: w, files: files}
}

// fail shows a pass's error: at the configuration's value at fault when
// a plugin said which, else as an error without a place.
func (w *workspace) fail(pv problemView, err error) {
	var pe *plugins.PluginError
	if errors.As(err, &pe) {
		pv.diagnostics(w.files, pluginDiagnostics(w.Config, err))
		return
	}
	pv.errorf("%v", err)
}

// pluginDiagnostics shows plugins that could not start: at the attribute
// whose value was wrong when the plugin said which, else at the block.
func pluginDiagnostics(cfg *schema.Config, err error) hcl.Diagnostics {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var diags hcl.Diagnostics
	for _, err := range errs {
		d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "A plugin failed", Detail: err.Error()}
		var ie *plugins.PluginError
		if errors.As(err, &ie) {
			d.Summary = ie.Addr.String() + " failed"
			if ie.Starting {
				d.Summary = ie.Addr.String() + " cannot start"
			}
			d.Detail = ie.Err.Error()
			// At the attribute the plugin named, else at the block.
			if b := cfg.PluginBlock(ie.Addr.String()); b != nil {
				d.Subject = b.DeclRange.Ptr()
				var ce *plugins.ConfigError
				if errors.As(err, &ce) {
					if r, ok := b.AttrRanges[ce.Attr]; ok {
						d.Subject = r.Ptr()
					}
				}
			}
		}
		diags = append(diags, d)
	}
	return diags
}

func closeWorkspace(e *env, w *workspace) {
	if err := w.Close(); err != nil {
		e.log.Warn("closing plugins", "error", err)
	}
}

// stateRef is where the commands that only need the state find it: a
// local directory, or the store a configuration's state block names.
type stateRef struct {
	dir string         // the local state directory; "" when cfg names another backend
	cfg *schema.Config // the configuration, when one loaded
}

// open opens the store as a pass does (a local directory is created if
// missing).
func (r stateRef) open() (*reconcile.Store, error) { return pass.OpenStore(r.cfg, r.dir) }

// stateFor finds the state for commands that only need the state:
// -state-dir when given (a local directory), else the store the
// configuration in "." names (its state block, else agent.state_dir).
// With no config files in "." it is ./.hyperagent; a config that does not
// load is an error (where its state is is unknown, and guessing could
// show or edit the wrong state), reported with its diagnostics.
func stateFor(e *env, flagDir string, cf configFlags) (stateRef, bool) {
	return stateIn(e, ".", flagDir, cf)
}

// stateIn is stateFor for the configuration in dir. The configuration is
// loaded with unset variables left unknown, as validate loads it: finding
// the state needs no secret (a vCenter password), only the variables the
// state's own settings use, which are named when missing. The
// configuration's secrets (a connection string) go to the redactor.
func stateIn(e *env, dir, flagDir string, cf configFlags) (stateRef, bool) {
	if flagDir != "" {
		return stateRef{dir: flagDir}, true
	}
	o := cf.options(e, dir)
	o.UnsetUnknown = true
	cfg, files, diags := schema.Load(o)
	if !diags.HasErrors() && cfg != nil {
		if ds := cfg.StateLocationDiagnostics(); ds.HasErrors() {
			writeDiagnostics(e, files, ds)
			fmt.Fprintf(e.stderr, "Error: where the configuration in %s keeps its state depends on variables that are not set (above); give them, or name a state directory with -state-dir\n", dir)
			return stateRef{}, false
		}
		e.redact.SetSecrets(cfg.Secrets())
		if cfg.State.Backend == schema.BackendPG {
			return stateRef{cfg: cfg}, true
		}
		return stateRef{dir: cfg.Agent.StateDir, cfg: cfg}, true
	}
	if len(diags) == 1 && diags[0].Summary == "No configuration files" {
		return stateRef{dir: schema.DefaultStateDir}, true
	}
	writeDiagnostics(e, files, diags)
	fmt.Fprintf(e.stderr, "Error: the configuration in %s does not load, so its state directory is unknown (or the store its state block names); fix it, pass its -var/-var-file, or name a state directory with -state-dir\n", dir)
	return stateRef{}, false
}

// readState loads the state of a local directory for commands that only
// read it (readStateAt).
func readState(dir string) (*reconcile.State, error) { return readStateAt(stateRef{dir: dir}) }

// readStateAt loads the state for commands that only read it; a local
// state directory that does not exist is an empty state, and is not
// created.
func readStateAt(ref stateRef) (*reconcile.State, error) {
	if ref.dir != "" {
		if _, err := os.Stat(ref.dir); errors.Is(err, os.ErrNotExist) {
			return reconcile.NewState(), nil
		}
	}
	store, err := ref.open()
	if err != nil {
		return nil, err
	}
	defer store.Close()
	return store.Load()
}

// isFile says whether path names a regular file (a saved plan).
func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
