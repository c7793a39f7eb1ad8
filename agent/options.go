package agent

import (
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/sdnotify"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema"
)

// Options configure an Agent. Settings that the configuration's agent {}
// block also has are overrides here: zero means "as the config says".
type Options struct {
	// ConfigDir is the migration repo; it is watched for edits.
	ConfigDir string
	// Load reads the configuration (with the process's -var, -var-file
	// and environment). A pass calls it when the repository's files or
	// VarFiles moved, on SIGHUP, and at least every few minutes.
	Load     func() (*schema.Config, schema.Files, hcl.Diagnostics)
	VarFiles []string
	// Registry builds the plugins.
	Registry *plugins.Registry
	Log      hclog.Logger
	// Redact is the process's Redactor (its log and output writers use
	// it); each loaded config hands it its secrets.
	Redact   *reconcile.Redactor
	Notifier *sdnotify.Notifier
	// Version is the build's, for the status and the build_info metric.
	Version string

	StateDir    string        // override of agent.state_dir
	Interval    time.Duration // override of agent.interval: the periodic resync
	AutoApply   *bool         // override of agent.auto_apply
	Parallelism int           // override of agent.parallelism

	// Debounce gathers file events into one pass (default 300 ms).
	Debounce time.Duration
	// LockTimeout is how long a pass waits for a lock someone else holds
	// (default 10 s); a pass that could not get it is tried again at the
	// next trigger.
	LockTimeout time.Duration
	// RetryMin and RetryMax bound a failed migration's backoff (default
	// agent.retry_min / retry_max, else 30 s and 30 min).
	RetryMin, RetryMax time.Duration
	// Watchdog is the ping interval (default: half of systemd's
	// WatchdogSec, none outside systemd).
	Watchdog time.Duration
	// StopTimeout bounds a graceful stop (default 30 s).
	StopTimeout time.Duration
	// PollInterval overrides how often a pass's await observes jobs
	// (tests); the agent's passes await only jobs that already ended.
	PollInterval time.Duration
	// ProgressInterval is how often the agent reads how far its
	// converters' jobs are, between passes (default 1 s).
	ProgressInterval time.Duration
	// NoEvents watches nothing and relies on the resync alone (tests of
	// what NFS gives).
	NoEvents bool
}

func (o *Options) defaults() {
	if o.Log == nil {
		o.Log = hclog.NewNullLogger()
	}
	if o.Redact == nil {
		o.Redact = reconcile.NewRedactor(nil)
	}
	if o.Notifier == nil {
		o.Notifier = sdnotify.New(o.Log)
	}
	if o.Debounce <= 0 {
		o.Debounce = 300 * time.Millisecond
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 10 * time.Second
	}
	if o.Watchdog <= 0 {
		o.Watchdog = sdnotify.WatchdogInterval()
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 30 * time.Second
	}
}
