package hyper2kvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// ObserveJobs reports every requested job from one pass over the workflow
// directory. A finished job whose sidecar is missing or not yet parseable
// is still processing (the real daemon writes it after the move, and not
// atomically). A job queued or processing past the timeout is stalled, with
// the daemon unit's state in Detail.
func (c *Converter) ObserveJobs(ctx context.Context, req plugins.ObserveJobsRequest) (plugins.ObserveJobsResponse, error) {
	sc, err := c.scan(ctx)
	if err != nil {
		return plugins.ObserveJobsResponse{}, fmt.Errorf("observe jobs in %s: %w", c.cfg.WorkflowDir, err)
	}
	out := plugins.ObserveJobsResponse{Jobs: map[string]plugins.JobObservation{}}
	unit := c.unitDetailOnce(ctx)
	for _, q := range req.Jobs {
		if err := ctx.Err(); err != nil {
			return plugins.ObserveJobsResponse{}, err
		}
		obs, err := c.observe(ctx, sc, q, unit)
		if err != nil {
			return plugins.ObserveJobsResponse{}, fmt.Errorf("observe job %s (%s): %w", q.JobID, q.Address, err)
		}
		out.Jobs[q.JobID] = obs
	}
	return out, nil
}

func (c *Converter) observe(ctx context.Context, sc *scanResult, q plugins.JobQuery, unit func() string) (plugins.JobObservation, error) {
	obs := plugins.JobObservation{JobID: q.JobID, State: plugins.JobUnknown}
	f := sc.find(q.JobID)
	if f == nil {
		if sc.withdrawn(q.JobID) {
			obs.Detail = "withdrawn before any daemon claimed it"
		}
		return obs, nil
	}
	if why := c.foreign(f, q.Want); why != "" {
		obs.State, obs.Detail = plugins.JobForeign, why
		return obs, nil
	}
	switch f.where {
	case inQueued:
		obs.State, obs.Since = plugins.JobQueued, f.info.ModTime()
		if !q.SubmittedAt.IsZero() && q.SubmittedAt.After(obs.Since) {
			obs.Since = q.SubmittedAt
		}
		c.stall(&obs, "queued", unit)
	case inProcessing:
		obs.State, obs.Since, obs.Claimed = plugins.JobProcessing, f.changed(), true
		// hyperagent's worker renews a lease beside the job while it works
		// on it: that is progress, and a long conversion is not a stall.
		if fi, err := os.Stat(filepath.Join(filepath.Dir(f.path), protocol.LeaseName(f.name))); err == nil && fi.ModTime().After(obs.Since) {
			obs.Since = fi.ModTime()
		}
		c.stall(&obs, "processing", unit)
	case inFailed:
		b, err := fsutil.ReadRegular(f.path+protocol.ErrorSuffix, maxSidecar)
		if err == nil {
			var e protocol.ErrorSidecar
			if e, err = protocol.ParseErrorSidecar(b); err == nil {
				obs.State, obs.Since, obs.Error = plugins.JobFailed, f.changed(), e.Error
				return obs, nil
			}
		}
		c.waitSidecar(&obs, f, "error", unit)
	case inProcessed:
		return c.observeProcessed(ctx, f, obs, unit)
	}
	return obs, nil
}

// waitSidecar: the manifest has moved but its sidecar is not readable yet.
func (c *Converter) waitSidecar(obs *plugins.JobObservation, f *jobFile, kind string, unit func() string) {
	obs.State, obs.Since = plugins.JobProcessing, f.changed()
	obs.Detail = fmt.Sprintf("finished (%s); waiting for its %s sidecar to be complete", filepath.Base(filepath.Dir(f.path)), kind)
	c.stall(obs, "waiting for its "+kind+" sidecar", unit)
}

func (c *Converter) observeProcessed(ctx context.Context, f *jobFile, obs plugins.JobObservation, unit func() string) (plugins.JobObservation, error) {
	b, err := fsutil.ReadRegular(f.path+protocol.ReportSuffix, maxSidecar)
	var oc protocol.Outcome
	if err == nil {
		oc, err = protocol.ParseReport(b)
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, protocol.ErrNotParseable) {
			c.waitSidecar(&obs, f, "report", unit)
			return obs, nil
		}
		obs.State, obs.Error = plugins.JobFailed, fmt.Sprintf("unreadable report %s: %v", f.path+protocol.ReportSuffix, err)
		return obs, nil
	}
	obs.Since = f.changed()
	if !oc.Success {
		obs.State, obs.Error = plugins.JobFailed, oc.Error
		return obs, nil
	}
	outs, err := c.outputs(f, oc)
	if err != nil {
		obs.State, obs.Error = plugins.JobFailed, "reported success, but "+err.Error()
		return obs, nil
	}
	obs.State, obs.Outputs = plugins.JobSucceeded, outs
	return obs, nil
}

// stall marks a queued or processing job stalled once it has been so for
// longer than the timeout.
func (c *Converter) stall(obs *plugins.JobObservation, what string, unit func() string) {
	age := c.now().Sub(obs.Since)
	if obs.Since.IsZero() || age <= c.timeout {
		return
	}
	obs.State = plugins.JobStalled
	obs.Detail = fmt.Sprintf("%s for %s (timeout %s); %s", what, age.Round(time.Second), c.timeout, unit())
}
