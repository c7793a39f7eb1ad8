package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// capabilities are what this worker can run: no inspect or fix (no
// libguestfs; a job that enables them fails, or with SkipGuestFixes skips
// them, which is not running them), and the codec compressed qcow2 output
// gets from its qemu-img (features.go).
func (w *Worker) capabilities() []string {
	return []string{protocol.CapConvert, protocol.CapValidate, protocol.CapChecksum, w.features(context.Background()).capability()}
}

// heartbeat is this process's heartbeat file (protocol.Heartbeat).
type heartbeat struct {
	path string
	hb   protocol.Heartbeat
}

func (w *Worker) newHeartbeat() *heartbeat {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	pid := os.Getpid()
	return &heartbeat{
		path: w.dir(protocol.DirWorkers, protocol.HeartbeatName(host, pid)),
		hb: protocol.Heartbeat{
			Version: protocol.HeartbeatVersion, Host: host, PID: pid,
			StartedAt:       time.Now().UTC(),
			IntervalSeconds: w.cfg.HeartbeatInterval.Seconds(),
			WorkerVersion:   w.cfg.Version,
			InputRoots:      w.inRoots, OutputRoots: w.outRoots,
			Capabilities: w.capabilities(),
		},
	}
}

// write stamps and writes the heartbeat atomically.
func (h *heartbeat) write() error {
	h.hb.UpdatedAt = time.Now().UTC()
	b, err := h.hb.Marshal()
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(h.path, b, 0o644); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// startHeartbeat writes the heartbeat, then rewrites it every
// HeartbeatInterval from a goroutine of its own (a main loop busy claiming
// or a blocked rescan does not make the worker look dead). The returned
// stop ends the goroutine and removes the file: a worker that stops
// claiming says so at once. A failed first write is an error: a directory
// the worker cannot write its heartbeat in, it cannot claim jobs in either.
func (w *Worker) startHeartbeat() (stop func(), err error) {
	h := w.newHeartbeat()
	if err := os.MkdirAll(w.dir(protocol.DirWorkers), 0o755); err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	if err := h.write(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(w.cfg.HeartbeatInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := h.write(); err != nil {
				w.log.Warn("heartbeat", "error", err)
			}
		}
	}()
	return sync.OnceFunc(func() {
		cancel()
		<-done
		if err := os.Remove(h.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			w.log.Warn("heartbeat: remove", "error", err)
		}
	}), nil
}
