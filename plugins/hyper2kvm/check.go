package hyper2kvm

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
	"github.com/hypersdk/hyperagent/schema"
)

var _ plugins.JobChecker = (*Converter)(nil)

// CheckJobs says at plan time whether each job could run, considering only
// the consumers live now (consumers.go): with none, every job gets an error
// finding naming what was seen. Otherwise a job gets an error when no live
// consumer can run a stage it asks for, when its export directory is
// outside every live worker's input roots, or when output_dir is outside
// every live worker's output roots — and a warning when only some live
// workers could not take it (whichever claims it first does). A live
// hyper2kvm unit runs every stage; its roots are unknown, so with it live
// the roots of the workers only warn.
func (c *Converter) CheckJobs(ctx context.Context, req plugins.CheckJobsRequest) (plugins.CheckJobsResponse, error) {
	cs := c.consumers(ctx)
	if err := ctx.Err(); err != nil {
		return plugins.CheckJobsResponse{}, err
	}
	resp := plugins.CheckJobsResponse{Consumer: cs.status(), Findings: map[string][]plugins.Finding{}}
	// The output_dir is every job's: checked once.
	outputs := cs.rootFindings(root{what: "the converter's output_dir", path: c.cfg.OutputDir, kind: "output",
		roots: func(h *protocol.Heartbeat) []string { return h.OutputRoots }, elsewhere: "set output_dir under one of them"})
	for _, j := range req.Jobs {
		if f := c.checkJob(cs, resp.Consumer, j, outputs); len(f) > 0 {
			resp.Findings[j.Address] = f
		}
	}
	return resp, nil
}

// outputs are the findings about the converter's output_dir.
func (c *Converter) checkJob(cs *consumers, st plugins.ConsumerStatus, j plugins.JobCheck, outputs []plugins.Finding) []plugins.Finding {
	if !st.Live {
		return []plugins.Finding{{Severity: plugins.SeverityError,
			Summary: fmt.Sprintf("no live consumer serves %s: %s", c.cfg.WorkflowDir, st.Detail),
			Detail: fmt.Sprintf("start `hyperagent worker -workflow-dir=%s …` (systemctl start hyperagent-worker) or the hyper2kvm daemon on it, then plan again; "+
				"a job queued now waits until a consumer takes it", c.cfg.WorkflowDir)}}
	}
	var out []plugins.Finding
	for _, s := range stagesOf(j.Options) {
		out = append(out, cs.stageFindings(s, c.cfg.WorkflowDir)...)
	}
	if j.Options.Compress {
		out = append(out, cs.codecFindings()...)
	}
	if j.ExportDir != "" {
		out = append(out, cs.rootFindings(root{what: "the export directory", path: j.ExportDir, kind: "input",
			roots: func(h *protocol.Heartbeat) []string { return h.InputRoots }, elsewhere: "set export.dir under one of them"})...)
	}
	return append(out, outputs...)
}

// stage is a pipeline stage a job asks for, with the capability a worker
// lists for it and how the user turns it off.
type stage struct {
	name, off string
	guest     bool // needs libguestfs
}

func stagesOf(o schema.ConvertSettings) []stage {
	out := []stage{{name: protocol.CapConvert}}
	if o.Validate {
		out = append(out, stage{name: protocol.CapValidate, off: "set validate = false in the convert block"})
	}
	if o.Inspect {
		out = append(out, stage{name: protocol.CapInspect, off: "set inspect = false in the convert block", guest: true})
	}
	if o.Fix.Enabled {
		out = append(out, stage{name: protocol.CapFix, off: "remove the fix block", guest: true})
	}
	return out
}

func (cs *consumers) stageFindings(s stage, wf string) []plugins.Finding {
	cannot := cs.without(func(h *protocol.Heartbeat) bool { return h.Can(s.name) })
	if len(cannot) == 0 {
		return nil
	}
	why := "it does not list " + s.name + " among its capabilities"
	if s.guest {
		why = "no libguestfs"
	}
	if cs.unitLive || len(cannot) < len(cs.live) {
		return []plugins.Finding{{Severity: plugins.SeverityWarning,
			Summary: fmt.Sprintf("%s cannot run %s (%s)", names(cannot), s.name, why),
			Detail:  "if it claims this job before another consumer does, the job fails; " + s.off + ", or stop that worker"}}
	}
	summary := fmt.Sprintf("no live consumer of %s can run %s (%s: %s)", wf, s.name, names(cannot), why)
	if s.guest {
		summary = fmt.Sprintf("the built-in worker cannot run %s (no libguestfs)", s.name)
	}
	return []plugins.Finding{{Severity: plugins.SeverityError, Summary: summary,
		Detail: s.off + ", or use the hyper2kvm daemon on " + wf + " (and name its unit in the converter block)"}}
}

// root is a place a job needs a worker to read (inputs) or write (outputs).
type root struct {
	what, path, kind, elsewhere string
	roots                       func(*protocol.Heartbeat) []string
}

func (cs *consumers) rootFindings(r root) []plugins.Finding {
	path := resolveLoose(r.path)
	outside := cs.without(func(h *protocol.Heartbeat) bool {
		for _, root := range r.roots(h) {
			if protocol.Within(path, root) {
				return true
			}
		}
		return false
	})
	if len(outside) == 0 {
		return nil
	}
	var theirs []string
	for _, h := range outside {
		theirs = append(theirs, fmt.Sprintf("%s has %s", workerName(h), strings.Join(r.roots(h), ", ")))
	}
	fix := fmt.Sprintf("add -%s-root=%s (or a parent) to the worker, or %s (%s)", r.kind, path, r.elsewhere, strings.Join(theirs, "; "))
	if cs.unitLive || len(outside) < len(cs.live) {
		return []plugins.Finding{{Severity: plugins.SeverityWarning,
			Summary: fmt.Sprintf("%s %s is outside the %s roots of %s", r.what, path, r.kind, names(outside)),
			Detail:  "if that worker claims this job, the job fails: " + fix}}
	}
	return []plugins.Finding{{Severity: plugins.SeverityError,
		Summary: fmt.Sprintf("%s %s is outside every live worker's %s roots", r.what, path, r.kind),
		Detail:  fix}}
}

// resolveLoose resolves p as the worker resolves an output directory
// (fsutil.ResolveExisting); p as written when that fails. The export
// directory may not exist yet at plan time.
func resolveLoose(p string) string {
	if r, err := fsutil.ResolveExisting(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}

// codecFindings warns, for a job that asks for compressed output, about
// the live workers that compress with zlib because their qemu-img cannot
// write zstd (their heartbeat says which codec they probed): compression
// costs several times as much there. A hyper2kvm unit's codec is not
// known, and a worker that has not probed yet lists neither.
func (cs *consumers) codecFindings() []plugins.Finding {
	zlib := cs.without(func(h *protocol.Heartbeat) bool { return !h.Can(protocol.CapCompressZlib) })
	if len(zlib) == 0 {
		return nil
	}
	return []plugins.Finding{{Severity: plugins.SeverityWarning,
		Summary: fmt.Sprintf("%s compresses with zlib: its qemu-img cannot write zstd", names(zlib)),
		Detail: "a compressed conversion there takes several times as long as with zstd (bench/worker/convert.sh); " +
			"install a qemu-img of QEMU 5.1 or later on that host and restart the worker, or set compress = false in the convert block"}}
}
