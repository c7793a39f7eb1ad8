package hyper2kvm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

var _ plugins.JobProgressReporter = (*Converter)(nil)

// ReportProgress reads the progress files hyperagent's worker keeps for
// the jobs it converts (docs/protocol.md, section 12): for each requested
// job claimed in processing/ (under its id or a clash name),
// processing/.<name>.progress.json. One is believed only when it is a
// regular file of at most protocol.ProgressMaxBytes, parses and validates
// (done within a total that is not absurd), names that very job file, and
// names the token of the lease in place now (so not a dead claim's). Any
// other file, and a missing one (the hyper2kvm daemon writes none), gives
// no event: the job's progress is unknown. Files that are there but not
// believed are logged at debug level.
//
// It reads only processing/'s listing and, per claimed job asked about, a
// lease and a progress file: cheap enough to call every second. The job
// file's provenance is not read: Submit and ObserveJobs judged it.
func (c *Converter) ReportProgress(ctx context.Context, req plugins.JobProgressRequest) error {
	if len(req.Jobs) == 0 {
		return nil
	}
	dir := c.dir(protocol.DirProcessing)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	var claimed []string // job file names
	for _, e := range entries {
		if _, _, ok := protocol.JobFile(e.Name()); ok {
			claimed = append(claimed, e.Name())
		}
	}
	for _, q := range req.Jobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		var best *protocol.Progress
		for _, name := range claimed {
			if id, _, _ := protocol.JobFile(name); !protocol.MatchesJob(id, q.JobID) {
				continue
			}
			p, err := c.readProgress(dir, name)
			if err != nil {
				c.log.Debug("progress file ignored", "job", q.JobID, "name", name, "error", err)
				continue
			}
			if p != nil && (best == nil || p.UpdatedAt.After(best.UpdatedAt)) {
				best = p
			}
		}
		if best != nil {
			req.Progress(plugins.ProgressEvent{Address: q.Address, Item: plugins.ConversionItem(q.JobID),
				Done: best.DoneBytes, Total: best.TotalBytes})
		}
	}
	return nil
}

// readProgress reads the progress file of processing/<name>: nil when
// there is none, an error when there is one not to believe.
func (c *Converter) readProgress(dir, name string) (*protocol.Progress, error) {
	b, err := fsutil.ReadRegular(filepath.Join(dir, protocol.ProgressName(name)), protocol.ProgressMaxBytes)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p, err := protocol.ParseProgress(b)
	if err != nil {
		return nil, err
	}
	if p.Job != name {
		return nil, fmt.Errorf("it is %s's, not %s's", p.Job, name)
	}
	lb, err := fsutil.ReadRegular(filepath.Join(dir, protocol.LeaseName(name)), protocol.LeaseMaxBytes)
	if err != nil {
		return nil, fmt.Errorf("its lease: %w", err)
	}
	l, err := protocol.ParseLease(lb)
	if err != nil {
		return nil, err
	}
	if l.Token != p.Token {
		return nil, fmt.Errorf("it is claim %s's, and the job's lease is now claim %s's", p.Token, l.Token)
	}
	return p, nil
}
