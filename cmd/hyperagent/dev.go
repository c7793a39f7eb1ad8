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

const devHelp = `Usage: hyperagent dev [-once] [-dir=DIR] [-vms=N] [-disk-mib=N] [-rm]

  Runs a whole campaign on this machine with no vCenter, as HashiCorp's
  -dev servers do: it starts govmomi's vCenter simulator in this process
  with N VMs whose disks hold known bytes, writes the example repo
  examples/demo into DIR pointing at it, and starts the built-in worker.
  Disks are exported over NFC, converted to qcow2 by qemu-img and defined
  as domains on libvirt's test driver through the running libvirtd.

  Without -once it runs the agent on that repo, applying on its own, and
  shows its progress until SIGINT or SIGTERM stops it cleanly; its status
  API listens on DIR/agent.sock.

  With -once it runs validate, plan, apply, plan again (which must show
  no changes) and state list, checks every disk against the bytes seeded
  into the simulator, prints where the qcow2 files are, and exits 0 only
  if everything converged.

  Either way the domains are undefined when it ends, and the simulator
  ends with the process; the repo, its state and the qcow2 files stay in
  DIR unless -rm.

  Needs qemu-img and a running libvirtd that serves this user (root on a
  machine without polkit): run sudo .ci/setup.

Options:
`

// devSynopsis is dev's line in the command table.
const devSynopsis = "Run a campaign against a built-in vCenter simulator (-once: one apply)"

type devOptions struct {
	once    bool
	dir     string
	vms     int
	diskMiB int
	rm      bool
}

func parseDevArgs(e *env, args []string) (devOptions, int, bool) {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	var o devOptions
	fs.BoolVar(&o.once, "once", false, "run one plan and apply, check the result and exit (default: run the agent until interrupted)")
	fs.StringVar(&o.dir, "dir", "", "write the repo and its files here (new or empty; default: a new temporary directory)")
	fs.IntVar(&o.vms, "vms", 3, "VMs to migrate: a database, then N-1 web servers (1-20)")
	fs.IntVar(&o.diskMiB, "disk-mib", 32, "size of each VM's seeded disk in MiB (1-1024)")
	fs.BoolVar(&o.rm, "rm", false, "remove the directory at the end (default: keep it, with the qcow2 files)")
	if code, done := parseFlags(fs, e, devHelp, args); done {
		return o, code, true
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(e.stderr, "Error: dev: unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
	case o.vms < 1 || o.vms > 20:
		fmt.Fprintln(e.stderr, "Error: dev: -vms must be between 1 and 20")
	case o.diskMiB < 1 || o.diskMiB > 1024:
		fmt.Fprintln(e.stderr, "Error: dev: -disk-mib must be between 1 and 1024")
	default:
		return o, 0, false
	}
	return o, exitError, true
}

func runDev(ctx context.Context, e *env, args []string) int {
	o, code, done := parseDevArgs(e, args)
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

	if err := runDevSteps(ctx, e, o); err != nil {
		fmt.Fprintf(e.stderr, "Error: dev: %v\n", err)
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return exitError
	}
	return exitOK
}

// say prints one line of dev's own narration.
func say(e *env, format string, args ...any) {
	fmt.Fprintf(e.stdout, "==> "+format+"\n", args...)
}

// runDevSteps checks the real parts are there before creating anything,
// holds the test driver open for the whole run, runs the campaign in a
// directory, and says where everything is (or removes it, with -rm).
func runDevSteps(ctx context.Context, e *env, o devOptions) (err error) {
	start := time.Now()
	if err := checkDevTools(); err != nil {
		return err
	}
	lv, err := holdTestDriver(ctx)
	if err != nil {
		return err
	}
	defer lv.Disconnect()

	dir, err := prepareDevDir(o.dir)
	if err != nil {
		return fmt.Errorf("dev directory: %w", err)
	}
	l := newDevLayout(dir)
	defer func() {
		if o.rm {
			if rerr := os.RemoveAll(dir); rerr != nil {
				err = errors.Join(err, fmt.Errorf("remove %s: %w", dir, rerr))
			}
			return
		}
		sayWhere(e, l)
	}()
	if err := runDevCampaign(ctx, e, o, l, lv); err != nil {
		return err
	}
	if o.once {
		say(e, "Converged in %s.", time.Since(start).Round(100*time.Millisecond))
	}
	return nil
}

// sayWhere tells where a kept run's files are and what still works there
// (the simulator and the test driver's domains are gone with this process).
func sayWhere(e *env, l devLayout) {
	say(e, "Kept %s: the repo, its state in %s and the qcow2 files in %s.", l.Dir, l.StateDir, l.Images)
	say(e, "  Look with: hyperagent -chdir=%s state list   (the simulator and the domains are gone with this process)", l.Dir)
	say(e, "  Remove with: rm -rf %s", l.Dir)
}

// runDevCampaign starts the simulator and the worker, writes the repo into
// l.Dir, and runs the campaign once or as the agent. The domains it defined
// are undefined afterwards, whatever happened.
func runDevCampaign(ctx context.Context, e *env, o devOptions, l devLayout, lv *golibvirt.Libvirt) (err error) {
	names := devVMNames(o.vms)
	srv, vms, err := startDevSim(ctx, names, o.diskMiB, l.Seeds)
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
	prefix := "dev-" + suffix + "-"
	if err := writeDevRepo(l, srv.URL.String(), srv.Thumbprint, prefix, names[1:]); err != nil {
		return fmt.Errorf("write the repo: %w", err)
	}
	defer func() { err = errors.Join(err, undefineDevDomains(e, lv, prefix, names)) }()
	say(e, "Migration repo (examples/demo) in %s; variables in %s; password in HYPERAGENT_VAR_vcenter_password", l.Dir, l.VarFile)

	stopWorker, err := startDevWorker(ctx, e, l)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopWorker()) }()
	say(e, "Built-in worker converting jobs from %s", l.Workflow)

	ce := *e
	ce.environ = append(slices.Clone(e.environ), "HYPERAGENT_VAR_vcenter_password="+srv.Password)
	if !o.once {
		return runDevAgent(ctx, &ce, l, lv, vms)
	}
	if err := runDevCommands(ctx, &ce, l); err != nil {
		return err
	}
	return devSummary(ctx, e, l, lv, vms)
}

// startDevWorker runs hyperagent's own worker in this process on the
// repo's workflow directory (tune adjusts its configuration: a benchmark
// traces it); stop ends it and reports how it ended.
func startDevWorker(ctx context.Context, e *env, l devLayout, tune ...func(*worker.Config)) (stop func() error, err error) {
	cfg := worker.Config{
		WorkflowDir: l.Workflow,
		Jobs:        2,
		InputRoots:  []string{l.Exports},
		OutputRoots: []string{l.Output},
		Grace:       5 * time.Second,
		Logger:      e.log.Named("worker"),
	}
	for _, t := range tune {
		t(&cfg)
	}
	w, err := worker.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	// The worker outlives the campaign's context: it stops after the
	// agent or the apply has recorded its state.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	// The plan looks for a live consumer (the worker's heartbeat) before
	// anything is exported: start the campaign once it is there.
	select {
	case <-w.Ready():
	case err := <-done:
		cancel()
		return nil, fmt.Errorf("worker: %w", err)
	case <-ctx.Done():
		cancel()
		<-done
		return nil, ctx.Err()
	}
	return func() error {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("worker: %w", err)
		}
		return nil
	}, nil
}

// devStep is one CLI command of dev -once and the exit code it must give.
type devStep struct {
	args []string
	want int
}

// runDevCommands runs the CLI exactly as a user would, in this process.
func runDevCommands(ctx context.Context, e *env, l devLayout) error {
	vf := "-var-file=" + l.VarFile
	steps := []devStep{
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
			return fmt.Errorf("`hyperagent %s` exited %d, want %d", strings.Join(s.args, " "), got, s.want)
		}
	}
	fmt.Fprintln(e.stdout)
	return nil
}
