package worker

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// hugeVMDK makes a sparse VMDK whose header claims 100 TiB (25 MiB on disk,
// 13 GB apparent): converting it takes qemu-img many minutes. Its manifest
// has no checksum (hashing 13 GB of holes would only slow the test).
func hugeVMDK(t testing.TB, d testDirs, id string) *protocol.Manifest {
	t.Helper()
	p := filepath.Join(d.in, id+".vmdk")
	qemu(t, "create", "-q", "-f", "vmdk", p, "100T")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	m := d.manifest(t, id, "qcow2")
	m.Disks = []protocol.Disk{{ID: "disk0", SourceFormat: "vmdk", Bytes: fi.Size(), LocalPath: p, BootOrderHint: 0}}
	return m
}

// failedFor checks that job id failed with an error naming want, and that
// it stays failed: a worker started again on the directory (a restart)
// finds nothing to do.
func failedFor(t *testing.T, d testDirs, cfg Config, id string, want ...string) {
	t.Helper()
	_, side := d.finished(t, protocol.DirFailed, id+".json", protocol.ErrorSuffix)
	e := sidecarError(t, side)
	for _, w := range want {
		if !strings.Contains(e.Error, w) {
			t.Errorf("%s: error %q does not name %q", id, e.Error, w)
		}
	}
	w := newWorker(t, cfg)
	runWithin(t, w, time.Minute)
	if got := w.status(); got != "0 done, 0 running, 0 failed" {
		t.Errorf("after a restart: %s, want nothing done", got)
	}
	d.finished(t, protocol.DirFailed, id+".json", protocol.ErrorSuffix)
	for _, dir := range []string{protocol.DirQueued, protocol.DirProcessing} {
		if m, _ := filepath.Glob(filepath.Join(d.wf, dir, id+"*")); len(m) > 0 {
			t.Errorf("%s came back to %s/: %v", id, dir, m)
		}
	}
}

// TestManifestSizeLimit: a job file over -max-manifest-bytes fails naming
// the limit, without being read whole; one under it runs.
func TestManifestSizeLimit(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	disk := filepath.Join(d.in, "a.raw")
	makeRaw(t, disk, 1<<20, 13)
	big := d.manifest(t, "big", "qcow2", [2]string{disk, "raw"})
	big.Metadata.Tags["padding"] = strings.Repeat("x", 64<<10)
	d.queueManifest(t, big)
	d.queueManifest(t, d.manifest(t, "small", "qcow2", [2]string{disk, "raw"}))
	cfg := d.config()
	cfg.MaxManifestBytes = 16 << 10
	runWithin(t, newWorker(t, cfg), time.Minute)
	d.finished(t, protocol.DirProcessed, "small.json", protocol.ReportSuffix)
	failedFor(t, d, cfg, "big", "-max-manifest-bytes", "16384 bytes")
}

// TestVirtualSizeLimit: by default a disk whose header claims 100 TiB is
// refused from qemu-img info, before any conversion, naming the limit.
func TestVirtualSizeLimit(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	d.queueManifest(t, hugeVMDK(t, d, "huge"))
	cfg := d.config()
	runWithin(t, newWorker(t, cfg), time.Minute)
	failedFor(t, d, cfg, "huge", "-max-virtual-size", "64.0 TiB", "100.0 TiB")
	if m, _ := filepath.Glob(filepath.Join(d.out, "huge", "*")); len(m) > 0 {
		t.Errorf("output left behind: %v", m)
	}
}

// TestJobTimeout: a job that runs past -job-timeout is stopped and fails
// naming the limit; every process of the qemu-img process group is killed
// (qemu-img runs here as the child of a wrapper that does not exec it), and
// no partial output is left.
func TestJobTimeout(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	d.queueManifest(t, hugeVMDK(t, d, "slow"))
	real, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Fatal(err)
	}
	pids := filepath.Join(t.TempDir(), "pids")
	wrapper := filepath.Join(t.TempDir(), "qemu-img")
	script := fmt.Sprintf("#!/bin/sh\n%q \"$@\" &\necho $! >> %q\nwait $!\n", real, pids)
	must(t, os.WriteFile(wrapper, []byte(script), 0o755))

	cfg := d.config()
	cfg.QemuImg, cfg.JobTimeout, cfg.MaxVirtualSize = wrapper, 2*time.Second, 1<<60
	runWithin(t, newWorker(t, cfg), time.Minute)
	b, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		if !gone(pid, 10*time.Second) {
			t.Errorf("qemu-img (pid %d) still runs after its job was stopped", pid)
		}
	}
	failedFor(t, d, cfg, "slow", "-job-timeout", "2s")
	if m, _ := filepath.Glob(filepath.Join(d.out, "slow", ".*")); len(m) > 0 {
		t.Errorf("partial output left behind: %v", m)
	}
}

// gone waits until pid has exited (a zombie waiting for init counts).
func gone(pid int, limit time.Duration) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		// pid (comm) state ...: the state follows the last ')'.
		if s := string(b); strings.HasPrefix(strings.TrimSpace(s[strings.LastIndexByte(s, ')')+1:]), "Z") {
			return true
		}
	}
	return syscall.Kill(pid, 0) != nil
}
