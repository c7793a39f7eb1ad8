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
// them, which is not running them), and, once qemu-img has been probed,
// the codec compressed qcow2 output gets (features.go).
func (w *Worker) capabilities() []string {
	caps := []string{protocol.CapConvert, protocol.CapValidate, protocol.CapChecksum}
	if w.probed.Load() {
		caps = append(caps, w.qemu.capability())
	}
	return caps
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
		},
	}
}

// write stamps and writes the heartbeat atomically, with the capabilities
// known now.
func (h *heartbeat) write(caps []string) error {
	h.hb.UpdatedAt = time.Now().UTC()
	h.hb.Capabilities = caps
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
// or a blocked rescan does not make the worker look dead), and once more
// as soon as probed is closed, to list the codec. The returned stop ends
// the goroutine and removes the file: a worker that stops claiming says so
// at once. A failed first write is an error: a directory the worker cannot
// write its heartbeat in, it cannot claim jobs in either.
func (w *Worker) startHeartbeat(probed <-chan struct{}) (stop func(), err error) {
	h := w.newHeartbeat()
	if err := os.MkdirAll(w.dir(protocol.DirWorkers), 0o755); err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	if err := h.write(w.capabilities()); err != nil {
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
			case <-probed:
				probed = nil // once
			}
			if err := h.write(w.capabilities()); err != nil {
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
