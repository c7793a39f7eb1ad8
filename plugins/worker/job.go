package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// process runs one claimed job to its end: processed/ with a report,
// failed/ with an error sidecar, handed back to the queue (shutdown past the
// grace period), or abandoned because another worker took it back. The
// lease is renewed by a goroutine of its own for as long as the job runs.
func (w *Worker) process(parent context.Context, c *claim) {
	log := w.log.With("job", c.id)
	defer c.lease.close()
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	leaseCtx, stopLease := context.WithCancel(ctx)
	renewing := make(chan struct{})
	go func() {
		defer close(renewing)
		w.keepLease(leaseCtx, c, cancel)
	}()

	log.Info("job claimed", "name", c.name)
	rep, err := w.runJob(ctx, c)
	stopLease()
	<-renewing
	if ctx.Err() != nil {
		cause := context.Cause(ctx)
		if errors.Is(cause, errLost) {
			log.Warn("abandoning job", "reason", cause)
			return
		}
		if herr := w.handBackOwn(c); herr != nil {
			log.Error("could not hand the job back; another worker will take it after the lease", "error", herr)
			return
		}
		log.Warn("job interrupted and handed back to the queue", "reason", cause)
		return
	}
	if err != nil {
		log.Error("job failed", "error", err)
		if ferr := w.finish(c, protocol.DirFailed, protocol.ErrorSuffix, errorSidecar(c, err)); errors.Is(ferr, errLost) {
			log.Warn("abandoning job", "reason", ferr)
			return
		} else if ferr != nil {
			log.Error("could not record the failure", "error", ferr)
		}
		w.count(false)
		return
	}
	if ferr := w.finish(c, protocol.DirProcessed, protocol.ReportSuffix, rep); errors.Is(ferr, errLost) {
		log.Warn("abandoning job", "reason", ferr)
		return
	} else if ferr != nil {
		log.Error("could not record the success", "error", ferr)
		w.count(false)
		return
	}
	log.Info("job succeeded", "artifacts", len(rep.Artifacts), "seconds", rep.Pipeline.DurationSeconds)
	w.count(true)
}

// handBackOwn returns this worker's claimed job to the queue: the lease is
// sealed first, so no other worker moves the manifest meanwhile.
func (w *Worker) handBackOwn(c *claim) error {
	tomb, err := c.lease.seal("handback")
	if err != nil {
		return err
	}
	defer os.Remove(tomb)
	return w.handBack(c.name)
}

func errorSidecar(c *claim, err error) protocol.ErrorSidecar {
	inner := err
	for errors.Unwrap(inner) != nil {
		inner = errors.Unwrap(inner)
	}
	return protocol.ErrorSidecar{
		JobID:        c.id,
		OriginalName: c.name,
		FailedAt:     time.Now().Format(time.RFC3339),
		Error:        err.Error(),
		Exception:    fmt.Sprintf("%T: %v", inner, inner),
		Status:       "failed",
	}
}

// finish seals the lease (the job is still ours, and stays so), writes the
// sidecar (temp + rename), then moves the manifest into today's date
// folder: an observer that sees the manifest there always finds a complete
// sidecar. errLost means the job was no longer ours: nothing was written.
func (w *Worker) finish(c *claim, top, suffix string, sidecar any) error {
	data, err := json.MarshalIndent(sidecar, "", "  ")
	if err != nil {
		return err
	}
	dir := w.dir(top, protocol.DateDir(time.Now()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tomb, err := c.lease.seal("done")
	if err != nil {
		return err
	}
	defer func() {
		os.Remove(tomb)
		fsutil.SyncDir(w.dir(protocol.DirProcessing))
	}()
	side := filepath.Join(dir, c.name+suffix)
	if err := fsutil.WriteFileAtomic(side, append(data, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.Rename(w.dir(protocol.DirProcessing, c.name), filepath.Join(dir, c.name)); err != nil {
		os.Remove(side)
		return fmt.Errorf("move manifest to %s: %w", top, err)
	}
	return fsutil.SyncDir(dir)
}
