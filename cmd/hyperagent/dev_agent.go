package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/hashicorp/hcl/v2"

	"github.com/hypersdk/hyperagent/agent"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema"
)

// devStatusEvery is how often dev reads the agent's status to show its
// progress: a display refresh, not a wait for work.
const devStatusEvery = 250 * time.Millisecond

// runDevAgent runs the agent (as `hyperagent agent` does, applying on its
// own) on the repo in l until ctx ends, showing each change of its status
// line, and once, when every VM is defined, the summary checked against
// the simulator's disks. A stop by ctx is the clean end, not an error.
func runDevAgent(ctx context.Context, e *env, l devLayout, lv *golibvirt.Libvirt, vms []devVM) error {
	start := time.Now()
	cf := configFlags{varFiles: []string{l.VarFile}}
	load := func() (*schema.Config, schema.Files, hcl.Diagnostics) { return loadConfig(e, l.Dir, cf) }
	autoApply := true
	a := agent.New(agent.Options{
		ConfigDir: l.Dir, Load: load, VarFiles: cf.varFiles, Registry: e.registry, Log: e.log.Named("agent"),
		Redact: e.redact, AutoApply: &autoApply, Version: currentVersion(),
	})
	sock := filepath.Join(l.Dir, "agent.sock")
	ln, err := agent.Listen("unix:"+sock, "")
	if err != nil {
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- a.Serve(ctx, ln) }()
	say(e, "Agent running on %s (auto_apply); status: hyperagent -chdir=%s status -listen=unix:%s", l.Dir, l.Dir, sock)
	say(e, "Stop it with Ctrl-C (SIGINT) or SIGTERM.")

	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx) }()
	tick := time.NewTicker(devStatusEvery)
	defer tick.Stop()
	var line string
	converged, checkedAt := false, -1
	for {
		select {
		case err := <-runErr:
			err = errors.Join(err, <-serveErr)
			if converged {
				say(e, "Agent stopped after %s: %s", time.Since(start).Round(100*time.Millisecond), a.Status().Line())
			} else {
				say(e, "Agent stopped before the campaign converged: %s", a.Status().Line())
			}
			return err
		case <-tick.C:
		}
		s := a.Status()
		if sl := s.Line(); sl != line {
			line = sl
			say(e, "agent: %s", line)
		}
		if converged || s.Passes == checkedAt {
			continue
		}
		if s.Phases[reconcile.PhaseDefined] == len(vms) && s.OutOfSync > 0 {
			// The pass that defined the last domain counted it as to do;
			// ask for one more pass to confirm there is nothing left, as
			// POST /v1/reconcile would, rather than wait for the resync.
			checkedAt = s.Passes
			a.Trigger()
			continue
		}
		if !devConverged(s, len(vms)) {
			continue
		}
		// Checked once per pass that looks converged: the state and the
		// disks must agree with what the status says.
		checkedAt = s.Passes
		if err := devSummary(ctx, e, l, lv, vms); err != nil {
			e.log.Debug("not converged yet", "pass", s.Passes, "error", err)
			continue
		}
		converged = true
		say(e, "Converged in %s. The agent keeps reconciling (on file events, and every %s); stop it with Ctrl-C or SIGTERM.",
			time.Since(start).Round(100*time.Millisecond), schema.DefaultInterval)
	}
}

// devConverged says whether the agent reports every VM defined and
// nothing left to do.
func devConverged(s agent.Status, vms int) bool {
	return s.Ready && s.Passes > 0 && s.LastError == "" && len(s.ConfigErrors) == 0 &&
		s.OutOfSync == 0 && len(s.Retrying) == 0 && s.Phases[reconcile.PhaseDefined] == vms
}

// undefineDevDomains removes the domains dev defined (their names start
// with prefix) from the test driver, saying which.
func undefineDevDomains(e *env, lv *golibvirt.Libvirt, prefix string, names []string) error {
	var errs []error
	n := 0
	for _, name := range names {
		d, err := lv.DomainLookupByName(prefix + name)
		if err != nil {
			var le golibvirt.Error
			if errors.As(err, &le) && le.Code == uint32(golibvirt.ErrNoDomain) {
				continue // never defined
			}
			errs = append(errs, fmt.Errorf("look up domain %s: %w", prefix+name, err))
			continue
		}
		if active, _ := lv.DomainIsActive(d); active == 1 {
			if err := lv.DomainDestroy(d); err != nil {
				errs = append(errs, fmt.Errorf("stop domain %s: %w", d.Name, err))
				continue
			}
		}
		if err := lv.DomainUndefine(d); err != nil {
			errs = append(errs, fmt.Errorf("undefine domain %s: %w", d.Name, err))
			continue
		}
		n++
	}
	if n > 0 {
		say(e, "Undefined the %d domains named %s* on %s.", n, prefix, devURI)
	}
	return errors.Join(errs...)
}
