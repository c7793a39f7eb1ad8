package schema

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/hcl/v2"
)

const digestRepo = basePlugins + `
variable "pw" {
  sensitive = true
}
variable "mem" {
  default = "4GiB"
}
source "vsphere" "dc2" {
  url      = "https://vc2.example.com/sdk"
  password = var.pw
}
migration "a" {
  source    = source.vsphere.dc1
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = "/DC1/vm/a"
  export { dir = "/exp" }
  domain { memory = var.mem }
}
migration "b" {
  source    = source.vsphere.dc2
  converter = converter.hyper2kvm.main
  target    = target.libvirt.kvm1
  vm        = "/DC1/vm/b"
  export { dir = "/exp" }
}
`

func loadDigests(t *testing.T, src string, vars ...string) (string, map[string]string) {
	t.Helper()
	cfg := mustLoad(t, LoadOptions{Dir: writeRepo(t, map[string]string{"main.hcl": src}), Vars: vars})
	per := map[string]string{}
	for _, m := range cfg.Migrations {
		if len(m.Digest) != 64 {
			t.Fatalf("%s digest %q is not sha256 hex", m.Addr, m.Digest)
		}
		per[m.Addr.String()] = m.Digest
	}
	return cfg.Digest, per
}

func TestDigests(t *testing.T) {
	base, baseM := loadDigests(t, digestRepo, "pw=one")
	tests := map[string]struct {
		src     string
		vars    []string
		sameCfg bool
		changed []string // migrations whose digest must change; the others must not
	}{
		"same input, other directory": {src: digestRepo, vars: []string{"pw=one"}, sameCfg: true},
		"sensitive value changes":     {src: digestRepo, vars: []string{"pw=two"}, sameCfg: true},
		"a setting of one instance":   {src: digestRepo, vars: []string{"pw=one", "mem=8GiB"}, changed: []string{"migration.a"}},
		"a plugin used by one instance": {
			src:     strings.Replace(digestRepo, "https://vc2.example.com/sdk", "https://vc3.example.com/sdk", 1),
			vars:    []string{"pw=one"},
			changed: []string{"migration.b"},
		},
		"a plugin used by all": {
			src:     strings.Replace(digestRepo, `workflow_dir = "/wf"`, `workflow_dir = "/wf2"`, 1),
			vars:    []string{"pw=one"},
			changed: []string{"migration.a", "migration.b"},
		},
		"formatting and comments do not count": {
			src:     "# a comment\n" + strings.ReplaceAll(digestRepo, "  ", "    "),
			vars:    []string{"pw=one"},
			sameCfg: true,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, gotM := loadDigests(t, tt.src, tt.vars...)
			if (got == base) != tt.sameCfg {
				t.Errorf("config digest same=%v, want same=%v", got == base, tt.sameCfg)
			}
			for addr, d := range gotM {
				wantChange := false
				for _, c := range tt.changed {
					wantChange = wantChange || c == addr
				}
				if (d != baseM[addr]) != wantChange {
					t.Errorf("%s digest changed=%v, want %v", addr, d != baseM[addr], wantChange)
				}
			}
		})
	}
}

// The same repo written in JSON syntax loads to the same Config.
func TestJSONSyntaxIsEquivalent(t *testing.T) {
	native := `
variable "vms" {
  type    = set(string)
  default = ["web-01", "web-02"]
}
locals {
  root = "/DC1/vm"
}
agent {
  parallelism = 4
}
source "vsphere" "dc1" {
  url = "https://vc.example.com/sdk"
  tls {
    ca_file = "ca.pem"
  }
  datastore { name = "ds1" }
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
}
migration "web" {
  for_each   = var.vms
  source     = source.vsphere.dc1
  converter  = converter.hyper2kvm.main
  target     = target.libvirt.kvm1
  vm         = "${local.root}/${each.key}"
  export {
    dir       = "/exp"
    power_off = true
  }
  convert {
    fix { grub = true }
  }
  domain {
    memory = "2GiB"
    vcpus  = 2
  }
  depends_on = [migration.db]
}
`
	json := `{
  "variable": {"vms": {"type": "set(string)", "default": ["web-01", "web-02"]}},
  "locals": {"root": "/DC1/vm"},
  "agent": {"parallelism": 4},
  "source": {"vsphere": {"dc1": {
    "url": "https://vc.example.com/sdk",
    "tls": {"ca_file": "ca.pem"},
    "datastore": [{"name": "ds1"}]
  }}},
  "converter": {"hyper2kvm": {"main": {"workflow_dir": "/wf"}}},
  "target": {"libvirt": {"kvm1": {}}},
  "migration": {
    "db": {
      "source": "source.vsphere.dc1",
      "converter": "converter.hyper2kvm.main",
      "target": "target.libvirt.kvm1",
      "vm": "${local.root}/db",
      "export": {"dir": "/exp"}
    },
    "web": {
      "for_each": "${var.vms}",
      "source": "source.vsphere.dc1",
      "converter": "converter.hyper2kvm.main",
      "target": "target.libvirt.kvm1",
      "vm": "${local.root}/${each.key}",
      "export": {"dir": "/exp", "power_off": true},
      "convert": {"fix": {"grub": true}},
      "domain": {"memory": "2GiB", "vcpus": 2},
      "depends_on": ["migration.db"]
    }
  }
}`
	a := mustLoad(t, LoadOptions{Dir: writeRepo(t, map[string]string{"main.hcl": native})})
	b := mustLoad(t, LoadOptions{Dir: writeRepo(t, map[string]string{"main.hcl.json": json})})
	if a.Digest != b.Digest {
		t.Errorf("digests differ: native %s, json %s", a.Digest, b.Digest)
	}
	opts := cmp.Options{
		cmpopts.IgnoreFields(Config{}, "Dir"),
		cmpopts.IgnoreFields(AgentConfig{}, "StateDir"),
		cmpopts.IgnoreTypes(hcl.Range{}),
		cmp.Comparer(func(x, y interface{ GoString() string }) bool { return x.GoString() == y.GoString() }),
	}
	if diff := cmp.Diff(a, b, opts); diff != "" {
		t.Errorf("native vs JSON (-native +json):\n%s", diff)
	}
	if len(b.Migrations) != 3 {
		t.Errorf("JSON config has %d migrations, want 3", len(b.Migrations))
	}
}
