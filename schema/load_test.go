package schema

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/schema/addrs"
)

// testPlugins stands in for the plugin registry (schema must not import
// plugins): one source with a sensitive attribute and nested blocks, one
// converter, one target.
var testPlugins = PluginSchemas{
	addrs.KindSource: {
		"vsphere": {
			Attributes: []AttributeSchema{
				{Name: "url", Type: cty.String, Required: true},
				{Name: "username", Type: cty.String},
				{Name: "password", Type: cty.String, Sensitive: true},
				{Name: "insecure", Type: cty.Bool, Default: cty.False},
				{Name: "max_parallel_exports", Type: cty.Number, Default: cty.NumberIntVal(4)},
				{Name: "tags", Type: cty.Map(cty.String)},
			},
			Blocks: []NestedBlockSchema{
				{Name: "tls", Nesting: NestingSingle, Block: BlockSchema{Attributes: []AttributeSchema{
					{Name: "ca_file", Type: cty.String},
					{Name: "key", Type: cty.String, Sensitive: true},
				}}},
				{Name: "datastore", Nesting: NestingList, Block: BlockSchema{Attributes: []AttributeSchema{
					{Name: "name", Type: cty.String, Required: true},
					{Name: "weight", Type: cty.Number, Default: cty.NumberIntVal(1)},
				}}},
			},
		},
	},
	addrs.KindConverter: {
		"hyper2kvm": {Attributes: []AttributeSchema{
			{Name: "workflow_dir", Type: cty.String, Required: true},
		}},
	},
	addrs.KindTarget: {
		"libvirt": {Attributes: []AttributeSchema{
			{Name: "uri", Type: cty.String, Default: cty.StringVal("qemu:///system")},
		}},
	},
}

const basePlugins = `
source "vsphere" "dc1" {
  url = "https://vc.example.com/sdk"
}
converter "hyper2kvm" "main" {
  workflow_dir = "/wf"
}
target "libvirt" "kvm1" {}
`

// writeRepo writes files into a new temp dir and returns it.
func writeRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := writeFile(dir, name, src); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeFile(dir, name, src string) error {
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(src), 0o644)
}

func mustLoad(t *testing.T, opts LoadOptions) *Config {
	t.Helper()
	if opts.Plugins == nil {
		opts.Plugins = testPlugins
	}
	cfg, _, diags := Load(opts)
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", diagText(diags))
	}
	return cfg
}

func diagText(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		b.WriteString(d.Error() + "\n")
	}
	return b.String()
}

func TestLoadEvaluatesEverything(t *testing.T) {
	dir := writeRepo(t, map[string]string{
		"main.hcl": `
variable "pw" {
  type      = string
  sensitive = true
}
variable "vms" {
  type = map(object({ memory = string, cpus = optional(number, 1) }))
  default = {
    "web-01" = { memory = "2GiB" }
    "web-02" = { memory = "4GiB", cpus = 4 }
  }
}
locals {
  root = "/${local.dc}/vm"
}
locals {
  dc = upper("dc1")
}
agent {
  state_dir   = "st"
  parallelism = 3
  interval    = "90s"
}
source "vsphere" "dc1" {
  url      = "https://vc.example.com/sdk"
  password = var.pw
  tags     = { team = "infra" }
  tls {
    ca_file = "ca.pem"
  }
  datastore { name = "ds1" }
  datastore {
    name   = "ds2"
    weight = 3
  }
}
converter "hyper2kvm" "main" {
  workflow_dir = "/wf"
}
target "libvirt" "kvm1" {}
migration "db" {
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = "${local.root}/db"
  export { dir = "/exp" }
  lifecycle { prevent_destroy = true }
}
migration "web" {
  for_each   = var.vms
  source     = source.vsphere.dc1
  converter  = converter.hyper2kvm.main
  target     = target.libvirt.kvm1
  vm         = "${local.root}/${each.key}"
  export {
    dir              = "/exp/${each.key}"
    power_off        = true
    shutdown_timeout = "2m"
    restore_power    = false
  }
  convert {
    format         = "raw"
    compress       = true
    compress_level = 6
    fix {
      fstab = "stabilize-all"
      grub  = true
    }
  }
  domain {
    memory = each.value.memory
    vcpus  = each.value.cpus
    start  = true
  }
  depends_on = [migration.db]
}
`})
	cfg := mustLoad(t, LoadOptions{Dir: dir, Vars: []string{"pw=s3cret"}})

	wantAgent := AgentConfig{StateDir: filepath.Join(dir, "st"), Parallelism: 3, Interval: 90 * time.Second,
		RetryMin: DefaultRetryMin, RetryMax: DefaultRetryMax}
	if diff := cmp.Diff(wantAgent, cfg.Agent); diff != "" {
		t.Errorf("agent (-want +got):\n%s", diff)
	}
	src := cfg.Sources["vsphere.dc1"]
	if src == nil {
		t.Fatalf("no source vsphere.dc1: %v", cfg.Sources)
	}
	wantSrc := cty.ObjectVal(map[string]cty.Value{
		"url":                  cty.StringVal("https://vc.example.com/sdk"),
		"username":             cty.NullVal(cty.String),
		"password":             cty.StringVal("s3cret"),
		"insecure":             cty.False,
		"max_parallel_exports": cty.NumberIntVal(4),
		"tags":                 cty.MapVal(map[string]cty.Value{"team": cty.StringVal("infra")}),
		"tls":                  cty.ObjectVal(map[string]cty.Value{"ca_file": cty.StringVal("ca.pem"), "key": cty.NullVal(cty.String)}),
		"datastore": cty.ListVal([]cty.Value{
			cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("ds1"), "weight": cty.NumberIntVal(1)}),
			cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("ds2"), "weight": cty.NumberIntVal(3)}),
		}),
	})
	if !src.Config.RawEquals(wantSrc) {
		t.Errorf("source config:\n got %#v\nwant %#v", src.Config, wantSrc)
	}
	if src.Config.ContainsMarked() {
		t.Error("source config carries marks")
	}
	if got, want := pathStrings(src.SensitivePaths), []string{"password", "tls.key"}; !cmp.Equal(got, want) {
		t.Errorf("sensitive paths = %v, want %v", got, want)
	}

	var got []string
	for _, m := range cfg.Migrations {
		got = append(got, m.Addr.String())
	}
	if want := []string{`migration.db`, `migration.web["web-01"]`, `migration.web["web-02"]`}; !cmp.Equal(got, want) {
		t.Fatalf("migrations = %v, want %v", got, want)
	}
	web2 := cfg.Migration(addrs.Migration{Name: "web", Key: "web-02", HasKey: true})
	want := &Migration{
		Addr:      addrs.Migration{Name: "web", Key: "web-02", HasKey: true},
		Source:    addrs.Plugin{Kind: addrs.KindSource, Type: "vsphere", Name: "dc1"},
		Converter: addrs.Plugin{Kind: addrs.KindConverter, Type: "hyper2kvm", Name: "main"},
		Target:    addrs.Plugin{Kind: addrs.KindTarget, Type: "libvirt", Name: "kvm1"},
		VM:        "/DC1/vm/web-02",
		Export:    ExportSettings{Dir: "/exp/web-02", PowerOff: true, ShutdownTimeout: 2 * time.Minute},
		Convert: ConvertSettings{Format: "raw", Compress: true, CompressLevel: 6, Validate: true,
			Fix: FixSettings{Enabled: true, Fstab: "stabilize-all", Grub: true}},
		Domain:    DomainSettings{MemoryMiB: 4096, VCPUs: 4, Start: true},
		DependsOn: []addrs.Migration{{Name: "db"}},
	}
	ignore := cmpopts.IgnoreFields(Migration{}, "Digest", "DeclRange")
	if diff := cmp.Diff(want, web2, ignore); diff != "" {
		t.Errorf("web-02 (-want +got):\n%s", diff)
	}
	db := cfg.Migration(addrs.Migration{Name: "db"})
	wantDB := ExportSettings{Dir: "/exp", ShutdownTimeout: DefaultShutdownTimeout, RestorePower: true}
	if diff := cmp.Diff(wantDB, db.Export); diff != "" {
		t.Errorf("db export defaults (-want +got):\n%s", diff)
	}
	if db.Convert != (ConvertSettings{Format: "qcow2", Validate: true}) || !db.PreventDestroy {
		t.Errorf("db convert defaults / lifecycle: %+v %v", db.Convert, db.PreventDestroy)
	}
	if web1 := cfg.Migrations[1]; web1.Domain.VCPUs != 1 || web1.Domain.MemoryMiB != 2048 {
		t.Errorf("optional() default not applied: %+v", web1.Domain)
	}
	if v := cfg.Variables["pw"]; !v.Sensitive || v.Value.ContainsMarked() || v.Value.AsString() != "s3cret" {
		t.Errorf("variable pw = %+v", v)
	}
	if got := cfg.Secrets(); !cmp.Equal(got, []string{"s3cret"}) {
		t.Errorf("Secrets() = %v", got)
	}
}

func pathStrings(ps []cty.Path) []string {
	var out []string
	for _, p := range ps {
		out = append(out, pathString(p))
	}
	return out
}

func TestAgentDefaults(t *testing.T) {
	dir := writeRepo(t, map[string]string{"main.hcl": basePlugins})
	cfg := mustLoad(t, LoadOptions{Dir: dir})
	want := AgentConfig{StateDir: filepath.Join(dir, ".hyperagent"), Parallelism: DefaultParallelism, Interval: 30 * time.Second,
		RetryMin: 30 * time.Second, RetryMax: 30 * time.Minute}
	if diff := cmp.Diff(want, cfg.Agent); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !filepath.IsAbs(cfg.Dir) {
		t.Errorf("Dir %q is not absolute", cfg.Dir)
	}
}

func TestFileFunctionsAreRelativeToTheConfigDir(t *testing.T) {
	dir := writeRepo(t, map[string]string{
		"main.hcl": basePlugins + `
locals {
  name = trimspace(file("name.txt"))
  vm   = templatefile("tmpl/vm.tmpl", { name = local.name, n = 2 })
}
migration "m" {
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = local.vm
  export { dir = fileexists("name.txt") ? "/yes" : "/no" }
}
`,
		"name.txt":     "db-01\n",
		"tmpl/vm.tmpl": "/DC1/vm/${name}-%{ for i in range(n) }x%{ endfor }",
	})
	t.Chdir(t.TempDir()) // the working directory must not matter
	cfg := mustLoad(t, LoadOptions{Dir: dir})
	m := cfg.Migrations[0]
	if m.VM != "/DC1/vm/db-01-xx" || m.Export.Dir != "/yes" {
		t.Errorf("vm = %q, export dir = %q", m.VM, m.Export.Dir)
	}
}

func TestFileRefusesDevices(t *testing.T) {
	dir := writeRepo(t, map[string]string{"main.hcl": `
locals {
  z = file("/dev/zero")
}
`})
	_, _, diags := Load(LoadOptions{Dir: dir, Plugins: testPlugins})
	if !diags.HasErrors() || !strings.Contains(diagText(diags), "not a regular file") {
		t.Fatalf("diagnostics:\n%s", diagText(diags))
	}
}

// TestTerraformSemantics: length() of a string or a set, a for_each over
// an empty set (zero instances), and a load without variable values
// (validate) that leaves unknown what depends on them.
func TestTerraformSemantics(t *testing.T) {
	dir := writeRepo(t, map[string]string{"main.hcl": basePlugins + `
variable "vms" {
  type = set(string)
}
locals {
  n = length("héllo") + length(toset(["a", "b"])) + length({ a = 1 })
}
migration "none" {
  for_each  = toset([])
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = "/DC1/vm/${each.key}"
  export { dir = "/srv/exports" }
}
migration "later" {
  for_each  = var.vms
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = "/DC1/vm/${each.key}"
  export { dir = "/srv/exports" }
}
`})
	cfg := mustLoad(t, LoadOptions{Dir: dir, Vars: []string{`vms=["x"]`}})
	if len(cfg.Migrations) != 1 || cfg.Migrations[0].Addr.String() != `migration.later["x"]` {
		t.Errorf("migrations %v, want only migration.later[\"x\"] (toset([]) is zero instances)", cfg.Migrations)
	}
	if _, _, diags := Load(LoadOptions{Dir: dir, Plugins: testPlugins}); !diags.HasErrors() {
		t.Error("a load for plan without the required variable succeeded")
	}
	if _, _, diags := Load(LoadOptions{Dir: dir, Plugins: testPlugins, UnsetUnknown: true}); diags.HasErrors() {
		t.Errorf("a load for validate without variable values: %v", diags)
	}
}
