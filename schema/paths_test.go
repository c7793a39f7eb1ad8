package schema

import (
	"path/filepath"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/schema/addrs"
)

// Relative paths mean the same files wherever hyperagent runs from: they
// resolve against the config directory, for export.dir and for every
// plugin attribute declared as a Path (keeping its marks); other strings
// and absolute paths are left alone.
func TestRelativePathsResolveAgainstConfigDir(t *testing.T) {
	plugins := PluginSchemas{
		addrs.KindSource: {"files": {Attributes: []AttributeSchema{
			{Name: "dir", Type: cty.String, Required: true, Path: true},
			{Name: "cache", Type: cty.String, Path: true, Sensitive: true},
			{Name: "label", Type: cty.String},
		}}},
		addrs.KindConverter: {"hyper2kvm": {Attributes: []AttributeSchema{
			{Name: "workflow_dir", Type: cty.String, Required: true, Path: true},
		}}},
		addrs.KindTarget: {"libvirt": {Attributes: []AttributeSchema{
			{Name: "storage_dir", Type: cty.String, Path: true},
		}}},
	}
	dir := writeRepo(t, map[string]string{"main.hcl": `
source "files" "nas" {
  dir   = "exports/../nas"
  cache = "cache.json"
  label = "relative/looking"
}
converter "hyper2kvm" "w" { workflow_dir = "/abs/wf" }
target "libvirt" "k" {}
migration "m" {
  source    = source.files.nas
  converter = converter.hyper2kvm.w
  target    = target.libvirt.k
  vm        = "a.ova"
  export { dir = "out/m" }
}
`})
	cfg := mustLoad(t, LoadOptions{Dir: dir, Plugins: plugins})
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	src := cfg.Sources["files.nas"].Config
	for name, want := range map[string]string{
		"dir":   filepath.Join(abs, "nas"),
		"cache": filepath.Join(abs, "cache.json"),
		"label": "relative/looking",
	} {
		if got := src.GetAttr(name).AsString(); got != want {
			t.Errorf("source %s = %q, want %q", name, got, want)
		}
	}
	if got := cfg.Converters["hyper2kvm.w"].Config.GetAttr("workflow_dir").AsString(); got != "/abs/wf" {
		t.Errorf("absolute workflow_dir became %q", got)
	}
	if got := cfg.Targets["libvirt.k"].Config.GetAttr("storage_dir"); !got.IsNull() {
		t.Errorf("unset storage_dir became %#v", got)
	}
	if got, want := cfg.Migrations[0].Export.Dir, filepath.Join(abs, "out/m"); got != want {
		t.Errorf("export.dir = %q, want %q", got, want)
	}
	if len(cfg.Sources["files.nas"].SensitivePaths) != 1 {
		t.Errorf("the sensitive path attribute lost its mark: %v", cfg.Sources["files.nas"].SensitivePaths)
	}
}
