package worker

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// qemuFeatures are what this worker's qemu-img can do beyond a plain
// conversion, found once per process by trying it (probeQemu).
//
// Compressed qcow2 output uses zstd where qemu-img was built with it (QEMU
// 5.1 and later, when linked with libzstd). On bench/worker/convert.sh's
// disk (1 GiB; half random data, half system binaries) the worker's
// zstd-compressed conversion took 2.9 s (median; 2.2 s of CPU) where its
// plain one took 1.1 s, and bare qemu-img -c with zlib 19.5 s (13.7 s of
// CPU), for the same size (0.68 of plain, zlib 0.69). Elsewhere it is
// zlib, and the log, each compressed job's report and the heartbeat's
// capabilities say so.
//
// Compressed output is converted with -W (out-of-order writes) when
// qemu-img accepts -W with -c (7.2 does): in order, each coroutine waits for
// the one before it to write, and compression, which qemu runs in its
// thread pool one cluster per coroutine, stays on one core at a time (on a
// 1 GiB disk here: 3.6 s in order, 2.7 s with -W, both -m 8).
type qemuFeatures struct {
	zstd    bool
	noZstd  string // why not, from qemu-img
	wCompr  bool   // -W is accepted with -c
	noWComp string // why not, from qemu-img
}

// codec is the qcow2 compression_type compressed jobs get.
func (f qemuFeatures) codec() string {
	if f.zstd {
		return "zstd"
	}
	return "zlib"
}

// capability is the heartbeat's word for the codec.
func (f qemuFeatures) capability() string {
	if f.zstd {
		return protocol.CapCompressZstd
	}
	return protocol.CapCompressZlib
}

// features probes qemu-img the first time it is called (Run starts that at
// once, beside everything else), and from then on returns what that probe
// found.
func (w *Worker) features(ctx context.Context) qemuFeatures {
	w.probeOnce.Do(func() {
		w.qemu = w.probeQemu(ctx)
		w.probed.Store(true)
		if !w.qemu.zstd {
			w.log.Warn("qemu-img cannot write zstd-compressed qcow2 here: compressed output uses zlib", "error", w.qemu.noZstd)
		}
		if !w.qemu.wCompr {
			w.log.Warn("qemu-img refuses out-of-order writes (-W) with compression: compressed output is written in order", "error", w.qemu.noWComp)
		}
		w.log.Info("qemu-img probed", "codec", w.qemu.codec(), "out_of_order_compressed", w.qemu.wCompr)
	})
	return w.qemu
}

// probeQemu converts a small image, in a temporary directory of the first
// output root (the one place the worker is sure to be allowed to write),
// the way a compressed job is converted: zstd, -W. Where that fails, it
// tells the two apart: it creates a zstd qcow2, then converts with -W and
// the codec it has. Each failure is kept as qemu-img's reason. The usual
// case costs one short qemu-img run (~15 ms of CPU here).
func (w *Worker) probeQemu(ctx context.Context) qemuFeatures {
	var f qemuFeatures
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp(w.outRoots[0], ".hyperagent-probe-")
	if err != nil {
		f.noZstd = fmt.Sprintf("cannot probe qemu-img: %v", err)
		f.noWComp = f.noZstd
		return f
	}
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "in.raw")
	if err := os.WriteFile(in, bytes.Repeat([]byte("hyperagent probe "), 16<<10), 0o600); err != nil {
		f.noZstd = fmt.Sprintf("cannot probe qemu-img: %v", err)
		f.noWComp = f.noZstd
		return f
	}
	convert := func(codec string) error {
		_, err := w.qemuImg(ctx, "convert", "-q", "-W", "-m", "2", "-c", "-o", "compression_type="+codec,
			"-f", "raw", "-O", "qcow2", in, filepath.Join(dir, "out-"+codec+".qcow2"))
		return err
	}
	if convert("zstd") == nil {
		return qemuFeatures{zstd: true, wCompr: true}
	}
	if _, err := w.qemuImg(ctx, "create", "-q", "-f", "qcow2", "-o", "compression_type=zstd", filepath.Join(dir, "zstd.qcow2"), "1M"); err != nil {
		f.noZstd = err.Error()
	} else {
		f.zstd = true
	}
	if err := convert(f.codec()); err != nil {
		f.noWComp = err.Error()
	} else {
		f.wCompr = true
	}
	return f
}

// maxCoroutines is qemu-img convert's limit for -m.
const maxCoroutines = 16

// coroutines is qemu-img convert's -m for each conversion: the cores this
// worker may use, shared among the jobs it runs at once, unless set.
func coroutines(set, jobs int) int { return coroutinesFor(set, jobs, runtime.GOMAXPROCS(0)) }

// coroutinesFor is coroutines on cpus cores. The cores are GOMAXPROCS's
// default: runtime.NumCPU (the CPUs this process may run on), lowered to a
// cgroup CPU limit such as systemd's CPUQuota=.
func coroutinesFor(set, jobs, cpus int) int {
	if set > 0 {
		return min(set, maxCoroutines)
	}
	return min(max(1, cpus/max(1, jobs)), maxCoroutines)
}
