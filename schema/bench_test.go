package schema

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkLoad loads a repo of one migration block whose for_each expands
// to n VMs, as a large campaign wave would be written.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{10, 500, 5000} {
		b.Run(fmt.Sprintf("vms=%d", n), func(b *testing.B) {
			var vms strings.Builder
			for i := range n {
				fmt.Fprintf(&vms, "    \"vm-%05d\" = { memory = \"%dGiB\", cpus = %d }\n", i, 1+i%8, 1+i%4)
			}
			dir := writeRepoB(b, map[string]string{"main.hcl": basePlugins + `
variable "vms" {
  type = map(object({ memory = string, cpus = number }))
  default = {
` + vms.String() + `  }
}
migration "wave" {
  for_each  = var.vms
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = "/DC1/vm/${each.key}"
  export { dir = "/srv/exports/${each.key}" }
  domain {
    memory = each.value.memory
    vcpus  = each.value.cpus
  }
}
`})
			b.ResetTimer()
			for range b.N {
				cfg, _, diags := Load(LoadOptions{Dir: dir, Plugins: testPlugins})
				if diags.HasErrors() || len(cfg.Migrations) != n {
					b.Fatalf("%d migrations, diagnostics: %s", len(cfg.Migrations), diagText(diags))
				}
			}
		})
	}
}

func writeRepoB(b *testing.B, files map[string]string) string {
	b.Helper()
	dir := b.TempDir()
	for name, src := range files {
		if err := writeFile(dir, name, src); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// BenchmarkLocals loads n locals, each but the first referring to the one
// before it. The cost must grow linearly with n.
func BenchmarkLocals(b *testing.B) {
	for _, n := range []int{10000, 40000} {
		b.Run(fmt.Sprintf("locals=%d", n), func(b *testing.B) {
			var src strings.Builder
			src.WriteString("locals {\n  l00000 = 0\n")
			for i := 1; i < n; i++ {
				fmt.Fprintf(&src, "  l%05d = local.l%05d + 1\n", i, i-1)
			}
			src.WriteString("}\n")
			dir := writeRepoB(b, map[string]string{"main.hcl": basePlugins + src.String()})
			b.ResetTimer()
			defer reportCPU(b)()
			for range b.N {
				if _, _, diags := Load(LoadOptions{Dir: dir, Plugins: testPlugins}); diags.HasErrors() {
					b.Fatal(diagText(diags))
				}
			}
		})
	}
}

// BenchmarkForEach loads one migration block whose for_each is a literal
// set (toset of a list) or map of n VM names, as a generated wave file
// would be written. The cost must grow about linearly with n.
func BenchmarkForEach(b *testing.B) {
	for _, form := range []string{"set", "map"} {
		for _, n := range []int{10000, 100000} {
			b.Run(fmt.Sprintf("%s=%d", form, n), func(b *testing.B) {
				var elems strings.Builder
				for i := range n {
					if form == "set" {
						fmt.Fprintf(&elems, "    \"vm-%06d\",\n", i)
					} else {
						fmt.Fprintf(&elems, "    \"vm-%06d\" = \"/DC1/vm/vm-%06d\"\n", i, i)
					}
				}
				forEach := "toset([\n" + elems.String() + "  ])"
				if form == "map" {
					forEach = "{\n" + elems.String() + "  }"
				}
				dir := writeRepoB(b, map[string]string{"main.hcl": basePlugins + `
migration "wave" {
  for_each  = ` + forEach + `
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = "/DC1/vm/${each.key}"
  export { dir = "/srv/exports/${each.key}" }
}
`})
				b.ResetTimer()
				defer reportCPU(b)()
				for range b.N {
					cfg, _, diags := Load(LoadOptions{Dir: dir, Plugins: testPlugins})
					if diags.HasErrors() || len(cfg.Migrations) != n {
						b.Fatalf("diagnostics: %s", diagText(diags))
					}
				}
			})
		}
	}
}

// reportCPU adds the CPU time the process used (user and system, GC
// included) per operation to the benchmark's results: on a machine shared
// with other work, wall time says more about the neighbours than about
// the code. Call it as defer reportCPU(b)() right before the loop.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-start).Milliseconds())/float64(b.N), "cpu-ms/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
