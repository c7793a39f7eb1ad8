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

// Withdraw takes back a job no daemon has claimed: its manifest is renamed
// from to_be_processed/ into withdrawn/ (kept for audit; daemons never look
// there, and Submit and ObserveJobs ignore it). A claimed or finished job is
// left alone and reported, never killed.
func (c *Converter) Withdraw(ctx context.Context, req plugins.WithdrawRequest) (plugins.WithdrawResponse, error) {
	sc, err := c.scan(ctx)
	if err != nil {
		return plugins.WithdrawResponse{}, fmt.Errorf("job %s: %w", req.JobID, err)
	}
	f := sc.find(req.JobID)
	if f == nil {
		return plugins.WithdrawResponse{Withdrawn: true, Detail: "no such job in the workflow directory"}, nil
	}
	if why := c.foreign(f, req.Want); why != "" {
		return plugins.WithdrawResponse{Detail: "not this migration's job, left alone: " + why}, nil
	}
	if f.where != inQueued {
		return plugins.WithdrawResponse{Detail: c.notWithdrawn(f)}, nil
	}
	dst := c.dir(protocol.DirWithdrawn)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return plugins.WithdrawResponse{}, fmt.Errorf("job %s: %w", req.JobID, err)
	}
	if err := os.Rename(f.path, filepath.Join(dst, f.name)); err != nil {
		if errors.Is(err, os.ErrNotExist) { // claimed between the scan and the rename
			sc, serr := c.scan(ctx)
			if serr == nil {
				if f := sc.find(req.JobID); f != nil {
					return plugins.WithdrawResponse{Detail: c.notWithdrawn(f)}, nil
				}
			}
		}
		return plugins.WithdrawResponse{}, fmt.Errorf("job %s: %w", req.JobID, err)
	}
	if err := fsutil.SyncDir(dst); err != nil {
		return plugins.WithdrawResponse{}, fmt.Errorf("job %s: %w", req.JobID, err)
	}
	if err := fsutil.SyncDir(filepath.Dir(f.path)); err != nil {
		return plugins.WithdrawResponse{}, fmt.Errorf("job %s: %w", req.JobID, err)
	}
	c.log.Info("job withdrawn", "address", req.Address, "job", req.JobID)
	return plugins.WithdrawResponse{Withdrawn: true, Detail: "moved to " + protocol.DirWithdrawn + "/"}, nil
}

func (c *Converter) notWithdrawn(f *jobFile) string {
	switch f.where {
	case inProcessing:
		return fmt.Sprintf("claimed by the daemon (%s/%s): a claimed job is not killed", protocol.DirProcessing, f.name)
	case inProcessed, inFailed:
		return "already finished: " + f.path
	}
	return "not withdrawable: " + f.path
}
