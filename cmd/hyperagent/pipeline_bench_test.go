package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

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
// the sum of the stages (1.0 would be no overlap at all).
//
//	go test -run '^$' -bench Pipeline -benchtime 1x ./cmd/hyperagent
//
// HYPERAGENT_BENCH_DISK_MIB sizes each VM's disk (default 64).
func BenchmarkPipeline(b *testing.B) {
	diskMiB := 64
	if v, err := strconv.Atoi(os.Getenv("HYPERAGENT_BENCH_DISK_MIB")); err == nil && v > 0 {
		diskMiB = v
	}
	for _, n := range []int{8, 16} {
		for _, compress := range []bool{false, true} {
			name := fmt.Sprintf("vms=%d/disk=%dMiB/compress=%v", n, diskMiB, compress)
			b.Run(name, func(b *testing.B) {
				for range b.N {
					benchPipelineOnce(b, n, diskMiB, compress)
				}
			})
		}
	}
}

func benchPipelineOnce(b *testing.B, n, diskMiB int, compress bool) {
	ctx := context.Background()
	lv, err := holdTestDriver(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer lv.Disconnect()
	apply := pipelineWorld(b, n, diskMiB, compress)
	start := time.Now()
	e := &env{stdin: os.Stdin, stdout: discard{}, stderr: discard{}, log: hclog.NewNullLogger(), registry: builtinRegistry(),
		environ: []string{"HYPERAGENT_VAR_vcenter_password=" + apply.password}}
	if code := run(ctx, []string{"apply", "-auto-approve", apply.dir}, e); code != exitOK {
		b.Fatalf("apply exited %d", code)
	}
	whole := time.Since(start)

	stages := pipelineWorld(b, n, diskMiB, compress)
	w := stages.open(b)
	defer w.Close()
	var took [3]time.Duration
	for i, keep := range [][]reconcile.StepKind{{reconcile.StepExport}, {reconcile.StepSubmit, reconcile.StepAwait}, {reconcile.StepDefine}} {
		start := time.Now()
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
		took[i] = time.Since(start)
	}
	sum, longest := took[0]+took[1]+took[2], max(took[0], took[1], took[2])
	b.ReportMetric(whole.Seconds(), "apply-s")
	b.ReportMetric(took[0].Seconds(), "export-s")
	b.ReportMetric(took[1].Seconds(), "convert-s")
	b.ReportMetric(took[2].Seconds(), "define-s")
	b.ReportMetric(whole.Seconds()/longest.Seconds(), "apply/longest")
	b.ReportMetric(whole.Seconds()/sum.Seconds(), "apply/sum")
}

// world is one simulator, worker and repo of n VMs.
type world struct {
	dir, password string
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

func pipelineWorld(b *testing.B, n, diskMiB int, compress bool) world {
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
	stop, err := startDevWorker(ctx, &env{log: hclog.NewNullLogger()}, l)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stop() })
	return world{dir: dir, password: srv.Password}
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
