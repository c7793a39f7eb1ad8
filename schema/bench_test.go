package schema

import (
	"fmt"
	"strings"
	"testing"
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
