package vsphere

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/vmware/govmomi/vim25/mo"

	"github.com/hypersdk/hyperagent/plugins"
)

// observed is one answered query.
type observed struct {
	plugins.VMObservation
	ref moref
	vm  mo.VirtualMachine
	inv *inventory
}

// ObserveVMs answers every query with a constant number of SOAP calls
// (CreateContainerView, two RetrieveProperties, DestroyView), however many
// VMs the inventory holds or the request names.
func (s *Source) ObserveVMs(ctx context.Context, req plugins.ObserveVMsRequest) (plugins.ObserveVMsResponse, error) {
	out := plugins.ObserveVMsResponse{VMs: map[string]plugins.VMObservation{}}
	if len(req.VMs) == 0 {
		return out, nil
	}
	obs, err := s.observe(ctx, req.VMs)
	if err != nil {
		return out, err
	}
	for addr, o := range obs {
		out.VMs[addr] = o.VMObservation
	}
	return out, nil
}

func (s *Source) observe(ctx context.Context, qs []plugins.VMQuery) (map[string]observed, error) {
	c, err := s.client(ctx)
	if err != nil {
		return nil, err
	}
	inv, err := readInventory(ctx, c.c)
	if err != nil {
		return nil, fmt.Errorf("observe VMs at %s: %w", s.set.where(), err)
	}
	out := make(map[string]observed, len(qs))
	found := map[string]moref{}
	var refs []moref
	seen := map[moref]bool{}
	for _, q := range qs {
		cands, why := inv.lookup(q.Path, s.set.datacenter)
		switch {
		case len(cands) == 1:
			found[q.Address] = cands[0]
			if !seen[cands[0]] {
				seen[cands[0]] = true
				refs = append(refs, cands[0])
			}
		case len(cands) > 1:
			out[q.Address] = observed{VMObservation: plugins.VMObservation{Findings: []plugins.Finding{
				errorf("ambiguous VM name", "%q names %d VMs: %s; use the inventory path", q.Path, len(cands), inv.paths(cands))}}}
		default:
			detail := fmt.Sprintf("no VM at %q in %s", q.Path, s.set.where())
			if why != "" {
				detail = why
			}
			out[q.Address] = observed{VMObservation: plugins.VMObservation{Findings: []plugins.Finding{
				errorf("VM not found", "%s", detail)}}}
		}
	}
	vms, err := readVMs(ctx, c.c, refs)
	if err != nil {
		return nil, fmt.Errorf("observe VMs at %s: %w", s.set.where(), err)
	}
	for _, q := range qs {
		ref, ok := found[q.Address]
		if !ok {
			continue
		}
		vm, ok := vms[ref]
		if !ok { // removed between the two calls
			out[q.Address] = observed{VMObservation: plugins.VMObservation{Findings: []plugins.Finding{
				errorf("VM not found", "%s disappeared while being observed", q.Path)}}}
			continue
		}
		out[q.Address] = observed{ref: ref, vm: vm, inv: inv, VMObservation: plugins.VMObservation{
			Found:       true,
			Fingerprint: fingerprint(vm),
			Facts:       facts(vm, inv),
			Findings:    s.findings(vm, q),
		}}
	}
	return out, nil
}

// paths lists the inventory paths of refs, sorted, for messages.
func (inv *inventory) paths(refs []moref) string {
	memo := map[moref]string{}
	var ps []string
	for _, r := range refs {
		p := inv.path(r, memo)
		if p == "" {
			p = inv.name[r] + " (" + r.Value + ")"
		}
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return strings.Join(ps, ", ")
}
