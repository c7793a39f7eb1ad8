package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hypersdk/hyperagent/plugins/worker"
)

const workerHelp = `Usage: hyperagent worker -workflow-dir=DIR -input-root=DIR... -output-root=DIR... [options]

  Runs the built-in converter on a hyper2kvm watch directory (see
  docs/protocol.md): it claims the jobs queued there, converts their disks
  with qemu-img, and reports, until SIGTERM or SIGINT (or, with -once,
  until the queue is empty). A signal stops claiming; in-flight jobs
  finish within -grace or are handed back to the queue. It reads inputs
  only under the -input-root directories and writes only under the
  -output-root ones.

Options:
`

// parseWorkerArgs's answers when the flags are done with: -h (or the
// command being described), or a flag error the flag package printed.
var (
	errHelpShown     = errors.New("help shown")
	errFlagsReported = errors.New("flag error reported")
)

// parseWorkerArgs is pure: flags to worker.Config.
func parseWorkerArgs(e *env, args []string) (worker.Config, error) {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	var cfg worker.Config
	var in, out []string
	fs.StringVar(&cfg.WorkflowDir, "workflow-dir", "", "the manifest-workflow directory (required)")
	fs.IntVar(&cfg.Jobs, "jobs", 1, "jobs converted at once")
	fs.IntVar(&cfg.Coroutines, "coroutines", 0, "qemu-img convert -m for each conversion, 1 to 16 (default: the cores divided by -jobs, at least 1)")
	fs.Var(stringsFlag(&in), "input-root", "a `DIR` input disks must be under (repeatable, at least one)")
	fs.Var(stringsFlag(&out), "output-root", "a `DIR` outputs must be under (repeatable, at least one)")
	fs.BoolVar(&cfg.Once, "once", false, "process what is queued, then exit")
	fs.BoolVar(&cfg.SkipGuestFixes, "skip-guest-fixes", false, "run jobs that enable inspect/fix without those stages (reported as skipped)")
	fs.DurationVar(&cfg.Lease, "lease", 2*time.Minute, "take back a job whose owner's lease was last renewed longer ago than this")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat", 10*time.Second, "how often the worker rewrites its heartbeat file in <workflow-dir>/.workers/")
	fs.DurationVar(&cfg.Rescan, "rescan", 10*time.Second, "full rescan period, besides fsnotify")
	fs.DurationVar(&cfg.Grace, "grace", 60*time.Second, "on SIGTERM, how long in-flight jobs may finish before they are handed back")
	fs.DurationVar(&cfg.Settle, "settle", worker.DefaultSettle, "a job file that does not parse is failed only once it has not changed for this long (a writer may still be writing it)")
	fs.DurationVar(&cfg.JobTimeout, "job-timeout", worker.DefaultJobTimeout, "a job running longer is stopped (its qemu-img killed) and fails")
	maxManifest, maxVirtual := byteSize(worker.DefaultMaxManifestBytes), byteSize(worker.DefaultMaxVirtualSize)
	fs.Var(&maxManifest, "max-manifest-bytes", "a larger job file fails without being read (bytes, or with a KiB, MiB, GiB or TiB suffix; default 4MiB)")
	fs.Var(&maxVirtual, "max-virtual-size", "a disk whose virtual size (qemu-img info) is larger fails its job before conversion (default 64TiB)")
	var rate byteSize
	fs.Var(&rate, "rate-limit", "at most this many bytes of data per second for each conversion (qemu-img convert -r; zeros aside), e.g. 200MiB (default: no limit)")
	switch code, done := parseFlags(fs, e, workerHelp, args); {
	case done && code == exitOK:
		return cfg, errHelpShown
	case done:
		return cfg, errFlagsReported
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
	for name, d := range map[string]time.Duration{"-settle": cfg.Settle, "-job-timeout": cfg.JobTimeout} {
		if d <= 0 {
			return cfg, fmt.Errorf("%s must be positive", name)
		}
	}
	cfg.MaxManifestBytes, cfg.MaxVirtualSize, cfg.RateLimit = int64(maxManifest), int64(maxVirtual), int64(rate)
	cfg.InputRoots, cfg.OutputRoots = in, out
	return cfg, nil
}

// byteSize is a flag holding a positive byte count: a number, optionally
// followed by K, M, G or T (binary: 1024-based), with or without "iB".
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(v string) error {
	num := strings.TrimRight(v, "KMGTiB")
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("want a positive number of bytes, e.g. 4MiB")
	}
	shift, ok := map[string]uint{"": 0, "B": 0, "K": 10, "KiB": 10, "M": 20, "MiB": 20, "G": 30, "GiB": 30, "T": 40, "TiB": 40}[v[len(num):]]
	if !ok || n > math.MaxInt64>>shift {
		return fmt.Errorf("want a positive number of bytes, e.g. 4MiB")
	}
	*b = byteSize(n << shift)
	return nil
}

// runWorker runs the built-in converter until SIGTERM/SIGINT (or, with
// -once, until the queue is empty). A signal stops claiming; in-flight jobs
// finish within -grace or are handed back to the queue.
func runWorker(ctx context.Context, e *env, args []string) int {
	cfg, err := parseWorkerArgs(e, args)
	switch {
	case err == errHelpShown:
		return exitOK
	case err == errFlagsReported:
		return exitError
	case err != nil:
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
