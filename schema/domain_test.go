package schema

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// loadDiags loads a repo of one main.hcl and returns its diagnostics,
// with the directory taken out of the ranges their details name.
func loadDiags(t *testing.T, src string) (*Config, hcl.Diagnostics) {
	t.Helper()
	dir := writeRepo(t, map[string]string{"main.hcl": src})
	cfg, _, diags := Load(LoadOptions{Dir: dir, Plugins: testPlugins})
	for _, d := range diags {
		d.Detail = strings.ReplaceAll(d.Detail, dir+"/", "")
	}
	return cfg, diags
}

// migrationWithName is a migration block whose domain name is expr, on
// line 17 of basePlugins + the block.
func migrationWithName(name, target, expr string) string {
	return fmt.Sprintf(`
migration %q {
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = %s
  vm        = "/DC1/vm/x"
  export { dir = "/exp" }
  domain {
    name = %s
  }
}
`, name, target, expr)
}

// A domain name the config sets is checked by DomainNameProblem, and the
// error points at the name's value.
func TestDomainNameIsChecked(t *testing.T) {
	tests := map[string]struct {
		expr string
		want string // in the detail; "" means no error
	}{
		"plain":          {expr: `"web-01.example_1+x"`},
		"quote":          {expr: `"it's"`, want: `"it's" is not a usable domain name`},
		"less than":      {expr: `"a<b"`, want: `"a<b" is not a usable domain name`},
		"slash":          {expr: `"../etc/x"`, want: `"../etc/x" is not a usable domain name`},
		"newline":        {expr: `"a\nb"`, want: `"a\nb" is not a usable domain name`},
		"300 characters": {expr: `"` + strings.Repeat("a", 300) + `"`, want: "at most 200 bytes; this one has 300"},
		"leading dash":   {expr: `"-web"`, want: `"-web" is not a usable domain name`},
		"empty":          {expr: `""`, want: "A domain name cannot be empty."},
		"unset (null)":   {expr: `null`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			src := basePlugins + migrationWithName("m", "target.libvirt.kvm1", tt.expr)
			cfg, diags := loadDiags(t, src)
			if tt.want == "" {
				if len(diags) > 0 {
					t.Fatalf("unexpected diagnostics:\n%s", diagText(diags))
				}
				if tt.expr == "null" && cfg.Migrations[0].Domain.Name != "" {
					t.Errorf("name = %q", cfg.Migrations[0].Domain.Name)
				}
				return
			}
			if len(diags) != 1 || diags[0].Summary != "Invalid domain name" || !strings.Contains(diags[0].Detail, tt.want) {
				t.Fatalf("want one Invalid domain name containing %q, got:\n%s", tt.want, diagText(diags))
			}
			if s := diags[0].Subject; s == nil || s.Start.Line != 17 || s.Start.Column != 12 {
				t.Errorf("subject %v, want main.hcl:17,12 (the name's value)", s)
			}
		})
	}
}

// Each for_each instance's name is checked; the bad ones are reported,
// each once.
func TestDomainNamePerInstance(t *testing.T) {
	src := basePlugins + `
migration "web" {
  for_each  = { a = "ok-a", b = "b/b", c = "ok-c", d = "" }
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = "/DC1/vm/${each.key}"
  export { dir = "/exp" }
  domain { name = each.value }
}
`
	_, diags := loadDiags(t, src)
	var got []string
	for _, d := range diags {
		got = append(got, d.Summary+": "+d.Detail)
	}
	if len(got) != 2 || !strings.Contains(got[0], `"b/b" is not`) || !strings.Contains(got[1], "cannot be empty") {
		t.Fatalf("diagnostics:\n%s", strings.Join(got, "\n"))
	}
}

// Two instances that set one domain name on one target would define the
// same domain: the second is reported, naming the first. The same name on
// another target, and names left to the VM, are fine.
func TestDuplicateDomainName(t *testing.T) {
	twoTargets := basePlugins + `target "libvirt" "kvm2" {}` + "\n"
	tests := map[string]struct {
		src  string
		want []string // details, in order
	}{
		"two blocks": {
			src: basePlugins + migrationWithName("a", "target.libvirt.kvm1", `"db"`) + migrationWithName("b", "target.libvirt.kvm1", `"db"`),
			want: []string{`migration.b sets the domain name "db" on target.libvirt.kvm1, as migration.a does at ` +
				`main.hcl:17,12-16.`},
		},
		"two instances": {
			src: basePlugins + `
migration "web" {
  for_each  = toset(["x", "y", "z"])
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = "/DC1/vm/${each.key}"
  export { dir = "/exp" }
  domain { name = "web" }
}
`,
			want: []string{
				`migration.web["y"] sets the domain name "web" on target.libvirt.kvm1, as migration.web["x"] does at main.hcl:17,19-24.`,
				`migration.web["z"] sets the domain name "web" on target.libvirt.kvm1, as migration.web["x"] does at main.hcl:17,19-24.`,
			},
		},
		"other target": {
			src: twoTargets + migrationWithName("a", "target.libvirt.kvm1", `"db"`) + migrationWithName("b", "target.libvirt.kvm2", `"db"`),
		},
		"names from the VMs": {
			src: basePlugins + migrationWithName("a", "target.libvirt.kvm1", "null") + migrationWithName("b", "target.libvirt.kvm1", "null"),
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, diags := loadDiags(t, tt.src)
			if len(diags) != len(tt.want) {
				t.Fatalf("want %d diagnostics, got:\n%s", len(tt.want), diagText(diags))
			}
			for i, d := range diags {
				if d.Summary != "Duplicate domain name" || !strings.HasPrefix(d.Detail, tt.want[i]) {
					t.Errorf("diagnostic %d: %s: %s\nwant detail starting %s", i, d.Summary, d.Detail, tt.want[i])
				}
				if d.Subject == nil || d.Subject.Filename == "" {
					t.Errorf("diagnostic %d has no range", i)
				}
			}
		})
	}
}
