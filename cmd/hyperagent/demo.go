//go:build demo

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins/worker"
)

const demoHelp = `Usage: hyperagent demo [-dir=DIR] [-vms=N] [-disk-mib=N] [-keep]

  Runs the whole pipeline on this machine, with no vCenter: it starts a
  vCenter simulator holding N VMs with seeded disks, writes the example
  repo examples/demo into DIR pointing at it, starts the built-in worker,
  and runs validate, plan, apply, plan (which must show no changes) and
  state list. Disks are exported over NFC, converted by qemu-img to qcow2
  and defined as domains on libvirt's test driver through the running
  libvirtd. Exit 0 only if everything converged.

  Needs qemu-img and a running libvirtd: run sudo .ci/setup.

Options:
`

// demoSynopsis is the demo's line in the command table.
const demoSynopsis = "Run the whole pipeline against a built-in vCenter simulator"

type demoOptions struct {
	dir     string
	vms     int
	diskMiB int
	keep    bool
}

func parseDemoArgs(e *env, args []string) (demoOptions, int, bool) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var o demoOptions
	fs.StringVar(&o.dir, "dir", "", "write the repo and its files here (new or empty; default: a new temporary directory)")
	fs.IntVar(&o.vms, "vms", 3, "VMs to migrate: a database, then N-1 web servers (1-20)")
	fs.IntVar(&o.diskMiB, "disk-mib", 32, "size of each VM's seeded disk in MiB (1-1024)")
	fs.BoolVar(&o.keep, "keep", false, "keep the directory afterwards")
	if code, done := parseFlags(fs, e, demoHelp, args); done {
		return o, code, true
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(e.stderr, "Error: demo: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
	case o.vms < 1 || o.vms > 20:
		fmt.Fprintln(e.stderr, "Error: demo: -vms must be between 1 and 20")
	case o.diskMiB < 1 || o.diskMiB > 1024:
		fmt.Fprintln(e.stderr, "Error: demo: -disk-mib must be between 1 and 1024")
	default:
		return o, 0, false
	}
	return o, exitError, true
}

func runDemo(ctx context.Context, e *env, args []string) int {
	o, code, done := parseDemoArgs(e, args)
	if done {
		return code
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// The simulator's HTTP server and govmomi's lease updater log through
	// the standard logger; keep that out of stdout and in our log.
	prev, prevFlags := log.Writer(), log.Flags()
	log.SetOutput(e.log.Named("vcsim").StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}))
	log.SetFlags(0)
	defer func() { log.SetOutput(prev); log.SetFlags(prevFlags) }()

	if err := runDemoSteps(ctx, e, o); err != nil {
		fmt.Fprintf(e.stderr, "Error: demo: %v\n", err)
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return exitError
	}
	return exitOK
}

// say prints one line of the demo's own narration.
func say(e *env, format string, args ...any) {
	fmt.Fprintf(e.stdout, "==> "+format+"\n", args...)
}

// runDemoSteps checks the real parts are there before creating anything,
// holds the test driver open for the whole run, and runs the pipeline in a
// directory it removes afterwards unless -keep.
func runDemoSteps(ctx context.Context, e *env, o demoOptions) (err error) {
	start := time.Now()
	if err := checkDemoTools(); err != nil {
		return err
	}
	lv, err := holdTestDriver(ctx)
	if err != nil {
		return err
	}
	defer lv.Disconnect()

	dir, err := prepareDemoDir(o.dir)
	if err != nil {
		return fmt.Errorf("demo directory: %w", err)
	}
	defer func() {
		if o.keep {
			say(e, "Kept %s (the simulator and the test driver's domains are gone with this process).", dir)
			return
		}
		if rerr := os.RemoveAll(dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove %s: %w", dir, rerr))
		}
	}()
	if err := runDemoPipeline(ctx, e, o, newDemoLayout(dir), lv); err != nil {
		if !o.keep {
			err = fmt.Errorf("%w\n(run again with -keep to look at what it left in the directory)", err)
		}
		return err
	}
	say(e, "Converged in %s.", time.Since(start).Round(100*time.Millisecond))
	return nil
}

// runDemoPipeline starts the simulator and the worker, writes the repo into
// l.Dir, runs the CLI on it and checks the result.
func runDemoPipeline(ctx context.Context, e *env, o demoOptions, l demoLayout, lv *golibvirt.Libvirt) (err error) {
	names := demoVMNames(o.vms)
	srv, vms, err := startDemoSim(ctx, names, o.diskMiB, l.Seeds)
	if err != nil {
		return err
	}
	defer srv.Close()
	say(e, "vCenter simulator serving %s (user %s, certificate SHA-1 %s)", srv.URL, srv.Username, srv.Thumbprint)
	for _, vm := range vms {
		say(e, "  %-16s disk of %d MiB, served as a %d-byte streamOptimized VMDK (sha256 %.12s…)",
			vm.Path, vm.Size>>20, vm.VMDKSize, vm.SHA256)
	}

	// A suffix per run keeps the domain names apart from any other client
	// of the shared test driver.
	suffix, err := randomHex(3)
	if err != nil {
		return err
	}
	if err := writeDemoRepo(l, srv.URL.String(), srv.Thumbprint, "demo-"+suffix+"-", names[1:]); err != nil {
		return fmt.Errorf("write the repo: %w", err)
	}
	say(e, "Migration repo (examples/demo) in %s; variables in %s; password in HYPERAGENT_VAR_vcenter_password", l.Dir, l.VarFile)

	stopWorker, err := startDemoWorker(ctx, e, l)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopWorker()) }()
	say(e, "Built-in worker converting jobs from %s", l.Workflow)

	ce := *e
	ce.environ = append(slices.Clone(e.environ), "HYPERAGENT_VAR_vcenter_password="+srv.Password)
	if err := runDemoCommands(ctx, &ce, l); err != nil {
		return err
	}
	return demoSummary(ctx, e, l, lv, vms)
}

// startDemoWorker runs hyperagent's own worker in this process on the
// repo's workflow directory; stop ends it and reports how it ended.
func startDemoWorker(ctx context.Context, e *env, l demoLayout) (stop func() error, err error) {
	w, err := worker.New(worker.Config{
		WorkflowDir: l.Workflow,
		Jobs:        2,
		InputRoots:  []string{l.Exports},
		OutputRoots: []string{l.Output},
		Grace:       5 * time.Second,
		Logger:      e.log.Named("worker"),
	})
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	// The plan looks for a live consumer (the worker's heartbeat) before
	// anything is exported: start the demo's commands once it is there.
	select {
	case <-w.Ready():
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("worker: %w", err)
	}
	return func() error {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("worker: %w", err)
		}
		return nil
	}, nil
}

// demoStep is one CLI command of the demo and the exit code it must give.
type demoStep struct {
	args []string
	want int
}

// runDemoCommands runs the CLI exactly as a user would, in this process.
func runDemoCommands(ctx context.Context, e *env, l demoLayout) error {
	vf := "-var-file=" + l.VarFile
	steps := []demoStep{
		{[]string{"validate", vf, l.Dir}, exitOK},
		// -detailed-exitcode: 2 says there is work to do, 0 that there is none.
		{[]string{"plan", "-detailed-exitcode", vf, l.Dir}, exitChanges},
		{[]string{"apply", "-auto-approve", vf, l.Dir}, exitOK},
		{[]string{"plan", "-detailed-exitcode", vf, l.Dir}, exitOK},
		{[]string{"state", "-state-dir=" + l.StateDir, "list"}, exitOK},
	}
	for _, s := range steps {
		fmt.Fprintf(e.stdout, "\n$ hyperagent %s\n", strings.Join(s.args, " "))
		if got := run(ctx, s.args, e); got != s.want {
			if err := ctx.Err(); err != nil {
				return err
			}
			return fmt.Errorf("`hyperagent %s` exited %d, want %d", s.args[0], got, s.want)
		}
	}
	fmt.Fprintln(e.stdout)
	return nil
}
