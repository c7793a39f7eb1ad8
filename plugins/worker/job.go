package worker

import (
	"cmp"
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
	// The wall-clock limit ends the job like a cancellation (its qemu-img
	// process group is killed), but fails it instead of handing it back.
	jobCtx, stopClock := context.WithTimeoutCause(ctx, w.cfg.JobTimeout, jobTooLong(w.cfg.JobTimeout))
	rep, err := w.runJob(jobCtx, c)
	timedOut := jobCtx.Err() != nil
	stopClock()
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
	var limit *limitError
	if err != nil && timedOut && !errors.As(err, &limit) {
		err = context.Cause(jobCtx) // whatever the stop broke, the limit is the reason
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
//
// Nothing there is ever replaced: a job of the same name finished earlier
// that day (another submitter's, or one a daemon is still writing the
// sidecar of) keeps its files, and this one is filed under the daemon's
// clash name <id>_<YYYYMMDD_HHMMSS>, manifest and sidecar alike.
func (w *Worker) finish(c *claim, top, suffix string, sidecar any) error {
	data, err := json.MarshalIndent(sidecar, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	dir := w.dir(top, protocol.DateDir(time.Now()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tomb, err := c.lease.seal("done")
	if err != nil {
		return err
	}
	w.removeProgress(c.name)
	defer func() {
		os.Remove(tomb)
		fsutil.SyncDir(w.dir(protocol.DirProcessing))
	}()
	src := w.dir(protocol.DirProcessing, c.name)
	name, err := freeName(c.name, c.id, c.ext, func(name string) error { return fileAway(src, dir, name, suffix, data, c.lease.token) })
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("move manifest to %s: no free name in %s for %s", top, dir, c.name)
	}
	if err != nil {
		return fmt.Errorf("move manifest to %s: %w", top, err)
	}
	if name != c.name {
		w.log.Warn("a job of this name was already filed today: filed under a clash name", "job", c.id, "dir", dir, "as", name)
	}
	return fsutil.SyncDir(dir)
}

// fileAway puts the sidecar, then the manifest src, under name in dir,
// replacing nothing but a sidecar whose manifest is not there (left by a
// worker that died filing this name). It fails with os.ErrExist, leaving
// nothing of this job in dir, when the name or its sidecar's is taken: by
// a manifest too, since a daemon moves the manifest before it writes the
// sidecar.
func fileAway(src, dir, name, suffix string, sidecar []byte, token string) error {
	dst := filepath.Join(dir, name)
	if _, err := os.Lstat(dst); err == nil {
		return os.ErrExist
	}
	side := dst + suffix
	mine, err := writeNoReplace(side, sidecar, token)
	if errors.Is(err, os.ErrExist) {
		if _, derr := os.Lstat(dst); errors.Is(derr, os.ErrNotExist) {
			// A sidecar without its manifest is a worker's that died
			// between the two (a worker files the sidecar first, a
			// daemon the manifest first): the previous holder of this
			// job's name, whose claim was taken back. It is nobody's
			// result; this one replaces it.
			if rerr := os.Remove(side); rerr == nil {
				mine, err = writeNoReplace(side, sidecar, token)
			}
		}
	}
	if err != nil {
		return err
	}
	if err := moveNoReplace(src, dst); err != nil {
		if cur, serr := os.Lstat(side); serr == nil && os.SameFile(mine, cur) {
			os.Remove(side)
		}
		return err
	}
	return nil
}

// writeNoReplace writes data to path atomically (a dot temp file in the
// same directory, fsync, then a rename that replaces nothing) and returns
// the file written. An existing path is os.ErrExist. The directory is not
// fsynced: the caller does that once for all it moved there.
func writeNoReplace(path string, data []byte, token string) (os.FileInfo, error) {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+token+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644) // whatever the umask
	}
	if err == nil {
		err = f.Sync()
	}
	fi, serr := f.Stat()
	if cerr := f.Close(); err == nil {
		err = cmp.Or(serr, cerr)
	}
	if err == nil {
		err = moveNoReplace(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	return fi, nil
}
