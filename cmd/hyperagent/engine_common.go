package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
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

// workspace is a loaded config with its plugin instances and state store.
type workspace struct {
	cfg   *schema.Config
	set   *plugins.Set
	store *reconcile.Store
	out   io.Writer // stdout, with the config's secrets redacted
}

// openWorkspace loads the config in dir and builds its plugins. It prints
// diagnostics and returns nil on failure.
func openWorkspace(ctx context.Context, e *env, dir string, cf configFlags) *workspace {
	cfg, files, diags := loadConfig(e, dir, cf)
	writeDiagnostics(e, files, diags)
	if diags.HasErrors() {
		return nil
	}
	if abs, err := filepath.Abs(cfg.Dir); err == nil {
		cfg.Dir = abs
	}
	redactLogs(e, cfg.Secrets())
	set, err := plugins.Instantiate(ctx, e.registry, cfg, e.log)
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", redact(err.Error(), cfg.Secrets()))
		return nil
	}
	store, err := reconcile.OpenStore(cfg.Agent.StateDir)
	if err != nil {
		set.Close()
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return nil
	}
	return &workspace{cfg: cfg, set: set, store: store, out: &redactWriter{w: e.stdout, secrets: cfg.Secrets()}}
}

func (w *workspace) close(e *env) {
	if err := w.set.Close(); err != nil {
		e.log.Warn("closing plugins", "error", err)
	}
}

// errorf prints an error with the config's secrets redacted.
func (w *workspace) errorf(e *env, format string, args ...any) {
	fmt.Fprintf(e.stderr, "Error: %s\n", redact(fmt.Sprintf(format, args...), w.cfg.Secrets()))
}

// redactWriter replaces secrets in everything written. Views write whole
// renderings in one call, so a secret is never split across writes.
type redactWriter struct {
	w       io.Writer
	secrets []string
}

func (r *redactWriter) Write(p []byte) (int, error) {
	if len(r.secrets) == 0 {
		return r.w.Write(p)
	}
	if _, err := io.WriteString(r.w, redact(string(p), r.secrets)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// redactLogs replaces the process logger with one whose output goes
// through redaction: plugins and the engine log errors that may quote
// what a remote said back, and that could contain a credential. A logger
// that logs nothing (tests' null logger) is kept.
func redactLogs(e *env, secrets []string) {
	if len(secrets) == 0 || e.log == nil || e.log.GetLevel() == hclog.NoLevel || e.log.GetLevel() == hclog.Off {
		return
	}
	stderr := e.stderr
	e.stderr = &redactWriter{w: stderr, secrets: secrets}
	e.log = newLogger(e)
	e.stderr = stderr
}

func redact(s string, secrets []string) string { return reconcile.RedactSecrets(s, secrets) }

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

// lockError prints a lock failure, naming the holder.
func lockError(e *env, err error) int {
	var le *reconcile.LockedError
	if errors.As(err, &le) {
		fmt.Fprintf(e.stderr, "Error: %v\n", le)
		return exitError
	}
	fmt.Fprintf(e.stderr, "Error: %v\n", err)
	return exitError
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
