package schema

import (
	"testing"
)

// Each local is evaluated with just the locals it names, so a reference
// by index (local["x"]) must order the evaluation like local.x does.
func TestLocalsReferredToByIndex(t *testing.T) {
	dir := writeRepo(t, map[string]string{"main.hcl": basePlugins + `
locals {
  a = local["z"] + 1
  b = local.a + local["a"]
  z = 1
}
migration "m" {
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = "/DC1/vm/${local.b}"
  export { dir = "/exp" }
}
`})
	cfg := mustLoad(t, LoadOptions{Dir: dir})
	if vm := cfg.Migrations[0].VM; vm != "/DC1/vm/4" {
		t.Errorf("vm = %q, want /DC1/vm/4", vm)
	}
}

// A local that uses the object of all locals would see only some of them:
// it is refused, at the reference.
func TestLocalsWholeObjectRefused(t *testing.T) {
	for _, expr := range []string{"local", `local[var.k]`, `keys(local)`} {
		t.Run(expr, func(t *testing.T) {
			dir := writeRepo(t, map[string]string{"main.hcl": `
variable "k" {
  default = "a"
}
locals {
  a = 1
  all = ` + expr + `
}
`})
			_, diags := loadWithin(t, LoadOptions{Dir: dir})
			if len(diags) != 1 || diags[0].Summary != "Invalid reference to local values" || diags[0].Subject == nil || diags[0].Subject.Start.Line != 7 {
				t.Fatalf("diagnostics:\n%s", diagText(diags))
			}
		})
	}
}
