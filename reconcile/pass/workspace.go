package pass

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pgstate"
	"github.com/hypersdk/hyperagent/schema"
)

// Workspace is one loaded configuration with its plugin instances and
// state store, ready for passes. It is not safe for concurrent passes:
// the state lock serialises them anyway.
type Workspace struct {
	Config  *schema.Config
	Plugins *plugins.Set
	Store   *reconcile.Store
	// Redact is shared with the process's log and output writers, so a
	// reload that brings new secrets protects them everywhere at once.
	Redact *reconcile.Redactor
	Log    hclog.Logger
	// PollInterval overrides how often apply's await observes jobs
	// (default: the engine's); tests shorten it.
	PollInterval time.Duration
	// SessionCheck overrides how often a pass on a shared store checks
	// its session (default: the engine's); tests shorten it.
	SessionCheck time.Duration
}

// OpenRequest says what to open.
type OpenRequest struct {
	Config   *schema.Config
	Registry *plugins.Registry
	Log      hclog.Logger
	// Redact receives the config's secrets; nil makes a new one.
	Redact *reconcile.Redactor
	// StateDir overrides the config's agent.state_dir when set, and
	// means the local backend whatever the state block says.
	StateDir string
}

// Open instantiates the plugins (which contact nothing yet) and opens the
// state store. The config's secrets are handed to Redact first, so that
// even an error from a plugin's constructor is redacted.
func Open(ctx context.Context, req OpenRequest) (*Workspace, error) {
	cfg := req.Config
	if abs, err := filepath.Abs(cfg.Dir); err == nil {
		cfg.Dir = abs
	}
	red := req.Redact
	if red == nil {
		red = reconcile.NewRedactor(nil)
	}
	red.SetSecrets(cfg.Secrets())
	log := req.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	set, err := plugins.Instantiate(ctx, req.Registry, cfg, log)
	if err != nil {
		return nil, red.Error(err)
	}
	store, err := OpenStore(cfg, req.StateDir)
	if err != nil {
		set.Close()
		return nil, fmt.Errorf("opening the state: %w", err)
	}
	return &Workspace{Config: cfg, Plugins: set, Store: store, Redact: red, Log: log}, nil
}

// OpenStore opens the configuration's state store: PostgreSQL when its
// state block says so, else the local directory agent.state_dir. A
// stateDir given (the -state-dir flag) means that local directory
// whatever the block says, and cfg may then be nil. A pg store contacts
// nothing until first used.
func OpenStore(cfg *schema.Config, stateDir string) (*reconcile.Store, error) {
	if cfg == nil && stateDir == "" {
		return nil, errors.New("no state directory and no configuration to name the state's store")
	}
	if stateDir == "" && cfg.State.Backend == schema.BackendPG {
		return pgstate.NewStore(cfg.State.ConnStr, cfg.State.Workspace)
	}
	if stateDir == "" {
		stateDir = cfg.Agent.StateDir
	}
	return reconcile.OpenStore(stateDir)
}

// Close releases the plugins' connections and the state store's.
func (w *Workspace) Close() error { return errors.Join(w.Plugins.Close(), w.Store.Close()) }

func (w *Workspace) engine() *reconcile.Engine {
	return &reconcile.Engine{Config: w.Config, Plugins: w.Plugins, Store: w.Store, Log: w.Log.Named("apply"), Redact: w.Redact,
		PollInterval: w.PollInterval, SessionCheck: w.SessionCheck}
}
