package worker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// TestHeartbeat: a running worker keeps <workflow_dir>/.workers/<host>-<pid>.json
// fresh from the moment it is Ready, saying who it is, its resolved roots
// and what it can run (no fix or inspect; the codec of compressed output,
// once qemu-img is probed, which the heartbeat lists without waiting for
// its next rewrite), and removes it when it stops.
func TestHeartbeat(t *testing.T) {
	codec := map[bool]string{true: "compress:zstd", false: "compress:zlib"}[qemuHasZstd(t)]
	d := newDirs(t)
	link := filepath.Join(t.TempDir(), "in-link") // a root given through a symlink is written resolved
	if err := os.Symlink(d.in, link); err != nil {
		t.Fatal(err)
	}
	cfg := d.config()
	cfg.Once, cfg.HeartbeatInterval, cfg.InputRoots = false, 20*time.Millisecond, []string{link}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	host, _ := os.Hostname()
	path := filepath.Join(d.wf, protocol.DirWorkers, protocol.HeartbeatName(host, os.Getpid()))
	read := func() *protocol.Heartbeat {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		h, err := protocol.ParseHeartbeat(b)
		if err != nil {
			t.Fatalf("%s: %v\n%s", path, err, b)
		}
		return h
	}
	select {
	case <-w.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	first := read() // written before Ready
	if first == nil {
		t.Fatalf("no heartbeat at %s once the worker is ready", path)
	}
	in, _ := filepath.EvalSymlinks(d.in)
	out, _ := filepath.EvalSymlinks(d.out)
	want := protocol.Heartbeat{Version: 1, Host: host, PID: os.Getpid(), IntervalSeconds: 0.02, WorkerVersion: Version,
		InputRoots: []string{in}, OutputRoots: []string{out}, Capabilities: []string{"convert", "validate", "checksum"}}
	got := *first
	got.StartedAt, got.UpdatedAt = time.Time{}, time.Time{}
	if len(got.Capabilities) == 4 && got.Capabilities[3] == codec { // the probe of qemu-img was over already
		got.Capabilities = got.Capabilities[:3]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("heartbeat (-want +got):\n%s", diff)
	}
	if first.Can(protocol.CapFix) || first.Can(protocol.CapInspect) {
		t.Errorf("the worker claims a guest stage it cannot run: %v", first.Capabilities)
	}
	if !first.Fresh(time.Now()) || first.UpdatedAt.Before(first.StartedAt) {
		t.Errorf("started %s, updated %s: not fresh now", first.StartedAt, first.UpdatedAt)
	}
	waitFor(t, "the heartbeat to list the codec, "+codec, func() bool {
		h := read()
		return h != nil && len(h.Capabilities) == 4 && h.Capabilities[3] == codec
	})
	waitFor(t, "the heartbeat to be rewritten", func() bool {
		h := read()
		return h != nil && h.UpdatedAt.After(first.UpdatedAt) && h.StartedAt.Equal(first.StartedAt)
	})

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(d.wf, protocol.DirWorkers, "*")); len(left) != 0 {
		t.Errorf("after a graceful stop .workers/ holds %v, want nothing", left)
	}
}

// TestHeartbeatCodec: the heartbeat lists the codec as soon as qemu-img
// has been probed, not at its next rewrite (an hour away here).
func TestHeartbeatCodec(t *testing.T) {
	codec := map[bool]string{true: protocol.CapCompressZstd, false: protocol.CapCompressZlib}[qemuHasZstd(t)]
	d := newDirs(t)
	cfg := d.config()
	cfg.Once, cfg.HeartbeatInterval = false, time.Hour
	w := newWorker(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-w.Ready()
	host, _ := os.Hostname()
	path := filepath.Join(d.wf, protocol.DirWorkers, protocol.HeartbeatName(host, os.Getpid()))
	waitFor(t, "the heartbeat to list "+codec, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		h, err := protocol.ParseHeartbeat(b)
		return err == nil && h.Can(codec)
	})
}
