package files

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sync/errgroup"

	"github.com/hypersdk/hyperagent/plugins"
)

// Source serves VMs from files that were exported already. It is safe for
// concurrent use.
type Source struct {
	dir   string
	cfg   Config
	log   hclog.Logger
	cache *hashCache
}

var (
	_ plugins.Source  = (*Source)(nil)
	_ plugins.Limited = (*Source)(nil)
)

// New checks cfg and returns a Source; it reads nothing yet.
func New(cfg Config, log hclog.Logger) (*Source, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.Dir == "" || !filepath.IsAbs(cfg.Dir) {
		return nil, plugins.Terminal(fmt.Errorf("source %q: dir %q must be an absolute path", Type, cfg.Dir))
	}
	if cfg.MaxParallelExports < 0 {
		return nil, plugins.Terminal(fmt.Errorf("source %q: max_parallel_exports must not be negative", Type))
	}
	return &Source{
		dir:   filepath.Clean(cfg.Dir),
		cfg:   cfg,
		log:   log,
		cache: &hashCache{file: cfg.HashCache},
	}, nil
}

// Limits implements plugins.Limited.
func (s *Source) Limits() plugins.Limits {
	return plugins.Limits{MaxParallel: s.cfg.MaxParallelExports}
}

// ObserveVMs implements plugins.Source. Per-VM problems are findings, not
// errors: a missing file must not hide the other VMs.
func (s *Source) ObserveVMs(ctx context.Context, req plugins.ObserveVMsRequest) (plugins.ObserveVMsResponse, error) {
	resp := plugins.ObserveVMsResponse{VMs: map[string]plugins.VMObservation{}}
	obs := make([]plugins.VMObservation, len(req.VMs))
	// VMs are independent; on NFS each stat is a round trip, so several
	// are looked at at once.
	var g errgroup.Group
	g.SetLimit(observeParallel)
	for i, q := range req.VMs {
		g.Go(func() error {
			o, err := s.observeOne(ctx, q.Path)
			obs[i] = o
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return resp, err
	}
	for i, q := range req.VMs {
		resp.VMs[q.Address] = obs[i]
	}
	if err := s.cache.save(); err != nil {
		s.log.Warn("hash cache not saved", "file", s.cfg.HashCache, "error", err)
	}
	return resp, nil
}

// observeParallel bounds the VMs observed at once.
const observeParallel = 8

// observeOne looks at one VM and hashes its disks (through the cache);
// only a cancelled context is an error.
func (s *Source) observeOne(ctx context.Context, vm string) (plugins.VMObservation, error) {
	obs, v, err := s.look(ctx, vm)
	if err != nil || v == nil {
		return obs, err
	}
	for _, f := range v.files {
		if v.kind == kindOVA {
			// Export hashes an OVA's members while unpacking them; the
			// archive's own digest would serve nothing.
			break
		}
		if _, err := s.cache.sum(ctx, f, nil); err != nil {
			if ctx.Err() != nil {
				return plugins.VMObservation{}, ctx.Err()
			}
			obs.Findings = append(obs.Findings, errFinding("cannot hash "+filepath.Base(f), err))
		}
	}
	return obs, nil
}

// look inspects one VM without reading its disks' content: a VM that
// cannot be read is a finding, and v is nil; only a cancelled context is
// an error.
func (s *Source) look(ctx context.Context, vm string) (obs plugins.VMObservation, v *vmView, err error) {
	if err := ctx.Err(); err != nil {
		return plugins.VMObservation{}, nil, err
	}
	view, err := s.inspect(ctx, vm)
	switch {
	case errors.Is(err, errEscape):
		return plugins.VMObservation{Findings: []plugins.Finding{errFinding("VM path refused", err)}}, nil, nil
	case errors.Is(err, os.ErrNotExist):
		return plugins.VMObservation{Findings: []plugins.Finding{errFinding("VM files not found", err)}}, nil, nil
	case ctx.Err() != nil:
		return plugins.VMObservation{}, nil, ctx.Err()
	case err != nil:
		return plugins.VMObservation{Found: true, Findings: []plugins.Finding{errFinding("VM files unreadable", err)}}, nil, nil
	}
	return plugins.VMObservation{Found: true, Fingerprint: view.fingerprint, Facts: view.facts, Findings: view.findings}, &view, nil
}

func noDisks(p string) plugins.Finding {
	return plugins.Finding{Severity: plugins.SeverityError, Summary: "the OVF declares no disks", Detail: p + " has no disk items to convert"}
}

func errFinding(summary string, err error) plugins.Finding {
	return plugins.Finding{Severity: plugins.SeverityError, Summary: summary, Detail: err.Error()}
}
