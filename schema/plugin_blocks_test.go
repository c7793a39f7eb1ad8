package schema

import (
	"strings"
	"testing"

	"github.com/hypersdk/hyperagent/schema/addrs"
)

const twoConverters = `
source "vsphere" "dc1" {
  url = "https://vc.example.com/sdk"
}
target "libvirt" "kvm1" {}
converter "hyper2kvm" "daemon" {
  workflow_dir = "/wf"
  fallback     = converter.hyper2kvm.direct
}
converter "hyper2kvm" "direct" {
  workflow_dir = "/wf2"
}
`

// fallback is a meta-argument: resolved by the schema layer, kept out of
// the plugin's Config, and part of the config digest.
func TestConverterFallback(t *testing.T) {
	cfg, diags := loadDiags(t, twoConverters)
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", diagText(diags))
	}
	daemon, direct := cfg.Converters["hyper2kvm.daemon"], cfg.Converters["hyper2kvm.direct"]
	want := addrs.Plugin{Kind: addrs.KindConverter, Type: "hyper2kvm", Name: "direct"}
	if daemon.Fallback == nil || *daemon.Fallback != want {
		t.Errorf("daemon.Fallback = %v, want %v", daemon.Fallback, want)
	}
	if direct.Fallback != nil {
		t.Errorf("direct.Fallback = %v, want nil", direct.Fallback)
	}
	if daemon.Config.Type().HasAttribute("fallback") {
		t.Errorf("fallback reached the plugin's Config: %#v", daemon.Config)
	}
	without, _ := loadDiags(t, strings.Replace(twoConverters, "fallback     = converter.hyper2kvm.direct", "", 1))
	if without.Digest == cfg.Digest {
		t.Error("the config digest does not change with the fallback")
	}
}

func TestConverterFallbackErrors(t *testing.T) {
	tests := map[string]struct {
		src  string
		want string // summary: detail
	}{
		"undeclared": {
			src:  strings.Replace(twoConverters, "converter.hyper2kvm.direct", "converter.hyper2kvm.nope", 1),
			want: `Reference to undeclared converter: No converter "hyper2kvm" "nope" block is declared.`,
		},
		"not a converter": {
			src:  strings.Replace(twoConverters, "converter.hyper2kvm.direct", "target.libvirt.kvm1", 1),
			want: `Invalid converter reference: fallback must be a reference to a converter block, like converter.TYPE.NAME; target.libvirt.kvm1 is not a converter.`,
		},
		"itself": {
			src:  strings.Replace(twoConverters, "converter.hyper2kvm.direct", "converter.hyper2kvm.daemon", 1),
			want: `Invalid fallback: converter.hyper2kvm.daemon names itself as its fallback`,
		},
		"two levels": {
			src: strings.Replace(twoConverters, `workflow_dir = "/wf2"`, `workflow_dir = "/wf2"
  fallback     = converter.hyper2kvm.third`, 1) + `converter "hyper2kvm" "third" {
  workflow_dir = "/wf3"
}
`,
			want: `Invalid fallback: converter.hyper2kvm.direct, the fallback of converter.hyper2kvm.daemon, has a fallback of its own (at main.hcl:12,18-43).`,
		},
		"on a target": {
			src:  strings.Replace(twoConverters, `target "libvirt" "kvm1" {}`, `target "libvirt" "kvm1" { fallback = converter.hyper2kvm.direct }`, 1),
			want: `Unsupported argument: An argument named "fallback" is not expected here.`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, diags := loadDiags(t, tt.src)
			if len(diags) != 1 || !strings.HasPrefix(diags[0].Summary+": "+diags[0].Detail, tt.want) {
				t.Fatalf("want one diagnostic %q, got:\n%s", tt.want, diagText(diags))
			}
			if diags[0].Subject == nil || !strings.HasSuffix(diags[0].Subject.Filename, "main.hcl") {
				t.Errorf("diagnostic has no range in main.hcl: %v", diags[0].Subject)
			}
		})
	}
}

// AttrRanges says where each top-level attribute's value was written.
func TestAttrRanges(t *testing.T) {
	cfg, diags := loadDiags(t, twoConverters+`
source "vsphere" "dc2" {
  url      = "https://vc2.example.com/sdk"
  insecure = true
  tls {
    ca_file = "ca.pem"
  }
}
`)
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", diagText(diags))
	}
	got := map[string]string{}
	for _, pb := range []*PluginBlock{cfg.Sources["vsphere.dc2"], cfg.Converters["hyper2kvm.daemon"], cfg.Targets["libvirt.kvm1"]} {
		for name, r := range pb.AttrRanges {
			got[pb.Addr.String()+" "+name] = r.String()[strings.LastIndex(r.String(), "/")+1:]
		}
	}
	want := map[string]string{
		"source.vsphere.dc2 url":                  "main.hcl:15,14-43",
		"source.vsphere.dc2 insecure":             "main.hcl:16,14-18",
		"converter.hyper2kvm.daemon workflow_dir": "main.hcl:7,18-23",
		"converter.hyper2kvm.daemon fallback":     "main.hcl:8,18-44",
	}
	if len(got) != len(want) {
		t.Errorf("ranges = %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s at %s, want %s", k, got[k], w)
		}
	}
}
