package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins/fswatch"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
	"github.com/hypersdk/hyperagent/plugins/sdnotify"
)

// Config is how one worker process runs.
type Config struct {
	WorkflowDir string
	// Jobs is how many jobs run at once (default 1).
	Jobs int
	// InputRoots and OutputRoots bound what a manifest may make the worker
	// read and write; at least one of each is required.
	InputRoots  []string
	OutputRoots []string
	// Once processes what is queued, then returns.
	Once bool
	// SkipGuestFixes lets a job that enables inspect/fix run without those
	// stages (reported as skipped, never as done) instead of failing it.
	SkipGuestFixes bool
	// Lease: a job in processing/ whose lease was last renewed longer ago
	// than this is taken back from its dead owner (default 2m). Leases are
	// renewed every Lease/8 (lease.go).
	Lease time.Duration
	// HeartbeatInterval is how often the worker rewrites its heartbeat
	// file, <WorkflowDir>/.workers/<host>-<pid>.json (default 10s;
	// heartbeat.go).
	HeartbeatInterval time.Duration
	// Version is what the heartbeat's worker_version says (default
	// Version, the report's producer name).
	Version string
	// Rescan is the period of the full rescan that runs besides fsnotify
	// (default 10s): NFS delivers no events.
	Rescan time.Duration
	// Grace is how long in-flight jobs may run on after shutdown starts
	// before they are cancelled and handed back (default 60s).
	Grace time.Duration
	// Settle: a job file that does not parse and changed less than Settle
	// ago is left in the queue for a later look (a writer that writes in
	// place may not be done); past it, the job fails (default 5s).
	Settle time.Duration
	// MaxManifestBytes caps what is read of a job file; a larger one fails
	// (default DefaultMaxManifestBytes).
	MaxManifestBytes int64
	// JobTimeout caps one job's wall-clock time; at the limit its qemu-img
	// process group is killed and the job fails (default DefaultJobTimeout).
	JobTimeout time.Duration
	// MaxVirtualSize caps a disk's virtual size as qemu-img info reports
	// it; a larger disk fails the job before it is converted (default
	// DefaultMaxVirtualSize).
	MaxVirtualSize int64
	// Coroutines is qemu-img convert's -m, the requests one conversion
	// keeps in flight (and so the clusters it compresses at once): by
	// default the cores this process may use divided by Jobs, at least 1;
	// qemu-img allows at most 16.
	Coroutines int
	// RateLimit caps each conversion's pace: at most this many bytes of
	// data per second (qemu-img convert -r; zeros and holes aside), so
	// that conversions leave a shared store (a NAS) bandwidth for others.
	// 0: no cap.
	RateLimit int64
	// ProgressInterval is the least time between two rewrites of a job's
	// progress file, processing/.<name>.progress.json (default
	// protocol.ProgressInterval; progress.go).
	ProgressInterval time.Duration
	// QemuImg is the qemu-img binary (default "qemu-img" from PATH).
	QemuImg string
	Logger  hclog.Logger
	// Trace, when set, is told when a job's conversion starts and ends
	// ("start"/"end"); tests use it to prove no job converts twice at once.
	Trace func(event, jobID string)
}

// Worker is one worker process on a workflow directory.
type Worker struct {
	cfg   Config
	log   hclog.Logger
	owner string // written into heartbeats

	inRoots, outRoots []string // resolved

	// openInput opens an input disk for its checksum; tests wrap it to
	// order the hash against the conversion.
	openInput func(path string) (io.ReadCloser, error)
	// noURing is set once qemu-img has refused io_uring (see convert.go).
	noURing atomic.Bool
	// qemu is what qemu-img was found able to do, probed once (features.go);
	// probed says the probe is over.
	probeOnce sync.Once
	qemu      qemuFeatures
	probed    atomic.Bool

	// testHook is called at points tests order against another worker:
	// "stale" (a lease was judged stale, before it is taken away) and
	// "pass" (a reclaim pass ended). A no-op outside tests.
	testHook func(event, name string)

	// warned holds the queue warnings already given (queue.go); only the
	// main loop, which looks at the queue, uses it.
	warned map[string]bool

	ready chan struct{} // closed once Run serves the directory
	sd    *sdnotify.Notifier

	mu      sync.Mutex
	running map[string]string // this worker's claims: lease token → name in processing/
	done    int
	failed  int
}

// New checks the configuration and prepares the directory layout.
func New(cfg Config) (*Worker, error) {
	if cfg.WorkflowDir == "" {
		return nil, errors.New("worker: a workflow directory is required")
	}
	if len(cfg.InputRoots) == 0 || len(cfg.OutputRoots) == 0 {
		return nil, errors.New("worker: at least one input root and one output root are required")
	}
	if cfg.Jobs < 1 {
		cfg.Jobs = 1
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 10 * time.Second
	}
	if cfg.Version == "" {
		cfg.Version = Version
	}
	if cfg.Rescan <= 0 {
		cfg.Rescan = 10 * time.Second
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 60 * time.Second
	}
	if cfg.Settle <= 0 {
		cfg.Settle = DefaultSettle
	}
	if cfg.MaxManifestBytes <= 0 {
		cfg.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = DefaultJobTimeout
	}
	if cfg.MaxVirtualSize <= 0 {
		cfg.MaxVirtualSize = DefaultMaxVirtualSize
	}
	if cfg.Coroutines < 0 || cfg.Coroutines > maxCoroutines {
		return nil, fmt.Errorf("worker: %d coroutines: qemu-img convert allows 1 to %d (0: one per core)", cfg.Coroutines, maxCoroutines)
	}
	if cfg.RateLimit < 0 {
		return nil, fmt.Errorf("worker: rate limit %d: want bytes per second, or 0 for none", cfg.RateLimit)
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = protocol.ProgressInterval
	}
	if cfg.QemuImg == "" {
		cfg.QemuImg = "qemu-img"
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	w := &Worker{cfg: cfg, log: cfg.Logger, running: map[string]string{}, warned: map[string]bool{},
		openInput: func(p string) (io.ReadCloser, error) { return os.Open(p) },
		testHook:  func(string, string) {}, ready: make(chan struct{})}
	w.sd = sdnotify.New(w.log)
	var err error
	if w.inRoots, err = resolveRoots(cfg.InputRoots); err != nil {
		return nil, fmt.Errorf("worker: input root: %w", err)
	}
	if w.outRoots, err = resolveRoots(cfg.OutputRoots); err != nil {
		return nil, fmt.Errorf("worker: output root: %w", err)
	}
	for _, d := range []string{protocol.DirQueued, protocol.DirProcessing, protocol.DirProcessed, protocol.DirFailed, protocol.DirStats} {
		if err := os.MkdirAll(filepath.Join(cfg.WorkflowDir, d), 0o755); err != nil {
			return nil, fmt.Errorf("worker: %w", err)
		}
	}
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	w.owner = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	return w, nil
}

// Ready is closed once Run serves the directory: its heartbeat is written
// (a converter's CheckJobs sees it live) and it claims jobs. A Run that
// fails before that never closes it.
func (w *Worker) Ready() <-chan struct{} { return w.ready }

func (w *Worker) dir(parts ...string) string {
	return filepath.Join(append([]string{w.cfg.WorkflowDir}, parts...)...)
}

// Run claims and processes jobs until ctx ends (or, with Once, until the
// queue is empty), keeping its heartbeat file fresh meanwhile. When ctx
// ends it removes the heartbeat and stops claiming, lets in-flight jobs
// finish within Grace, and hands the rest back to to_be_processed/.
func (w *Worker) Run(ctx context.Context) error {
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	finished := make(chan string, w.cfg.Jobs)
	var wg sync.WaitGroup

	events := w.watch(ctx)
	rescan := time.NewTicker(w.cfg.Rescan)
	defer rescan.Stop()
	var watchdog <-chan time.Time
	if iv := sdnotify.WatchdogInterval(); iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		watchdog = t.C
	}

	// qemu-img is probed beside the start and the first jobs (a plain
	// conversion does not wait for it); the heartbeat is rewritten with the
	// codec as soon as it is known.
	probed := make(chan struct{})
	go func() { defer close(probed); w.features(jobCtx) }()
	defer func() { <-probed }()
	stopHeartbeat, err := w.startHeartbeat(probed)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	defer stopHeartbeat()
	w.reclaimStale()
	close(w.ready)
	w.sd.Ready(w.status())
	w.log.Info("worker started", "workflow_dir", w.cfg.WorkflowDir, "jobs", w.cfg.Jobs, "owner", w.owner,
		"coroutines", coroutines(w.cfg.Coroutines, w.cfg.Jobs))
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	for {
		idle, wake := w.fill(jobCtx, &wg, finished)
		w.sd.Status(w.status())
		if w.cfg.Once && idle && wake.IsZero() && w.inFlight() == 0 {
			break
		}
		if !wake.IsZero() { // a job file left for a later look
			settle.Reset(time.Until(wake) + 10*time.Millisecond)
		}
		select {
		case <-ctx.Done():
			stopHeartbeat()
			return w.shutdown(&wg, cancelJobs)
		case <-events:
		case name := <-finished:
			w.log.Debug("job finished", "name", name)
			w.writeStats()
		case <-settle.C:
		case <-rescan.C:
			w.reclaimStale()
		case <-watchdog:
			w.sd.Watchdog()
		}
	}
	stopHeartbeat()
	w.sd.Stopping(w.status())
	wg.Wait()
	return nil
}

// shutdown waits for in-flight jobs up to Grace, then cancels them; a
// cancelled job hands its manifest back and removes its partial output.
func (w *Worker) shutdown(wg *sync.WaitGroup, cancelJobs context.CancelFunc) error {
	w.sd.Stopping("stopping: no new claims; " + w.status())
	w.log.Info("stopping: no new claims", "in_flight", w.inFlight(), "grace", w.cfg.Grace)
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	select {
	case <-all:
	case <-time.After(w.cfg.Grace):
		w.log.Warn("grace period over: handing in-flight jobs back", "in_flight", w.inFlight())
		cancelJobs()
		<-all
	}
	w.writeStats()
	return nil
}

// fill claims jobs while slots are free. It reports whether the queue had
// nothing left to claim now, and when a job file left for a later look
// settles (zero: none).
func (w *Worker) fill(ctx context.Context, wg *sync.WaitGroup, finished chan<- string) (idle bool, wake time.Time) {
	for w.inFlight() < w.cfg.Jobs {
		c, wake, err := w.claimNext()
		if err != nil {
			w.log.Error("claim failed", "error", err)
			return true, time.Time{}
		}
		if c == nil {
			return true, wake
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.process(ctx, c)
			w.release(c.lease.token)
			select { // a missed wake-up is covered by the next event or rescan
			case finished <- c.name:
			default:
			}
		}()
	}
	return false, time.Time{}
}

func (w *Worker) inFlight() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.running)
}

// release forgets a claim. A claim that lost its job may still be ending
// after this worker claimed the same name again: each has its own token.
func (w *Worker) release(token string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.running, token)
}

// holds reports whether this worker has a claim on processing/<name>.
func (w *Worker) holds(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range w.running {
		if n == name {
			return true
		}
	}
	return false
}

func (w *Worker) count(ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ok {
		w.done++
	} else {
		w.failed++
	}
}

func (w *Worker) status() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return fmt.Sprintf("%d done, %d running, %d failed", w.done, len(w.running), w.failed)
}

// watch reports changes in to_be_processed/ through the shared watch loop.
// Events are hints only; the rescan ticker covers filesystems that deliver
// none (the loop says so in the log).
func (w *Worker) watch(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	go func() {
		err := fswatch.Watch(ctx, fswatch.Options{Dirs: []string{w.dir(protocol.DirQueued)}, Ignore: fswatch.Hidden,
			Debounce: 20 * time.Millisecond, Log: w.log.Named("watch")}, func(fswatch.Trigger) {
			select {
			case out <- struct{}{}:
			default:
			}
		})
		if err != nil {
			w.log.Warn("watching the queue ended; rescanning on the timer only", "error", err)
		}
	}()
	return out
}
