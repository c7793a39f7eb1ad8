package main

import (
	"context"
	"flag"
	"fmt"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hypersdk/hyperagent/plugins/worker"
)

// stringList is a flag that may be given more than once.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// parseWorkerArgs is pure: flags to worker.Config.
func parseWorkerArgs(e *env, args []string) (worker.Config, error) {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var cfg worker.Config
	var in, out stringList
	fs.StringVar(&cfg.WorkflowDir, "workflow-dir", "", "the manifest-workflow directory (required)")
	fs.IntVar(&cfg.Jobs, "jobs", 1, "jobs converted at once")
	fs.Var(&in, "input-root", "a directory input disks must be under (repeatable, at least one)")
	fs.Var(&out, "output-root", "a directory outputs must be under (repeatable, at least one)")
	fs.BoolVar(&cfg.Once, "once", false, "process what is queued, then exit")
	fs.BoolVar(&cfg.SkipGuestFixes, "skip-guest-fixes", false, "run jobs that enable inspect/fix without those stages (reported as skipped)")
	fs.DurationVar(&cfg.Lease, "lease", 2*time.Minute, "take back a job whose owner's lease was last renewed longer ago than this")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat", 10*time.Second, "how often the worker rewrites its heartbeat file in <workflow-dir>/.workers/")
	fs.DurationVar(&cfg.Rescan, "rescan", 10*time.Second, "full rescan period, besides fsnotify")
	fs.DurationVar(&cfg.Grace, "grace", 60*time.Second, "on SIGTERM, how long in-flight jobs may finish before they are handed back")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: hyperagent worker -workflow-dir=DIR -input-root=DIR… -output-root=DIR… [-jobs=N] [-once] [-skip-guest-fixes] [-lease=D] [-heartbeat=D] [-rescan=D] [-grace=D]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if cfg.WorkflowDir == "" {
		return cfg, fmt.Errorf("-workflow-dir is required")
	}
	if len(in) == 0 || len(out) == 0 {
		return cfg, fmt.Errorf("at least one -input-root and one -output-root are required: the worker reads and writes nowhere else")
	}
	cfg.InputRoots, cfg.OutputRoots = in, out
	return cfg, nil
}

// runWorker runs the built-in converter until SIGTERM/SIGINT (or, with
// -once, until the queue is empty). A signal stops claiming; in-flight jobs
// finish within -grace or are handed back to the queue.
func runWorker(ctx context.Context, e *env, args []string) int {
	cfg, err := parseWorkerArgs(e, args)
	if err == flag.ErrHelp {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: worker: %v\n", err)
		return exitError
	}
	cfg.Logger = e.log.Named("worker")
	cfg.Version = "hyperagent " + currentVersion()
	w, err := worker.New(cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := w.Run(ctx); err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	return exitOK
}
