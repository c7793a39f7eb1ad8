package main

import (
	"strings"
	"testing"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

func TestPickPlugin(t *testing.T) {
	a := addrs.Plugin{Kind: addrs.KindConverter, Type: "hyper2kvm", Name: "a"}
	b := addrs.Plugin{Kind: addrs.KindConverter, Type: "hyper2kvm", Name: "b"}
	tests := map[string]struct {
		declared []addrs.Plugin
		flag     string
		want     addrs.Plugin
		err      string
	}{
		"the only one":       {declared: []addrs.Plugin{a}, want: a},
		"named":              {declared: []addrs.Plugin{a, b}, flag: "converter.hyper2kvm.b", want: b},
		"named without kind": {declared: []addrs.Plugin{a, b}, flag: "hyper2kvm.b", want: b},
		"ambiguous":          {declared: []addrs.Plugin{a, b}, err: "the repo declares 2 converter blocks (converter.hyper2kvm.a, converter.hyper2kvm.b): name one with -converter="},
		"none":               {err: "the repo declares no converter block"},
		"not declared":       {declared: []addrs.Plugin{a}, flag: "hyper2kvm.c", err: "-converter=hyper2kvm.c: the repo declares no such block; it declares converter.hyper2kvm.a"},
		"another kind":       {declared: []addrs.Plugin{a}, flag: "target.libvirt.kvm", err: "want converter.TYPE.NAME"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := pickPlugin(tc.declared, addrs.KindConverter, tc.flag)
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("err = %v, want %q", err, tc.err)
			case tc.err == "" && (err != nil || got != tc.want):
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// TestDiscoverNames: block names come from the folder under the
// datacenter's VM folder (or the files source's dir, or the pattern),
// and are valid names; keys are VM names made usable domain names, and
// both are made unique.
func TestDiscoverNames(t *testing.T) {
	src := addrs.Plugin{Kind: addrs.KindSource, Type: "vsphere", Name: "dc1"}
	for label, want := range map[string]string{
		"/DC1/vm": "dc1", "/DC1/vm/prod/Web Tier": "prod_web_tier", ".": "dc1", "linux/web-01": "linux_web-01",
		"web-*": "web", "[0-9]*": "vm_0-9", "*": "dc1",
	} {
		if got := blockName(label, src); got != want || !addrs.ValidName(got) {
			t.Errorf("blockName(%q) = %q, want %q", label, got, want)
		}
	}
	for name, want := range map[string]string{
		"web-01": "web-01", "web 01's": "web-01-s", "-db/01.": "db-01.", "ünïcode": "n-code", "///": "vm",
	} {
		got := domainKeyFor(plugins.DiscoveredVM{Observation: plugins.VMObservation{Facts: plugins.VMFacts{Name: name}}})
		if got != want || schema.DomainNameProblem(got) != "" {
			t.Errorf("domainKeyFor(%q) = %q, want %q", name, got, want)
		}
	}
	taken := map[string]bool{"web": true, "web-2": true}
	if got := unique("web", taken, "-"); got != "web-3" || !taken["web-3"] {
		t.Errorf("unique = %q", got)
	}
}
