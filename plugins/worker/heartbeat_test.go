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
// and what it can run (no fix or inspect; the codec of compressed output),
// and removes it when it stops.
func TestHeartbeat(t *testing.T) {
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
		InputRoots: []string{in}, OutputRoots: []string{out},
		Capabilities: []string{"convert", "validate", "checksum", map[bool]string{true: "compress:zstd", false: "compress:zlib"}[qemuHasZstd(t)]}}
	got := *first
	got.StartedAt, got.UpdatedAt = time.Time{}, time.Time{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("heartbeat (-want +got):\n%s", diff)
	}
	if first.Can(protocol.CapFix) || first.Can(protocol.CapInspect) {
		t.Errorf("the worker claims a guest stage it cannot run: %v", first.Capabilities)
	}
	if !first.Fresh(time.Now()) || first.UpdatedAt.Before(first.StartedAt) {
		t.Errorf("started %s, updated %s: not fresh now", first.StartedAt, first.UpdatedAt)
	}
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
