package schema

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Defaults of a migration's settings.
const (
	DefaultShutdownTimeout = 5 * time.Minute
	DefaultFormat          = "qcow2"
)

// settingsSchema is what a migration block holds besides its meta
// arguments, evaluated once per instance (each.key is in scope).
var settingsSchema = BlockSchema{
	Attributes: []AttributeSchema{
		{Name: "vm", Type: cty.String, Required: true},
	},
	Blocks: []NestedBlockSchema{
		{Name: "export", Block: BlockSchema{Attributes: []AttributeSchema{
			{Name: "dir", Type: cty.String, Required: true},
			{Name: "power_off", Type: cty.Bool, Default: cty.False},
			{Name: "shutdown_timeout", Type: cty.String, Default: cty.StringVal(DefaultShutdownTimeout.String())},
			{Name: "restore_power", Type: cty.Bool, Default: cty.True},
		}}},
		{Name: "convert", Block: BlockSchema{
			Attributes: []AttributeSchema{
				{Name: "format", Type: cty.String, Default: cty.StringVal(DefaultFormat)},
				{Name: "compress", Type: cty.Bool, Default: cty.False},
				{Name: "compress_level", Type: cty.Number, Default: cty.Zero},
				{Name: "inspect", Type: cty.Bool, Default: cty.False},
				{Name: "validate", Type: cty.Bool, Default: cty.True},
			},
			Blocks: []NestedBlockSchema{{Name: "fix", Block: BlockSchema{Attributes: []AttributeSchema{
				{Name: "enabled", Type: cty.Bool, Default: cty.True},
				{Name: "fstab", Type: cty.String},
				{Name: "grub", Type: cty.Bool, Default: cty.False},
				{Name: "initramfs", Type: cty.Bool, Default: cty.False},
				{Name: "remove_vmware_tools", Type: cty.Bool, Default: cty.False},
				{Name: "backup", Type: cty.Bool, Default: cty.False},
			}}}},
		}},
		{Name: "domain", Block: BlockSchema{Attributes: []AttributeSchema{
			{Name: "name", Type: cty.String},
			{Name: "memory", Type: cty.String},
			{Name: "vcpus", Type: cty.Number},
			{Name: "network", Type: cty.String},
			{Name: "start", Type: cty.Bool, Default: cty.False},
		}}},
		{Name: "lifecycle", Block: BlockSchema{Attributes: []AttributeSchema{
			{Name: "prevent_destroy", Type: cty.Bool, Default: cty.False},
		}}},
	},
}

// settings reads the decoded object into Go values, reporting values that
// have the right type but are not valid.
type settings struct {
	d     *blockDecoder
	v     cty.Value
	diags hcl.Diagnostics
}

// decodeSettings decodes one instance's settings. It also returns where
// each setting was written, keyed by path ("domain.name"), for checks that
// compare instances.
func (l *loader) decodeSettings(body hcl.Body, ctx *hcl.EvalContext) (*Migration, map[string]hcl.Range, hcl.Diagnostics) {
	d := l.newDecoder(ctx)
	v, diags := d.decode(body, settingsSchema, "")
	if diags.HasErrors() || !v.IsWhollyKnown() {
		return nil, nil, diags
	}
	v, ds := d.plain(v, "migration")
	diags = append(diags, ds...)
	if ds.HasErrors() {
		return nil, nil, diags
	}
	s := &settings{d: d, v: v, diags: diags}
	m := &Migration{VM: s.str("vm")}
	if m.VM == "" {
		s.fail("vm", "Invalid vm", "vm must name the VM to migrate; it is empty.")
	}
	if v.GetAttr("export").IsNull() {
		s.diags = append(s.diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing export block",
			Detail:   "A migration needs an export block saying where exported files go, like export { dir = \"/srv/exports\" }.",
			Subject:  body.MissingItemRange().Ptr(),
		})
	} else {
		m.Export = ExportSettings{
			Dir:             s.str("export.dir"), // made absolute below
			PowerOff:        s.bool("export.power_off"),
			ShutdownTimeout: s.duration("export.shutdown_timeout"),
			RestorePower:    s.bool("export.restore_power"),
		}
		if m.Export.Dir == "" {
			s.fail("export.dir", "Invalid export directory", "export.dir must not be empty.")
		} else {
			// Relative to the config directory, not to wherever
			// hyperagent runs: a saved plan exports to the same place.
			m.Export.Dir = resolve(l.dir, m.Export.Dir)
		}
	}
	m.Convert = s.convert()
	m.Domain = s.domain()
	if !v.GetAttr("lifecycle").IsNull() {
		m.PreventDestroy = s.bool("lifecycle.prevent_destroy")
	}
	if s.diags.HasErrors() {
		return nil, nil, s.diags
	}
	return m, d.ranges, s.diags
}

func (s *settings) convert() ConvertSettings {
	c := ConvertSettings{Format: DefaultFormat, Validate: true}
	if s.v.GetAttr("convert").IsNull() {
		return c
	}
	c.Format = s.str("convert.format")
	if c.Format != "qcow2" && c.Format != "raw" {
		s.fail("convert.format", "Invalid disk format", fmt.Sprintf("format must be \"qcow2\" or \"raw\", not %s.", quote(c.Format)))
	}
	c.Compress = s.bool("convert.compress")
	c.CompressLevel = s.intIn("convert.compress_level", 0, 9)
	c.Inspect = s.bool("convert.inspect")
	c.Validate = s.bool("convert.validate")
	if !s.get("convert.fix").IsNull() {
		c.Fix = FixSettings{
			Enabled:           s.bool("convert.fix.enabled"),
			Fstab:             s.str("convert.fix.fstab"),
			Grub:              s.bool("convert.fix.grub"),
			Initramfs:         s.bool("convert.fix.initramfs"),
			RemoveVMwareTools: s.bool("convert.fix.remove_vmware_tools"),
			Backup:            s.bool("convert.fix.backup"),
		}
	}
	return c
}

func (s *settings) domain() DomainSettings {
	if s.v.GetAttr("domain").IsNull() {
		return DomainSettings{}
	}
	dom := DomainSettings{
		Name:    s.str("domain.name"),
		Network: s.str("domain.network"),
		Start:   s.bool("domain.start"),
	}
	// A name the config sets must be one libvirt accepts (an unset name
	// is the VM's, checked at plan time by the same rule).
	if !s.get("domain.name").IsNull() {
		if p := DomainNameProblem(dom.Name); p != "" {
			s.fail("domain.name", "Invalid domain name", sentence(p))
		}
	}
	if !s.get("domain.vcpus").IsNull() {
		dom.VCPUs = int(s.intIn("domain.vcpus", 1, 4096))
	}
	if mem := s.str("domain.memory"); mem != "" {
		mib, err := ParseMemory(mem)
		if err != nil {
			s.fail("domain.memory", "Invalid memory size", err.Error()+".")
		}
		dom.MemoryMiB = mib
	}
	return dom
}

// get follows a dotted path through the decoded object.
func (s *settings) get(path string) cty.Value {
	v := s.v
	start := 0
	for i := 0; i <= len(path); i++ {
		if i == len(path) || path[i] == '.' {
			if v.IsNull() {
				return v
			}
			v = v.GetAttr(path[start:i])
			start = i + 1
		}
	}
	return v
}

func (s *settings) str(path string) string {
	if v := s.get(path); !v.IsNull() {
		return v.AsString()
	}
	return ""
}

func (s *settings) bool(path string) bool {
	v := s.get(path)
	return !v.IsNull() && v.True()
}

func (s *settings) intIn(path string, lo, hi int64) int {
	v := s.get(path)
	if v.IsNull() {
		return 0
	}
	i, ok := asInt(v)
	if !ok || i < lo || i > hi {
		s.fail(path, "Value out of range", fmt.Sprintf("%s must be a whole number from %d to %d.", path, lo, hi))
		return 0
	}
	return int(i)
}

func (s *settings) duration(path string) time.Duration {
	str := s.str(path)
	d, err := time.ParseDuration(str)
	if err != nil || d < 0 {
		s.fail(path, "Invalid duration", fmt.Sprintf("%s must be a duration such as \"90s\" or \"5m\", not %s.", path, quote(str)))
		return 0
	}
	return d
}

func (s *settings) fail(path, summary, detail string) {
	s.diags = append(s.diags, s.d.invalid(path, summary, detail))
}
