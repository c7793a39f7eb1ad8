package vsphere

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/hypersdk/hyperagent/plugins"
)

var _ plugins.Discoverer = (*Source)(nil)

// Discover lists the VMs under a folder with the calls ObserveVMs makes,
// whatever their number: the inventory (CreateContainerView,
// RetrieveProperties, DestroyView), then the properties of the VMs kept
// in one more RetrieveProperties. Facts, fingerprints and findings are
// observation's own.
func (s *Source) Discover(ctx context.Context, req plugins.DiscoverRequest) (plugins.DiscoverResponse, error) {
	var out plugins.DiscoverResponse
	if err := plugins.CheckMatch(req.Match); err != nil {
		return out, plugins.Terminal(err)
	}
	c, err := s.client(ctx)
	if err != nil {
		return out, err
	}
	inv, err := readInventory(ctx, c.c)
	if err != nil {
		return out, fmt.Errorf("discover VMs at %s: %w", s.set.where(), err)
	}
	folder, err := s.discoverFolder(inv, req.Folder)
	if err != nil {
		return out, err
	}
	memo := map[moref]string{}
	paths := map[moref]string{}
	var refs []moref
	for _, ref := range inv.vms {
		name := inv.name[ref]
		if !plugins.Matches(req.Match, name) {
			continue
		}
		p := inv.path(ref, memo)
		switch {
		case p == "":
			// A vApp's VM: its parent is the vApp, not a folder.
			if folder == "" {
				out.Skipped = append(out.Skipped, fmt.Sprintf("%s (%s): not in a VM folder (a vApp's VM?); a migration can name it by name", name, ref.Value))
			}
			continue
		case s.set.datacenter != "" && !strings.HasPrefix(p, "/"+s.set.datacenter+"/"):
			continue
		case folder != "" && !strings.HasPrefix(p, folder+"/"):
			continue
		}
		paths[ref] = p
		refs = append(refs, ref)
	}
	vms, err := readVMs(ctx, c.c, refs)
	if err != nil {
		return out, fmt.Errorf("discover VMs at %s: %w", s.set.where(), err)
	}
	known := knownVMs(inv, req.Known, s.set.datacenter)
	for _, ref := range refs {
		p := paths[ref]
		vm, ok := vms[ref]
		if !ok { // removed between the two calls
			continue
		}
		if vm.Config != nil && vm.Config.Template {
			out.Skipped = append(out.Skipped, p+": a template")
			continue
		}
		q := plugins.VMQuery{Path: p, PowerOff: req.PowerOff, ExportDir: req.ExportDir}
		out.VMs = append(out.VMs, plugins.DiscoveredVM{
			Path: p, Name: inv.name[ref], Folder: path.Dir(p), NamedBy: known[ref],
			Observation: plugins.VMObservation{Found: true, Fingerprint: fingerprint(vm), Facts: facts(vm, inv), Findings: s.findings(vm, q)},
		})
	}
	sort.Slice(out.VMs, func(i, j int) bool { return out.VMs[i].Path < out.VMs[j].Path })
	sort.Strings(out.Skipped)
	return out, nil
}

// discoverFolder resolves a folder as a VM path is resolved: absolute,
// or under the datacenter's VM folder. It must exist.
func (s *Source) discoverFolder(inv *inventory, folder string) (string, error) {
	folder = strings.TrimSuffix(folder, "/")
	if folder == "" {
		return "", nil
	}
	if !strings.HasPrefix(folder, "/") {
		dc := s.set.datacenter
		if dc == "" && len(inv.dcs) == 1 {
			dc = inv.name[inv.dcs[0]]
		}
		if dc == "" {
			return "", plugins.Terminal(fmt.Errorf("folder %q is relative and no datacenter is set (there are %d); give its inventory path", folder, len(inv.dcs)))
		}
		folder = "/" + dc + "/vm/" + folder
	}
	memo := map[moref]string{}
	for ref := range inv.name {
		if (ref.Type == "Folder" || ref.Type == "Datacenter") && inv.path(ref, memo) == folder {
			return folder, nil
		}
	}
	return "", plugins.Terminal(fmt.Errorf("no folder %q in %s", folder, s.set.where()))
}

// knownVMs resolves the existing migrations' vm values to the VMs they
// name; a VM named by several gets the first address in order.
func knownVMs(inv *inventory, known map[string]string, datacenter string) map[moref]string {
	addrs := make([]string, 0, len(known))
	for a := range known {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	out := map[moref]string{}
	for _, a := range addrs {
		if cands, _ := inv.lookup(known[a], datacenter); len(cands) == 1 {
			if _, dup := out[cands[0]]; !dup {
				out[cands[0]] = a
			}
		}
	}
	return out
}
