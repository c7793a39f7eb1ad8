package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// Leases. The owner of a claimed job keeps processing/.<name>.lease fresh
// (mtime) and names itself in it. Another worker that finds a job in
// processing/ whose lease is older than Config.Lease — or that has no lease
// and was claimed (ctime of the rename) longer ago than that — takes it back
// to to_be_processed/, so a job whose worker died is never lost. Ages are
// compared with the local clock: hosts sharing a directory need NTP, and
// the lease must be much longer than the refresh period (Lease/4).

// takeLease writes c's heartbeat naming this worker, replacing any left
// by an earlier owner.
func (w *Worker) takeLease(c *claim) error {
	return fsutil.WriteFileAtomic(c.heartbeat(w), []byte(w.owner+"\n"), 0o644)
}

// beat refreshes c's heartbeat.
func (w *Worker) beat(c *claim) error {
	now := time.Now()
	if err := os.Chtimes(c.heartbeat(w), now, now); errors.Is(err, os.ErrNotExist) {
		return w.takeLease(c)
	} else {
		return err
	}
}

// errLost says another worker took a job back from this one.
var errLost = errors.New("lease lost: another worker took the job back")

// keepLease refreshes c's heartbeat until ctx ends. When the manifest left
// processing/ or the lease names another owner, it cancels the job.
func (w *Worker) keepLease(ctx context.Context, c *claim, cancel context.CancelCauseFunc) {
	t := time.NewTicker(w.cfg.Lease / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.stillOwner(c); err != nil {
			cancel(err)
			return
		}
		if err := w.beat(c); err != nil {
			w.log.Warn("heartbeat", "job", c.id, "error", err)
		}
	}
}

// stillOwner checks that c's manifest is where this worker put it and that
// its lease names this worker.
func (w *Worker) stillOwner(c *claim) error {
	if _, err := os.Stat(w.dir(protocol.DirProcessing, c.name)); err != nil {
		return fmt.Errorf("%w (%v)", errLost, err)
	}
	b, err := os.ReadFile(c.heartbeat(w))
	if err == nil && !bytes.Equal(bytes.TrimSpace(b), []byte(w.owner)) {
		return fmt.Errorf("%w (lease now held by %s)", errLost, bytes.TrimSpace(b))
	}
	return nil
}

// reclaimStale hands back every job in processing/ whose owner's lease has
// expired, and removes leases whose job is gone.
func (w *Worker) reclaimStale() {
	entries, err := os.ReadDir(w.dir(protocol.DirProcessing))
	if err != nil {
		w.log.Error("reclaim: read processing/", "error", err)
		return
	}
	now := time.Now()
	present := map[string]bool{}
	for _, e := range entries {
		if _, _, ok := protocol.JobFile(e.Name()); ok {
			present[e.Name()] = true
		}
	}
	for name := range present {
		w.mu.Lock()
		mine := w.running[name]
		w.mu.Unlock()
		if mine {
			continue
		}
		c := &claim{name: name}
		age, err := leaseAge(w.dir(protocol.DirProcessing, name), c.heartbeat(w), now)
		if err != nil || age <= w.cfg.Lease {
			continue
		}
		// The stale lease goes first, so the next claimer never refreshes
		// a file that names the dead owner.
		os.Remove(c.heartbeat(w))
		if err := w.handBack(name); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				w.log.Error("reclaim", "name", name, "error", err)
			}
			continue
		}
		w.log.Warn("took back a job whose owner's lease expired", "name", name, "lease_age", age.Round(time.Second))
	}
	for _, e := range entries {
		n := e.Name()
		if len(n) > 7 && n[0] == '.' && n[len(n)-6:] == ".lease" && !present[n[1:len(n)-6]] {
			if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > w.cfg.Lease {
				os.Remove(w.dir(protocol.DirProcessing, n))
			}
		}
	}
}

// leaseAge is how long ago the job's lease was last refreshed; without a
// lease, how long ago the manifest was renamed into processing/ (ctime).
func leaseAge(manifest, heartbeat string, now time.Time) (time.Duration, error) {
	if fi, err := os.Stat(heartbeat); err == nil {
		return now.Sub(fi.ModTime()), nil
	}
	fi, err := os.Stat(manifest)
	if err != nil {
		return 0, err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return now.Sub(time.Unix(st.Ctim.Sec, st.Ctim.Nsec)), nil
	}
	return now.Sub(fi.ModTime()), nil
}
