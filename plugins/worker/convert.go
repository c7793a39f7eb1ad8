package worker

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// The input is read with io_uring where qemu-img can: on a 1 GiB VMDK it cut
// qemu-img convert's CPU time by about a quarter and its wall time by a
// fifth here (2-core VM), against qemu's default thread-pool reads. The
// output keeps qemu's defaults (writes through the page cache; the worker
// fsyncs them). Where the kernel, a seccomp filter (the systemd unit's
// SystemCallFilter) or the qemu build refuses io_uring, qemu-img fails at
// open, before reading or writing anything; the worker then converts with
// the defaults and stops trying io_uring for the rest of its life.

// convert runs qemu-img convert from src to tmp with the target options,
// passing the share done it reports to progress.
func (w *Worker) convert(ctx context.Context, srcFormat, src, tmp string, target []string, progress func(share float64)) error {
	if !w.noURing.Load() {
		err := w.qemuImgTo(ctx, &progressParser{report: progress}, convertArgs(srcFormat, src, tmp, target, true)...)
		if err == nil || !uringRefused(err) {
			return err
		}
		if !w.noURing.Swap(true) {
			w.log.Info("qemu-img cannot use io_uring here: reading inputs with its default I/O", "error", err)
		}
		os.Remove(tmp)
	}
	return w.qemuImgTo(ctx, &progressParser{report: progress}, convertArgs(srcFormat, src, tmp, target, false)...)
}

// convertArgs is the qemu-img command line: -p prints the share done on
// stdout (progress.go). With io_uring the input is named by --image-opts,
// where a comma in a value is written twice.
func convertArgs(srcFormat, src, tmp string, target []string, uring bool) []string {
	args := append([]string{"convert", "-p"}, target...)
	if !uring {
		return append(args, "-f", qemuFormat(srcFormat), src, tmp)
	}
	spec := "driver=" + qemuFormat(srcFormat) + ",file.driver=file,file.aio=io_uring,file.filename=" + strings.ReplaceAll(src, ",", ",,")
	return append(args, "--image-opts", spec, tmp)
}

// uringRefused reports whether qemu-img failed because io_uring is not
// available: "Unable to use io_uring: ..." (the kernel or a seccomp filter
// refused io_uring_setup) or "aio=io_uring was specified, but is not
// supported in this build".
func uringRefused(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Unable to use io_uring") || strings.Contains(msg, "io_uring was specified, but is not supported")
}

// targetArgs are qemu-img convert's output options for a job, and whether
// the output is compressed. Every conversion runs -m coroutines (the cores
// this worker was given, shared among its jobs: coroutines), and -r
// RateLimit when set. Compressed
// output is qcow2 only, with the codec and -W that probeQemu found:
// compression runs in qemu's thread pool, one cluster per coroutine, and
// in-order writes would hold the coroutines back. A plain conversion keeps
// in-order writes: it gains nothing measurable from -W, and in order the
// qcow2's clusters stay in the guest's order.
func (w *Worker) targetArgs(ctx context.Context, m *protocol.Manifest, rep *report) ([]string, bool) {
	format := m.Output.Format
	n := coroutines(w.cfg.Coroutines, w.cfg.Jobs)
	args := []string{"-O", qemuFormat(format), "-m", strconv.Itoa(n)}
	if r := w.cfg.RateLimit; r > 0 {
		args = append(args, "-r", strconv.FormatInt(r, 10))
	}
	c := m.Pipeline.Convert
	if !c.Compress {
		return args, false
	}
	if format != "qcow2" {
		rep.warn("convert", fmt.Sprintf("compression applies to qcow2 only: %s output written uncompressed", format))
		return args, false
	}
	f := w.features(ctx)
	if !f.zstd {
		rep.warn("convert", "compressed with zlib: this worker's qemu-img cannot write zstd-compressed qcow2 ("+f.noZstd+")")
	}
	if c.CompressLevel != 0 {
		rep.warn("convert", fmt.Sprintf("compress_level %d not applied: qemu-img has no compression level (%s at its default level)", c.CompressLevel, f.codec()))
	}
	args = append(args, "-c", "-o", "compression_type="+f.codec())
	if n > 1 && f.wCompr {
		args = append(args, "-W")
	}
	return args, true
}
