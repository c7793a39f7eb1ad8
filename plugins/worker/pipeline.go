package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
	target, compressed := w.targetArgs(ctx, m, rep)
	w.trace("start", c.id)
	defer w.trace("end", c.id)
	prog := w.startProgress(c, disks)
	defer prog.end()
	var convertSecs, checkSecs float64
	how := map[verification]int{}
	for _, d := range disks {
		if d.Checksum == "" {
			rep.warn("convert", fmt.Sprintf("disk %s: no checksum in the manifest: the input was not verified", d.ID))
			w.log.Warn("no checksum in the manifest: the input was not verified", "job", c.id, "disk", d.ID)
		}
		prog.disk(d)
		art, t, err := w.convertDisk(ctx, c, d, m, outDir, target, compressed, rep, prog.converted)
		if err != nil {
			return nil, err
		}
		convertSecs += t.convert
		checkSecs += t.check
		how[t.how]++
		rep.Artifacts = append(rep.Artifacts, art)
	}
	result := convertResult(len(disks), m.Output.Format, target, how)
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

// diskResult is what converting one disk took, and how its input was
// verified.
type diskResult struct {
	convert, check float64
	how            verification
}

// convertResult is the convert stage's result line in the report.
func convertResult(n int, format string, target []string, how map[verification]int) string {
	r := fmt.Sprintf("%d disk(s) converted to %s with qemu-img %s", n, format, strings.Join(target, " "))
	if checked := how[hashed] + how[byIdentity]; checked < n {
		r += fmt.Sprintf(", input sha256 verified for %d of %d disk(s) (the others have no checksum in the manifest)", checked, n)
	} else {
		r += ", input sha256 verified"
	}
	if k := how[byIdentity]; k > 0 {
		r += fmt.Sprintf("; for %d disk(s) the sha256 is the one the export computed while writing the file, which is unchanged since (same device, inode, size, mtime and ctime), so it was not read again", k)
	}
	return r
}

// convertDisk converts one disk to a temp name beside its final name,
// fsyncs and checks the result, and only then renames it into place.
//
// The temp name carries the claim's token: a worker that lost the job to
// another (lease.go) removes only its own temp file, never the new
// holder's, and the holder removes those of earlier claims only once they
// have not changed for a whole Lease.
//
// Where the input must be hashed (input.go), a second reader does it beside
// all of that (the page cache serves both readers): it is the longest
// CPU-bound part, and the fsync that follows the conversion is mostly
// waiting on the disk, so the hash must not be a stage of its own. A
// mismatch found at any point cancels the conversion or the check and
// removes the temp file. Whichever way the input was verified, it must
// still be the file it was before the conversion. So the final name is only
// ever the target of a rename made after the input was verified, the check
// passed, the data was durable and the lease was found still held.
func (w *Worker) convertDisk(ctx context.Context, c *claim, d protocol.Disk, m *protocol.Manifest, outDir string,
	target []string, compressed bool, rep *report, progress func(share float64)) (protocol.Artifact, diskResult, error) {
	var t diskResult
	fail := func(err error) (protocol.Artifact, diskResult, error) {
		var se *stageError
		if errors.As(err, &se) {
			return protocol.Artifact{}, t, inStage(se.stage, fmt.Errorf("disk %s: %w", d.ID, se.err))
		}
		return protocol.Artifact{}, t, inStage("convert", fmt.Errorf("disk %s: %w", d.ID, err))
	}
	src, err := w.inputPath(d.LocalPath)
	if err != nil {
		return fail(err)
	}
	in, err := w.planInput(m, d, src, rep)
	if err != nil {
		return fail(err)
	}
	t.how = in.how
	format := m.Output.Format
	final := filepath.Join(outDir, d.ID+"."+format)
	tmp := filepath.Join(outDir, "."+d.ID+"."+format+"."+c.lease.token+".part")
	w.removeStaleTemps(c, outDir, d.ID+"."+format)

	begin := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	if in.how == hashed {
		g.Go(func() error {
			err := w.verifyInput(gctx, src, d)
			w.log.Debug("input hashed", "disk", d.ID, "seconds", time.Since(begin).Seconds(), "error", err)
			return inStage("convert", err)
		})
	}
	g.Go(func() (err error) {
		t.convert, t.check, err = w.produce(gctx, d, src, tmp, format, target, progress)
		return err
	})
	err = g.Wait()
	if err == nil {
		err = in.unchanged()
	}
	if err == nil {
		err = c.lease.held()
	}
	if err != nil {
		os.Remove(tmp)
		return fail(err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp)
		return fail(err)
	}
	if err := fsutil.SyncDir(outDir); err != nil {
		return fail(err)
	}
	fi, err := os.Stat(final)
	if err != nil {
		return fail(err)
	}
	return protocol.Artifact{Type: "converted_disk", Path: final, DiskID: d.ID, Format: format,
		SizeBytes: fi.Size(), BootOrderHint: d.BootOrderHint, Compressed: compressed}, t, nil
}

// produce writes the converted image under tmp: it vets the input's
// references (before qemu-img convert may read them), converts, then fsyncs
// and checks the result side by side. It returns how long the conversion
// and the check took; errors name their stage. The conversion's share done
// goes to progress.
func (w *Worker) produce(ctx context.Context, d protocol.Disk, src, tmp, format string, target []string,
	progress func(share float64)) (convertSecs, checkSecs float64, err error) {
	begin := time.Now()
	info, err := w.info(ctx, src, d.SourceFormat)
	if err != nil {
		return 0, 0, inStage("convert", err)
	}
	if info.VirtualSize > w.cfg.MaxVirtualSize {
		return 0, 0, inStage("convert", diskTooLarge(info.VirtualSize, w.cfg.MaxVirtualSize))
	}
	if err := w.checkReferences(info, src); err != nil {
		return 0, 0, inStage("convert", err)
	}
	stopWriteback := writebackWhileWriting(tmp, writebackInterval)
	err = w.convert(ctx, d.SourceFormat, src, tmp, target, progress)
	if werr := stopWriteback(); err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		w.log.Debug("qemu-img convert stopped", "disk", d.ID, "seconds", time.Since(begin).Seconds(), "error", err)
		return 0, 0, inStage("convert", err)
	}
	convertSecs = time.Since(begin).Seconds()
	w.log.Debug("qemu-img convert done", "disk", d.ID, "seconds", convertSecs)

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
	return convertSecs, time.Since(begin).Seconds(), inStage("validate", err)
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
