package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// Version is what the report's hyper2kvm_version says: the producer.
const Version = "hyperagent-worker/1"

// stageError names the pipeline stage a job failed in.
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return "stage " + e.stage + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

func inStage(stage string, err error) error {
	if err == nil {
		return nil
	}
	return &stageError{stage: stage, err: err}
}

// runJob reads, validates and executes a claimed manifest and returns the
// full report. Nothing is written under a final output name until that
// disk has been converted, checked and its input checksum verified.
func (w *Worker) runJob(ctx context.Context, c *claim) (*protocol.Report, error) {
	start := time.Now()
	path := w.dir(protocol.DirProcessing, c.name)
	data, err := readJobFile(path, w.cfg.MaxManifestBytes)
	if err != nil {
		return nil, err
	}
	m, err := protocol.ParseManifest(data, c.ext)
	if err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("invalid manifest: %w", err)
	}
	rep := newReport(m, path, c.id)
	if err := w.guestStages(m, rep); err != nil {
		return nil, err
	}
	if !m.Pipeline.Convert.Enabled {
		return nil, inStage("convert", fmt.Errorf("disabled in the manifest: the worker has nothing else to produce"))
	}
	outDir, err := w.outputDir(m.Output.Directory)
	if err != nil {
		return nil, inStage("convert", err)
	}

	disks := append([]protocol.Disk(nil), m.Disks...)
	sort.SliceStable(disks, func(i, j int) bool { return disks[i].BootOrderHint < disks[j].BootOrderHint })
	w.trace("start", c.id)
	defer w.trace("end", c.id)
	var convertSecs, checkSecs float64
	verified := 0
	for _, d := range disks {
		if d.Checksum != "" {
			verified++
		} else {
			rep.warn("convert", fmt.Sprintf("disk %s: no checksum in the manifest: the input was not verified", d.ID))
			w.log.Warn("no checksum in the manifest: the input was not verified", "job", c.id, "disk", d.ID)
		}
		art, t, err := w.convertDisk(ctx, c, m, d, outDir, rep)
		if err != nil {
			return nil, err
		}
		convertSecs += t.convert
		checkSecs += t.check
		rep.Artifacts = append(rep.Artifacts, art)
	}
	result := fmt.Sprintf("%d disk(s) converted to %s with qemu-img, input sha256 verified", len(disks), m.Output.Format)
	if verified < len(disks) {
		result += fmt.Sprintf(" for %d of %d disk(s) (the others have no checksum in the manifest)", verified, len(disks))
	}
	rep.stage("convert", protocol.StageResult{Success: true, Duration: convertSecs, Result: result})
	rep.stage("validate", protocol.StageResult{Success: true, Duration: checkSecs,
		Result: "qemu-img check passed (raw: qemu-img compare against the input)"})
	rep.finish(time.Since(start))
	if m.Options.Report.Enabled {
		b, err := json.MarshalIndent(&rep.Report, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(outDir, m.ReportPath()), append(b, '\n'), 0o644); err != nil {
			return nil, inStage("report", err)
		}
	}
	return &rep.Report, nil
}

// guestStages handles inspect and fix, which need libguestfs: a job that
// enables them fails naming the stage, unless -skip-guest-fixes, and then
// the report says skipped — never succeeded.
func (w *Worker) guestStages(m *protocol.Manifest, rep *report) error {
	for _, s := range []struct {
		name    string
		enabled bool
	}{{"inspect", m.Pipeline.Inspect.Enabled}, {"fix", m.Pipeline.Fix.Enabled}} {
		switch {
		case !s.enabled:
			rep.stage(s.name, protocol.StageResult{Skipped: true, Result: "skipped: disabled in the manifest"})
		case w.cfg.SkipGuestFixes:
			rep.stage(s.name, protocol.StageResult{Skipped: true, Result: "skipped: -skip-guest-fixes (the worker has no libguestfs)"})
			rep.warn(s.name, "stage enabled in the manifest but skipped: the guest was not inspected or fixed")
		default:
			return inStage(s.name, fmt.Errorf("enabled, but hyperagent worker has no libguestfs: disable the stage, run the worker with -skip-guest-fixes, or use the hyper2kvm daemon"))
		}
	}
	return nil
}

type diskTimes struct{ convert, check float64 }

// convertDisk converts one disk to a temp name beside its final name,
// fsyncs and checks the result, and only then renames it into place.
//
// The temp name carries the claim's token: a worker that lost the job to
// another (lease.go) removes only its own temp file, never the new
// holder's, and the holder removes those of earlier claims only once they
// have not changed for a whole Lease.
//
// The input's size and sha256 are verified by a second reader running
// beside all of that (the page cache serves both readers): it is the
// longest CPU-bound part, and the fsync that follows the conversion is
// mostly waiting on the disk, so the hash must not be a stage of its own.
// A mismatch found at any point cancels the conversion or the check and
// removes the temp file: the final name is only ever the target of a rename
// made after the hash matched, the check passed, the data was durable and
// the lease was found still held.
func (w *Worker) convertDisk(ctx context.Context, c *claim, m *protocol.Manifest, d protocol.Disk, outDir string, rep *report) (protocol.Artifact, diskTimes, error) {
	var t diskTimes
	src, err := w.inputPath(d.LocalPath)
	if err != nil {
		return protocol.Artifact{}, t, inStage("convert", err)
	}
	format := m.Output.Format
	final := filepath.Join(outDir, d.ID+"."+format)
	tmp := filepath.Join(outDir, "."+d.ID+"."+format+"."+c.lease.token+".part")
	w.removeStaleTemps(c, outDir, d.ID+"."+format)
	target, compressed := targetArgs(m, rep)

	begin := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := w.verifyInput(gctx, src, d)
		w.log.Debug("input verified", "disk", d.ID, "seconds", time.Since(begin).Seconds(), "error", err)
		return inStage("convert", err)
	})
	g.Go(func() (err error) {
		t, err = w.produce(gctx, d, src, tmp, format, target)
		return err
	})
	if err := g.Wait(); err != nil {
		os.Remove(tmp)
		var se *stageError
		if errors.As(err, &se) {
			return protocol.Artifact{}, t, inStage(se.stage, fmt.Errorf("disk %s: %w", d.ID, se.err))
		}
		return protocol.Artifact{}, t, inStage("convert", fmt.Errorf("disk %s: %w", d.ID, err))
	}
	if err := c.lease.held(); err != nil {
		os.Remove(tmp)
		return protocol.Artifact{}, t, inStage("convert", fmt.Errorf("disk %s: %w", d.ID, err))
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return protocol.Artifact{}, t, inStage("convert", err)
	}
	if err := fsutil.SyncDir(outDir); err != nil {
		return protocol.Artifact{}, t, inStage("convert", err)
	}
	fi, err := os.Stat(final)
	if err != nil {
		return protocol.Artifact{}, t, inStage("convert", err)
	}
	return protocol.Artifact{Type: "converted_disk", Path: final, DiskID: d.ID, Format: format,
		SizeBytes: fi.Size(), BootOrderHint: d.BootOrderHint, Compressed: compressed}, t, nil
}

// produce writes the converted image under tmp: it vets the input's
// references (before qemu-img convert may read them), converts, then fsyncs
// and checks the result side by side. Errors name their stage.
func (w *Worker) produce(ctx context.Context, d protocol.Disk, src, tmp, format string, target []string) (diskTimes, error) {
	var t diskTimes
	begin := time.Now()
	info, err := w.info(ctx, src, d.SourceFormat)
	if err != nil {
		return t, inStage("convert", err)
	}
	if info.VirtualSize > w.cfg.MaxVirtualSize {
		return t, inStage("convert", diskTooLarge(info.VirtualSize, w.cfg.MaxVirtualSize))
	}
	if err := w.checkReferences(info, src); err != nil {
		return t, inStage("convert", err)
	}
	stopSyncing := syncWhileWriting(tmp, syncInterval)
	err = w.convert(ctx, d.SourceFormat, src, tmp, target)
	if serr := stopSyncing(); err == nil && serr != nil {
		err = serr
	}
	if err != nil {
		w.log.Debug("qemu-img convert stopped", "disk", d.ID, "seconds", time.Since(begin).Seconds(), "error", err)
		return t, inStage("convert", err)
	}
	t.convert = time.Since(begin).Seconds()
	w.log.Debug("qemu-img convert done", "disk", d.ID, "seconds", t.convert)

	begin = time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := fsyncFile(tmp)
		w.log.Debug("output fsynced", "disk", d.ID, "seconds", time.Since(begin).Seconds())
		return err
	})
	g.Go(func() error {
		err := w.checkImage(gctx, src, d.SourceFormat, tmp, format)
		w.log.Debug("output checked", "disk", d.ID, "seconds", time.Since(begin).Seconds())
		return err
	})
	err = g.Wait()
	t.check = time.Since(begin).Seconds()
	return t, inStage("validate", err)
}

// targetArgs are qemu-img convert's output options for a job, and whether
// the output is compressed.
func targetArgs(m *protocol.Manifest, rep *report) ([]string, bool) {
	format := m.Output.Format
	args := []string{"-O", qemuFormat(format)}
	c := m.Pipeline.Convert
	if !c.Compress {
		return args, false
	}
	if format != "qcow2" {
		rep.warn("convert", fmt.Sprintf("compression applies to qcow2 only: %s output written uncompressed", format))
		return args, false
	}
	if c.CompressLevel != 0 {
		rep.warn("convert", fmt.Sprintf("compress_level %d not applied: qemu-img has no compression level (zlib at its default level)", c.CompressLevel))
	}
	return append(args, "-c", "-o", "compression_type=zlib"), true
}

// checkImage verifies a converted image: qemu-img check where the format
// has checks, and for raw (which has none) a full compare with the input.
func (w *Worker) checkImage(ctx context.Context, src, srcFormat, out, format string) error {
	if format == "raw" {
		_, err := w.qemuImg(ctx, "compare", "-q", "-f", qemuFormat(srcFormat), "-F", "raw", src, out)
		return err
	}
	_, err := w.qemuImg(ctx, "check", "-q", "-f", qemuFormat(format), out)
	return err
}

// verifyInput checks the input's size and sha256 against the manifest; a
// disk without a checksum has its size checked only.
func (w *Worker) verifyInput(ctx context.Context, path string, d protocol.Disk) error {
	if d.Checksum == "" {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if fi.Size() != d.Bytes {
			return fmt.Errorf("input %s is %d bytes, the manifest says %d", path, fi.Size(), d.Bytes)
		}
		return nil
	}
	f, err := w.openInput(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, ctxReader{ctx, f}, make([]byte, 1<<20))
	if err != nil {
		return fmt.Errorf("hash %s: %w", path, err)
	}
	if n != d.Bytes {
		return fmt.Errorf("input %s is %d bytes, the manifest says %d", path, n, d.Bytes)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != d.Checksum {
		return fmt.Errorf("input %s checksum mismatch: file has %s, the manifest says %s", path, got, d.Checksum)
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}

func fsyncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (w *Worker) trace(event, id string) {
	if w.cfg.Trace != nil {
		w.cfg.Trace(event, id)
	}
}
