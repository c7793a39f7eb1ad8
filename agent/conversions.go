package agent

import (
	"context"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
)

// The agent's passes leave a submitted job to later passes (SkipAwait),
// so no await reads a conversion's progress while it runs. The agent reads
// it itself instead: every ProgressInterval, for each converter that can
// tell (plugins.JobProgressReporter), one ReportProgress call for the
// campaign's jobs queued or converting, whose figures live keeps beside
// the job (live.conversion). A converter that publishes none (the
// hyper2kvm daemon) leaves the conversion's bytes unknown: the API shows
// its elapsed time only.

// followConversions reads the conversions' progress until ctx ends.
func (a *Agent) followConversions(ctx context.Context) {
	t := time.NewTicker(a.o.ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.readConversions(ctx)
	}
}

// readConversions reads, once, how far the jobs queued or converting are.
// It holds convMu throughout, so that the converters it asks are not
// closed meanwhile (setConverters waits for it).
func (a *Agent) readConversions(ctx context.Context) {
	jobs := a.live.converting()
	if len(jobs) == 0 {
		return
	}
	a.convMu.Lock()
	defer a.convMu.Unlock()
	for name, qs := range jobs {
		r, ok := a.convs[name].(plugins.JobProgressReporter)
		if !ok {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, converterCheckTimeout)
		err := r.ReportProgress(cctx, plugins.JobProgressRequest{Jobs: qs, Progress: a.live.conversion})
		cancel()
		if err != nil && ctx.Err() == nil {
			a.log.Debug("reading the conversions' progress failed", "converter", name, "error", err)
		}
	}
}

// setConverters makes cs the converters whose progress is read, once no
// read of the ones before runs any more (they are about to be closed).
func (a *Agent) setConverters(cs map[string]plugins.Converter) {
	a.convMu.Lock()
	defer a.convMu.Unlock()
	a.convs = cs
}
