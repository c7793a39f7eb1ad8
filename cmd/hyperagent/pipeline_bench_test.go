package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins/worker"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pass"
	"github.com/hypersdk/hyperagent/schema"
)

// BenchmarkPipeline runs N VMs through a whole apply against govmomi's
// simulator, hyperagent's worker (qemu-img) and libvirt's test driver,
// with the default limits and no depends_on, and beside it, on another
// simulator with the same VMs, each stage run alone over all N: every
// export, then every conversion, then every definition. It reports the
// apply's time over the longest stage's (goal: at most 1.15) and over
// the sum of the stages (1.0 would be no overlap at all), the CPU time
// each used (this process and its qemu-img children), and from the
// apply's timeline: planning time, time with no export running before
// the last export ended, time to the first conversion, time with no
// conversion running once they started, the longest a job waited in the
// queue, the longest from a sidecar landing to the apply noticing it, and
// the time after the last conversion.
//
//	go test -run '^$' -bench Pipeline -benchtime 1x ./cmd/hyperagent
//	bench/pipeline/pipeline.sh   # several rounds, medians
//
// HYPERAGENT_BENCH_VMS lists the N to run (default "8,16"),
// HYPERAGENT_BENCH_DISK_MIB sizes each VM's disk (default 64),
// HYPERAGENT_BENCH_COMPRESS lists the convert.compress values (default
// "false,true"); with HYPERAGENT_BENCH_TIMELINE=DIR each apply's timeline
// is drawn into DIR.
func BenchmarkPipeline(b *testing.B) {
	diskMiB := 64
	if v, err := strconv.Atoi(os.Getenv("HYPERAGENT_BENCH_DISK_MIB")); err == nil && v > 0 {
		diskMiB = v
	}
	for _, n := range benchList(b, "HYPERAGENT_BENCH_VMS", "8,16", strconv.Atoi) {
		for _, compress := range benchList(b, "HYPERAGENT_BENCH_COMPRESS", "false,true", strconv.ParseBool) {
			name := fmt.Sprintf("vms=%d/disk=%dMiB/compress=%v", n, diskMiB, compress)
			b.Run(name, func(b *testing.B) {
				for range b.N {
					benchPipelineOnce(b, n, diskMiB, compress)
				}
			})
		}
	}
}

func benchList[T any](b *testing.B, env, def string, parse func(string) (T, error)) []T {
	v := os.Getenv(env)
	if v == "" {
		v = def
	}
	var out []T
	for _, f := range strings.Split(v, ",") {
		x, err := parse(strings.TrimSpace(f))
		if err != nil {
			b.Fatalf("%s=%q: %v", env, v, err)
		}
		out = append(out, x)
	}
	return out
}

func benchPipelineOnce(b *testing.B, n, diskMiB int, compress bool) {
	ctx := context.Background()
	lv, err := holdTestDriver(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer lv.Disconnect()
	tl := newTimeline()
	apply := pipelineWorld(b, n, diskMiB, compress, tl.trace)
	stopLandings, err := tl.watchLandings(apply.workflow)
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime(b)
	tl.t0 = time.Now()
	e := &env{stdin: os.Stdin, stdout: tl, stderr: discard{}, log: hclog.NewNullLogger(), registry: builtinRegistry(),
		environ: []string{"HYPERAGENT_VAR_vcenter_password=" + apply.password}}
	if code := run(ctx, []string{"apply", "-auto-approve", "-json", apply.dir}, e); code != exitOK {
		b.Fatalf("apply exited %d", code)
	}
	whole := time.Since(tl.t0)
	applyCPU := cpuTime(b) - cpu0
	if err := stopLandings(); err != nil {
		b.Fatal(err)
	}
	jobOf := apply.jobOf(b)
	f := tl.figures(whole, jobOf)
	if dir := os.Getenv("HYPERAGENT_BENCH_TIMELINE"); dir != "" {
		var chart strings.Builder
		tl.chart(&chart, whole, 120, jobOf)
		name := filepath.Join(dir, fmt.Sprintf("pipeline-vms%d-compress%v-%s.txt", n, compress, time.Now().Format("150405.000")))
		if err := os.WriteFile(name, []byte(chart.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}

	stages := pipelineWorld(b, n, diskMiB, compress, nil)
	w := stages.open(b)
	defer w.Close()
	var took, cpu [3]time.Duration
	for i, keep := range [][]reconcile.StepKind{{reconcile.StepExport}, {reconcile.StepSubmit, reconcile.StepAwait}, {reconcile.StepDefine}} {
		start, cpu0 := time.Now(), cpuTime(b)
		res, err := w.Run(ctx, pass.Request{Mode: pass.ModeApply, Operation: "bench", Plan: reconcile.PlanRequest{Refresh: true},
			Approve: func(_ context.Context, p *reconcile.Plan) (bool, error) {
				for c := range p.Changes {
					var steps []reconcile.Step
					for _, s := range p.Changes[c].Steps {
						for _, k := range keep {
							if s.Kind == k {
								steps = append(steps, s)
							}
						}
					}
					p.Changes[c].Steps = steps
				}
				return true, nil
			}})
		if err != nil || res.Applied == nil || !res.Applied.OK() {
			b.Fatalf("stage %v: %v %+v", keep, err, res.Applied)
		}
		took[i], cpu[i] = time.Since(start), cpuTime(b)-cpu0
	}
	sum, longest := took[0]+took[1]+took[2], max(took[0], took[1], took[2])
	b.ReportMetric(whole.Seconds(), "apply-s")
	b.ReportMetric(took[0].Seconds(), "export-s")
	b.ReportMetric(took[1].Seconds(), "convert-s")
	b.ReportMetric(took[2].Seconds(), "define-s")
	b.ReportMetric(whole.Seconds()/longest.Seconds(), "apply/longest")
	b.ReportMetric(whole.Seconds()/sum.Seconds(), "apply/sum")
	b.ReportMetric(applyCPU.Seconds(), "apply-cpu-s")
	b.ReportMetric((cpu[0] + cpu[1] + cpu[2]).Seconds(), "stages-cpu-s")
	b.ReportMetric(cpu[0].Seconds(), "export-cpu-s")
	b.ReportMetric(cpu[1].Seconds(), "convert-cpu-s")
	b.ReportMetric(f.firstStep.Seconds(), "plan-s")
	b.ReportMetric(f.exportIdle.Seconds(), "export-idle-s")
	b.ReportMetric(f.firstConvert.Seconds(), "first-convert-s")
	b.ReportMetric(f.convertIdle.Seconds(), "convert-idle-s")
	b.ReportMetric(f.queued.Seconds(), "queued-max-s")
	b.ReportMetric(float64(f.noticeMax.Milliseconds()), "notice-max-ms")
	b.ReportMetric(f.afterConvert.Seconds(), "tail-s")
}

// cpuTime is the user and system time of this process and of its
// children that have ended (qemu-img).
func cpuTime(b *testing.B) time.Duration {
	var total time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err != nil {
			b.Fatal(err)
		}
		total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return total
}

// world is one simulator, worker and repo of n VMs.
type world struct {
	dir, password, workflow string
	addrs                   []string
}

// jobOf maps the first job id of each migration to its address; the ids
// are bound to the campaign, which the apply's state names.
func (w world) jobOf(b *testing.B) func(string) string {
	raw, err := os.ReadFile(filepath.Join(w.dir, schema.DefaultStateDir, "state.json"))
	if err != nil {
		b.Fatal(err)
	}
	var st struct {
		Lineage string `json:"lineage"`
	}
	if err := json.Unmarshal(raw, &st); err != nil || st.Lineage == "" {
		b.Fatalf("state lineage: %v", err)
	}
	ids := map[string]string{}
	for _, a := range w.addrs {
		ids[reconcile.JobID(st.Lineage, a, 1)] = a
	}
	return func(id string) string { return ids[id] }
}

func (w world) open(b *testing.B) *pass.Workspace {
	reg := builtinRegistry()
	cfg, _, diags := schema.Load(schema.LoadOptions{Dir: w.dir, Plugins: reg.Schemas(),
		Env: []string{"HYPERAGENT_VAR_vcenter_password=" + w.password}})
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	ws, err := pass.Open(context.Background(), pass.OpenRequest{Config: cfg, Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	return ws
}

func pipelineWorld(b *testing.B, n, diskMiB int, compress bool, trace func(event, jobID string)) world {
	ctx := context.Background()
	dir := b.TempDir()
	l := newDevLayout(dir)
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("vm-%02d", i))
	}
	srv, _, err := startDevSim(ctx, names, diskMiB, l.Seeds)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	for _, d := range []string{l.Exports, l.Workflow, l.Output, l.Images, filepath.Join(l.Data, "nvram")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	suffix, _ := randomHex(3)
	hcl := fmt.Sprintf(`
variable "vcenter_password" {
  sensitive = true
}
source "vsphere" "sim" {
  url        = %q
  username   = %q
  password   = var.vcenter_password
  thumbprint = %q
  datacenter = "DC0"
}
converter "hyper2kvm" "worker" {
  workflow_dir = %q
  output_dir   = %q
}
target "libvirt" "kvm" {
  uri         = "test:///default"
  storage_dir = %q
  nvram_dir   = "%s/nvram"
  network_map = { "VM Network" = "default", "DC0_DVPG0" = "default" }
}
migration "vm" {
  for_each  = toset([%s])
  source    = source.vsphere.sim
  converter = converter.hyper2kvm.worker
  target    = target.libvirt.kvm
  vm        = "/DC0/vm/${each.key}"
  export {
    dir       = %q
    power_off = true
  }
  convert {
    compress = %v
    fix { enabled = false }
  }
  domain {
    name   = "bench-%s-${each.key}"
    memory = "256MiB"
    vcpus  = 1
  }
}
`, srv.URL.String(), srv.Username, srv.Thumbprint, l.Workflow, l.Output, l.Images, l.Data, quoteAll(names), l.Exports, compress, suffix)
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o644); err != nil {
		b.Fatal(err)
	}
	stop, err := startDevWorker(ctx, &env{log: hclog.NewNullLogger()}, l, func(c *worker.Config) { c.Trace = trace })
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stop() })
	w := world{dir: dir, password: srv.Password, workflow: l.Workflow}
	for _, name := range names {
		w.addrs = append(w.addrs, fmt.Sprintf("migration.vm[%q]", name))
	}
	return w
}

func quoteAll(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		out += strconv.Quote(s)
	}
	return out
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
