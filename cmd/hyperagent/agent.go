package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"golang.org/x/term"

	"github.com/hypersdk/hyperagent/agent"
	"github.com/hypersdk/hyperagent/plugins/sdnotify"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pass"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

const agentHelp = `Usage: hyperagent agent [options]

  Runs as a service that reconciles the migration repo continuously: a
  change to its files, to a converter's workflow directory or to an export
  directory, SIGHUP, a migration's retry time, or the periodic resync
  (agent.interval) starts a pass — re-read the configuration, observe,
  plan, and with auto_apply apply — one at a time. A configuration that
  does not load is reported and the last good one keeps running. Each
  pass takes the state lock and releases it, so plan and apply can run in
  between. Under systemd (Type=notify) it sends READY, STATUS, WATCHDOG,
  RELOADING and STOPPING. SIGHUP reloads; SIGTERM or SIGINT stops after
  cancelling the pass in flight (state recorded, lock released).

  agent suspend and agent resume hold and release migrations.

Options:
`

// suspendHelp is the help of agent suspend and agent resume.
var suspendHelp = map[string]string{
	"suspend": `Usage: hyperagent agent suspend [options] (ADDR... | -all)

  Holds migrations (or, with -all, the whole campaign) so that no step of
  theirs runs, in the agent or in apply, until agent resume. It is
  recorded in the state and survives restarts; a running agent sees it at
  its next pass.

Options:
`,
	"resume": `Usage: hyperagent agent resume [options] (ADDR... | -all)

  Lets migrations held by agent suspend (or, with -all, the whole
  campaign) run again; recorded in the state.

Options:
`,
}

func runAgent(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	configDir := fs.String("config", ".", "the migration repo")
	stateDir := fs.String("state-dir", "", "the state directory (default: the config's agent.state_dir)")
	listen := fs.String("listen", "", "serve the status API on unix:PATH or tcp:HOST:PORT (outside loopback only with agent.status_token_file) (default: agent.status_socket and agent.status_addr)")
	interval := fs.Duration("interval", 0, "periodic resync (default: agent.interval)")
	parallelism := fs.Int("parallelism", 0, "migrations in flight at once (default: agent.parallelism)")
	var autoApply optBool
	fs.Var(&autoApply, "auto-apply", "apply without a person (default: agent.auto_apply)")
	lockTimeout := fs.Duration("lock-timeout", 10*time.Second, "how long a pass waits for a lock someone else holds")
	var cf configFlags
	cf.register(fs)
	if code, done := parseFlags(fs, e, agentHelp, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "Error: unexpected argument %q\n", fs.Arg(0))
		return exitError
	}
	dir, err := filepath.Abs(*configDir)
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: -config: %v\n", err)
		return exitError
	}
	e.log = serviceLogger(e, term.IsTerminal(int(os.Stderr.Fd())))
	// A service lives for weeks beside the conversions: trade a little
	// CPU for a heap that stays near what it holds (GOGC overrides).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	load := func() (*schema.Config, schema.Files, hcl.Diagnostics) { return loadConfig(e, dir, cf) }
	o := agent.Options{
		ConfigDir: dir, Load: load, VarFiles: cf.varFiles, Registry: e.registry, Log: e.log.Named("agent"), Redact: e.redact,
		Notifier: sdnotify.New(e.log), StateDir: *stateDir, Interval: *interval, Parallelism: *parallelism,
		LockTimeout: *lockTimeout, Version: currentVersion(),
	}
	if autoApply.set {
		o.AutoApply = &autoApply.v
	}
	if v := e.getenv("HYPERAGENT_AGENT_WATCHDOG"); v != "" { // tests: a watchdog without systemd
		if d, err := time.ParseDuration(v); err == nil {
			o.Watchdog = d
		}
	}
	if v := e.getenv("HYPERAGENT_AGENT_POLL"); v != "" { // tests
		if d, err := time.ParseDuration(v); err == nil {
			o.PollInterval, o.ProgressInterval = d, d
		}
	}
	// Tests: what a filesystem without events (NFS) gives, on any disk.
	o.NoEvents = e.getenv("HYPERAGENT_AGENT_NO_EVENTS") != ""
	a := agent.New(o)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The status API: -listen, else the agent block's addresses; over
	// TCP with the block's token file.
	specs, tokenFile := []string{*listen}, ""
	cfg, _, diags := load()
	if *listen == "" {
		specs = nil
	}
	if !diags.HasErrors() {
		tokenFile = cfg.Agent.StatusTokenFile
		if *listen == "" && cfg.Agent.StatusSocket != "" {
			specs = append(specs, "unix:"+cfg.Agent.StatusSocket)
		}
		if *listen == "" && cfg.Agent.StatusAddr != "" {
			specs = append(specs, "tcp:"+cfg.Agent.StatusAddr)
		}
	}
	for _, spec := range specs {
		l, err := agent.Listen(spec, tokenFile)
		if err != nil {
			fmt.Fprintf(e.stderr, "Error: %v\n", err)
			return exitError
		}
		go func() {
			if err := a.Serve(ctx, l); err != nil {
				e.log.Error("status API stopped", "error", err)
			}
		}()
		e.log.Info("status API", "listen", spec, "address", l.Addr().String(), "token", l.RequiresToken())
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		stopping := false
		for s := range sigs {
			switch {
			case s == syscall.SIGHUP:
				a.Reload()
			case !stopping:
				stopping = true
				e.log.Info("stopping", "signal", s.String())
				cancel()
			default:
				e.log.Warn("second stop signal: exiting now; state is consistent")
				exitNow(exitInterrupted)
			}
		}
	}()
	if err := a.Run(ctx); err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	return exitOK
}

// suspendCommand is `agent suspend` or `agent resume`.
func suspendCommand(verb string) func(ctx context.Context, e *env, args []string) int {
	return func(ctx context.Context, e *env, args []string) int { return runSuspend(ctx, e, verb, args) }
}

// runSuspend records `agent suspend` or `resume` in the state.
func runSuspend(ctx context.Context, e *env, verb string, args []string) int {
	fs := flag.NewFlagSet("agent "+verb, flag.ContinueOnError)
	all := fs.Bool("all", false, "the whole campaign")
	configDir := fs.String("config", ".", "the migration repo")
	stateDir := fs.String("state-dir", "", "the state directory (default: the config's agent.state_dir)")
	var lf lockFlags
	lf.register(fs, false)
	var cf configFlags
	cf.register(fs)
	if code, done := parseFlags(fs, e, suspendHelp[verb], args); done {
		return code
	}
	var list []addrs.Migration
	for _, s := range fs.Args() {
		a, err := addrs.ParseMigration(s)
		if err != nil {
			fmt.Fprintf(e.stderr, "Error: %v\n", err)
			return exitError
		}
		list = append(list, a)
	}
	if *all == (len(list) > 0) {
		fmt.Fprintf(e.stderr, "Error: agent %s takes addresses or -all\n", verb)
		return exitError
	}
	ref, ok := stateIn(e, *configDir, *stateDir, cf)
	if !ok {
		return exitError
	}
	// An address is known when the configuration or the state has it.
	inConfig := map[string]bool{}
	if cfg, _, diags := loadConfig(e, *configDir, cf); !diags.HasErrors() && cfg != nil {
		for _, m := range cfg.Migrations {
			inConfig[m.Addr.String()] = true
		}
	}
	store, err := ref.open()
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	defer store.Close()
	now := time.Now().UTC()
	err = pass.Edit(ctx, store, "agent "+verb, lf.timeout, func(st *reconcile.State) error {
		if verb == "suspend" {
			return pass.Suspend(st, list, *all, func(a string) bool { return inConfig[a] || st.Migrations[a] != nil }, now)
		}
		return pass.Resume(st, list, *all, now)
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	what := "the whole campaign"
	if !*all {
		what = fmt.Sprint(list)
	}
	done := map[string]string{"suspend": "Suspended", "resume": "Resumed"}[verb]
	fmt.Fprintf(e.stdout, "%s %s (a running agent sees it at its next pass).\n", done, what)
	return exitOK
}

// optBool is a boolean flag that knows whether it was given.
type optBool struct{ v, set bool }

func (b *optBool) String() string   { return strconv.FormatBool(b.v) }
func (b *optBool) IsBoolFlag() bool { return true }
func (b *optBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	b.v, b.set = v, true
	return nil
}
