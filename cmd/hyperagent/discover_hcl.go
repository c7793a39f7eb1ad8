package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// hcl renders the new blocks with hclwrite, formatted as hyperagent fmt
// formats. Each VM is one entry of its block's for_each map: the key
// names the instance and its domain, the value is the VM; a comment
// gives its facts, and comments above it its error and warning findings.
func (r *discoverResult) hcl(d *discovery) ([]byte, error) {
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	body.AppendUnstructuredTokens(comments(
		fmt.Sprintf("Written by hyperagent discover: %d VM(s) of %s, in %d block(s).", r.count(), d.source, len(r.groups)),
		"Each key names the migration instance and its libvirt domain; each value is the VM.",
	))
	for _, g := range r.groups {
		body.AppendNewline()
		body.AppendUnstructuredTokens(comments(fmt.Sprintf("%s: %d VM(s).", d.groupText(g.label), len(g.vms))))
		b := body.AppendNewBlock("migration", []string{g.name}).Body()
		b.SetAttributeRaw("for_each", forEachTokens(g.vms))
		b.SetAttributeTraversal("source", traversal(d.source))
		b.SetAttributeTraversal("converter", traversal(d.converter))
		b.SetAttributeTraversal("target", traversal(d.target))
		b.SetAttributeTraversal("vm", hcl.Traversal{hcl.TraverseRoot{Name: "each"}, hcl.TraverseAttr{Name: "value"}})
		b.AppendNewline()
		ex := b.AppendNewBlock("export", nil).Body()
		ex.SetAttributeValue("dir", cty.StringVal(d.exportDir))
		if d.powerOff {
			ex.SetAttributeValue("power_off", cty.True)
		}
		b.AppendNewline()
		dom := b.AppendNewBlock("domain", nil).Body()
		dom.SetAttributeTraversal("name", hcl.Traversal{hcl.TraverseRoot{Name: "each"}, hcl.TraverseAttr{Name: "key"}})
	}
	out := hclwrite.Format(f.Bytes())
	// What was written must parse: a generator bug is caught here, not
	// in the user's next validate.
	if _, diags := hclsyntax.ParseConfig(out, "discovered.hcl", hcl.InitialPos); diags.HasErrors() {
		return nil, fmt.Errorf("the generated configuration does not parse: %s", diags.Error())
	}
	return out, nil
}

// groupText says what a block holds: a folder's VMs, or a pattern's.
func (d *discovery) groupText(label string) string {
	switch {
	case len(d.match) > 0:
		return "VMs matching " + label
	case label == ".":
		return "VMs in the dir of " + d.source.String()
	}
	return "folder " + label
}

// forEachTokens is the for_each map, one entry per line.
func forEachTokens(vms []discoveredVM) hclwrite.Tokens {
	toks := hclwrite.Tokens{
		{Type: hclsyntax.TokenOBrace, Bytes: []byte("{")},
		{Type: hclsyntax.TokenNewline, Bytes: []byte("\n")},
	}
	sorted := append([]discoveredVM(nil), vms...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].addr.Key < sorted[j].addr.Key })
	for _, vm := range sorted {
		var above []string
		for _, f := range vm.findings {
			above = append(above, fmt.Sprintf("%s: %s", f.Severity, f.Summary))
		}
		toks = append(toks, comments(above...)...)
		toks = append(toks, hclwrite.TokensForValue(cty.StringVal(vm.addr.Key))...)
		toks = append(toks, &hclwrite.Token{Type: hclsyntax.TokenEqual, Bytes: []byte("=")})
		toks = append(toks, hclwrite.TokensForValue(cty.StringVal(vm.Path))...)
		toks = append(toks, &hclwrite.Token{Type: hclsyntax.TokenComment, Bytes: []byte("# " + oneLine(factsLine(vm.Observation.Facts)) + "\n")})
	}
	return append(toks, &hclwrite.Token{Type: hclsyntax.TokenCBrace, Bytes: []byte("}")})
}

// comments are line comments, one per line of text.
func comments(lines ...string) hclwrite.Tokens {
	var toks hclwrite.Tokens
	for _, l := range lines {
		toks = append(toks, &hclwrite.Token{Type: hclsyntax.TokenComment, Bytes: []byte("# " + oneLine(l) + "\n")})
	}
	return toks
}

// oneLine keeps a comment on its line whatever a VM's name holds.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

func traversal(p addrs.Plugin) hcl.Traversal {
	return hcl.Traversal{hcl.TraverseRoot{Name: string(p.Kind)}, hcl.TraverseAttr{Name: p.Type}, hcl.TraverseAttr{Name: p.Name}}
}

// factsLine is a VM's facts in a few words: CPUs, memory, firmware,
// disks and their sizes, power state, guest OS.
func factsLine(f plugins.VMFacts) string {
	var parts []string
	if f.CPUs > 0 {
		parts = append(parts, fmt.Sprintf("%d vCPU", f.CPUs))
	} else {
		parts = append(parts, "vCPUs unknown")
	}
	if f.MemoryMiB > 0 {
		parts = append(parts, fsutil.FormatBytes(f.MemoryMiB<<20))
	} else {
		parts = append(parts, "memory unknown")
	}
	if f.Firmware != "" && f.Firmware != "unknown" {
		parts = append(parts, f.Firmware)
	}
	parts = append(parts, disksLine(f.Disks))
	if f.PowerState != "" {
		parts = append(parts, f.PowerState)
	}
	guest := f.GuestID
	if guest == "" {
		guest = f.OSFamily
	}
	if guest != "" && guest != "unknown" {
		parts = append(parts, guest)
	}
	return strings.Join(parts, ", ")
}

// disksLine is "2 disks: 40.0 GiB, 100.0 GiB".
func disksLine(ds []plugins.DiskFact) string {
	sizes := make([]string, len(ds))
	for i, d := range ds {
		sizes[i] = fsutil.FormatBytes(d.CapacityBytes)
		if d.CapacityBytes <= 0 {
			sizes[i] = "size unknown"
		}
	}
	switch len(ds) {
	case 0:
		return "no disks"
	case 1:
		return "1 disk: " + sizes[0]
	}
	return fmt.Sprintf("%d disks: %s", len(ds), strings.Join(sizes, ", "))
}
