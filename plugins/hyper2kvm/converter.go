package hyper2kvm

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
)

// Config is one converter "hyper2kvm" block, decoded.
type Config struct {
	WorkflowDir string `cty:"workflow_dir"`
	OutputDir   string `cty:"output_dir"`
	Unit        string `cty:"unit"`
	Timeout     string `cty:"timeout"`
	MaxInFlight int    `cty:"max_in_flight"`
}

// Converter submits jobs to, and observes, a workflow directory that the
// hyper2kvm daemon or `hyperagent worker` serves.
type Converter struct {
	cfg     Config
	timeout time.Duration
	log     hclog.Logger
	units   UnitStateReader
	now     func() time.Time

	mu    sync.Mutex
	provs map[provKey]plugins.JobProvenance // what each job file records
}

var (
	_ plugins.Converter = (*Converter)(nil)
	_ plugins.Watcher   = (*Converter)(nil)
	_ plugins.Limited   = (*Converter)(nil)
)

// Option adjusts a Converter (tests use them for fakes).
type Option func(*Converter)

// WithUnitStateReader replaces the D-Bus reader of the daemon unit's state.
func WithUnitStateReader(r UnitStateReader) Option { return func(c *Converter) { c.units = r } }

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(c *Converter) { c.now = now } }

// New checks cfg and returns a Converter. It contacts nothing.
func New(cfg Config, log hclog.Logger, opts ...Option) (*Converter, error) {
	if cfg.Timeout == "" {
		cfg.Timeout = "2h"
	}
	timeout, err := time.ParseDuration(cfg.Timeout)
	if err != nil || timeout <= 0 {
		return nil, plugins.Terminal(plugins.AttrError("timeout", fmt.Errorf("timeout %q: want a positive duration such as \"2h\"", cfg.Timeout)))
	}
	for _, a := range []struct{ name, dir string }{{"workflow_dir", cfg.WorkflowDir}, {"output_dir", cfg.OutputDir}} {
		if !filepath.IsAbs(a.dir) {
			return nil, plugins.Terminal(plugins.AttrError(a.name, fmt.Errorf("%s %q must be an absolute path", a.name, a.dir)))
		}
	}
	if cfg.MaxInFlight < 0 {
		return nil, plugins.Terminal(plugins.AttrError("max_in_flight", fmt.Errorf("max_in_flight is %d, want ≥ 0", cfg.MaxInFlight)))
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	c := &Converter{cfg: cfg, timeout: timeout, log: log, units: systemdUnits{}, now: time.Now,
		provs: map[provKey]plugins.JobProvenance{}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Limits: jobs submitted and not finished.
func (c *Converter) Limits() plugins.Limits { return plugins.Limits{MaxParallel: c.cfg.MaxInFlight} }

func (c *Converter) dir(parts ...string) string {
	return filepath.Join(append([]string{c.cfg.WorkflowDir}, parts...)...)
}

func newConverter(ctx context.Context, req plugins.NewRequest) (any, error) {
	var cfg Config
	if err := plugins.DecodeConfig(req.Config, &cfg); err != nil {
		return nil, plugins.Terminal(err)
	}
	log := req.Logger
	if log != nil {
		log = log.Named("hyper2kvm")
	}
	c, err := New(cfg, log) // the plugin set names the block in errors
	if err != nil {
		return nil, err
	}
	return c, nil
}
