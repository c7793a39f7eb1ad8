package worker

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// The roots keep a manifest from making the worker read /etc/shadow into a
// world-readable image or write over a system file. Paths are compared
// after resolving symlinks, so neither a link nor ".." leads out.

func resolveRoots(roots []string) ([]string, error) {
	out := make([]string, 0, len(roots))
	for _, r := range roots {
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, err
		}
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return nil, err
		}
		out = append(out, real)
	}
	return out, nil
}

func under(path string, roots []string) bool {
	for _, r := range roots {
		if protocol.Within(path, r) {
			return true
		}
	}
	return false
}

// inputPath resolves a manifest's local_path and checks it is a regular
// file under an input root. The resolved path is what gets read.
func (w *Worker) inputPath(p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("input %q is not absolute", p)
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("input %q: %w", p, err)
	}
	if !under(real, w.inRoots) {
		return "", fmt.Errorf("input %q resolves to %q, outside every -input-root (%s)", p, real, strings.Join(w.inRoots, ", "))
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("input %q: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("input %q is not a regular file", p)
	}
	return real, nil
}

// outputDir checks that dir, once created, resolves under an output root,
// creates it, and returns its resolved path.
func (w *Worker) outputDir(dir string) (string, error) {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return "", fmt.Errorf("output directory %q is not a clean absolute path", dir)
	}
	// Resolve the deepest part that exists; the rest will be created as
	// plain directories, which cannot lead anywhere else.
	want, err := fsutil.ResolveExisting(dir)
	if err != nil {
		return "", fmt.Errorf("output directory %q: %w", dir, err)
	}
	if !under(want, w.outRoots) {
		return "", fmt.Errorf("output directory %q resolves to %q, outside every -output-root (%s)", dir, want, strings.Join(w.outRoots, ", "))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("output directory: %w", err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("output directory %q: %w", dir, err)
	}
	if !under(real, w.outRoots) {
		return "", fmt.Errorf("output directory %q resolves to %q, outside every -output-root", dir, real)
	}
	return real, nil
}

// removeStaleTemps removes the temp files that earlier claims of this job
// left for the output file base (.<base>.<token>.part, or .<base>.part from
// older workers), once they have not changed for a whole Lease: their
// owner died, or lost the job, which it notices within Lease/8 and then
// stops. Only the holder of the job's lease removes anything.
func (w *Worker) removeStaleTemps(c *claim, dir, base string) {
	if c.lease.held() != nil {
		return
	}
	old, _ := filepath.Glob(filepath.Join(dir, "."+base+".*.part"))
	old = append(old, filepath.Join(dir, "."+base+".part"))
	for _, p := range old {
		if strings.HasSuffix(p, "."+c.lease.token+".part") {
			continue
		}
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > w.cfg.Lease {
			os.Remove(p)
		}
	}
}
