package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// discoverResult is what discover found and will write.
type discoverResult struct {
	// named are the VMs an existing migration names already.
	named   []plugins.DiscoveredVM
	skipped []string
	groups  []discoverGroup
	// notes say what was not checked.
	notes []string
}

// discoverGroup is one migration block: the VMs of one folder, or of one
// -match pattern.
type discoverGroup struct {
	name  string // the block's name
	label string // the folder or pattern
	vms   []discoveredVM
}

// discoveredVM is one VM the new block migrates.
type discoveredVM struct {
	plugins.DiscoveredVM
	addr     addrs.Migration // its key is the domain's name
	findings []reconcile.Finding
}

func (r *discoverResult) count() int {
	n := 0
	for _, g := range r.groups {
		n += len(g.vms)
	}
	return n
}

// run lists the source's VMs, groups the new ones into blocks, names
// them, and gathers their findings.
func (d *discovery) run(ctx context.Context, e *env) (*discoverResult, error) {
	defer d.close(e)
	known := map[string]string{}
	for _, m := range d.cfg.Migrations {
		if m.Source == d.source {
			known[m.Addr.String()] = m.VM
		}
	}
	resp, err := d.src.Discover(ctx, plugins.DiscoverRequest{Folder: d.folder, Match: d.match, Known: known,
		PowerOff: d.powerOff, ExportDir: d.exportAbs})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.source, err)
	}
	res := &discoverResult{skipped: resp.Skipped}
	byLabel := map[string][]plugins.DiscoveredVM{}
	for _, vm := range resp.VMs {
		if vm.NamedBy != "" {
			res.named = append(res.named, vm)
			continue
		}
		label := vm.Folder
		for _, p := range d.match {
			if plugins.Matches([]string{p}, vm.Name) {
				label = p
				break
			}
		}
		byLabel[label] = append(byLabel[label], vm)
	}
	labels := make([]string, 0, len(byLabel))
	for l := range byLabel {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	blocks, domains := d.takenNames()
	for _, l := range labels {
		g := discoverGroup{label: l, name: unique(blockName(l, d.source), blocks, "_")}
		for _, vm := range byLabel[l] {
			key := unique(domainKeyFor(vm), domains, "-")
			dv := discoveredVM{DiscoveredVM: vm, addr: addrs.Migration{Name: g.name, Key: key, HasKey: true}}
			dv.findings = d.vmFindings(dv)
			g.vms = append(g.vms, dv)
		}
		res.groups = append(res.groups, g)
	}
	if err := d.checkDomains(ctx, res); err != nil {
		return nil, err
	}
	return res, nil
}

// takenNames are the migration block names in use, and the domain names
// the repo's migrations on the target use (as far as known without
// observing: the name set, else the VM path's base).
func (d *discovery) takenNames() (blocks, domains map[string]bool) {
	blocks, domains = map[string]bool{}, map[string]bool{}
	for b := range d.blocks {
		blocks[b] = true
	}
	for _, m := range d.cfg.Migrations {
		blocks[m.Addr.Name] = true
		if m.Target == d.target {
			domains[reconcile.DomainName(m, nil, plugins.VMObservation{})] = true
		}
	}
	return blocks, domains
}

// migration is the instance the new block declares for vm.
func (d *discovery) migration(vm discoveredVM) *schema.Migration {
	return &schema.Migration{
		Addr: vm.addr, Source: d.source, Converter: d.converter, Target: d.target, VM: vm.Path,
		Export:  schema.ExportSettings{Dir: d.exportAbs, PowerOff: d.powerOff},
		Convert: schema.ConvertSettings{Format: schema.DefaultFormat},
		Domain:  schema.DomainSettings{Name: vm.addr.Key},
	}
}

// vmFindings are the source's findings and the plan's own pre-flight
// checks of a define.
func (d *discovery) vmFindings(vm discoveredVM) []reconcile.Finding {
	var out []reconcile.Finding
	for _, f := range vm.Observation.Findings {
		out = append(out, reconcile.Finding{Plugin: d.source.String(), Severity: string(f.Severity), Summary: f.Summary, Detail: f.Detail})
	}
	return append(out, reconcile.PreflightVM(d.migration(vm), vm.Observation)...)
}

// checkDomains asks the target, in one call, about every new domain:
// one that exists already, networks it cannot map.
func (d *discovery) checkDomains(ctx context.Context, res *discoverResult) error {
	if d.tgt == nil {
		res.notes = append(res.notes, d.tgtNote+": existing domains and unmapped networks are not checked")
		return nil
	}
	var qs []plugins.DomainQuery
	for _, g := range res.groups {
		for _, vm := range g.vms {
			q := plugins.DomainQuery{Address: vm.addr.String(), Name: vm.addr.Key}
			for _, n := range vm.Observation.Facts.NICs {
				q.Networks = append(q.Networks, n.Network)
			}
			qs = append(qs, q)
		}
	}
	resp, err := d.tgt.ObserveDomains(ctx, plugins.ObserveDomainsRequest{Domains: qs})
	if err != nil {
		return fmt.Errorf("%s: %w", d.target, err)
	}
	for gi := range res.groups {
		for vi := range res.groups[gi].vms {
			vm := &res.groups[gi].vms[vi]
			o := resp.Domains[vm.addr.String()]
			for _, f := range o.Findings {
				vm.findings = append(vm.findings, reconcile.Finding{Plugin: d.target.String(), Severity: string(f.Severity), Summary: f.Summary, Detail: f.Detail})
			}
			if o.Exists {
				vm.findings = append(vm.findings, reconcile.Finding{Plugin: d.target.String(), Severity: string(plugins.SeverityWarning),
					Summary: "if that domain is this VM, migrated already, adopt it once this block is in the repo",
					Detail:  fmt.Sprintf("hyperagent import '%s' %s", vm.addr, vm.addr.Key)})
			}
		}
	}
	return nil
}

// blockName makes a migration block name of a folder or pattern: the
// folder's path under its datacenter's VM folder (or under the files
// source's dir), its separators and other characters a name cannot hold
// turned into underscores.
func blockName(label string, source addrs.Plugin) string {
	parts := strings.Split(strings.Trim(label, "/"), "/")
	if len(parts) >= 2 && parts[1] == "vm" && strings.HasPrefix(label, "/") {
		if parts = parts[2:]; len(parts) == 0 {
			parts = []string{strings.Split(strings.Trim(label, "/"), "/")[0]}
		}
	}
	if label == "." || label == "" {
		parts = []string{source.Name}
	}
	var b strings.Builder
	for _, r := range strings.ToLower(strings.Join(parts, "_")) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		case r == '*' || r == '?' || r == '[' || r == ']' || r == '\\':
		default:
			b.WriteByte('_')
		}
	}
	s := strings.Trim(b.String(), "_-")
	if s == "" {
		s = source.Name
	}
	if !addrs.ValidName(s) {
		s = "vm_" + s
	}
	return s
}

// domainKeyFor is the VM's name made a usable domain name: characters
// schema.DomainNameProblem refuses become dashes.
func domainKeyFor(vm plugins.DiscoveredVM) string {
	name := vm.Observation.Facts.Name
	if name == "" {
		name = vm.Name
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '+', r == '-':
			b.WriteRune(r)
		default:
			if !strings.HasSuffix(b.String(), "-") {
				b.WriteByte('-')
			}
		}
	}
	s := strings.TrimRight(strings.TrimLeft(b.String(), ".+-"), "-")
	if len(s) > schema.MaxDomainNameLen-8 {
		s = s[:schema.MaxDomainNameLen-8]
	}
	if schema.DomainNameProblem(s) != "" {
		s = "vm"
	}
	return s
}

// unique returns name, or name with the first free numeric suffix, and
// takes it.
func unique(name string, taken map[string]bool, sep string) string {
	s := name
	for i := 2; taken[s]; i++ {
		s = name + sep + strconv.Itoa(i)
	}
	taken[s] = true
	return s
}
