package vsphere

import (
	"context"
	"fmt"
	"strings"

	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type moref = types.ManagedObjectReference

// inventory is the name and parent of every VM, folder, datacenter and
// network under the root folder, read in one property-collector call. VM
// inventory paths (/DC1/vm/prod/web-01) are resolved from it without one
// finder call per VM.
type inventory struct {
	root   moref
	name   map[moref]string
	parent map[moref]moref
	vms    []moref
	dcs    []moref
	// netName maps a network's moref value and a portgroup's key to its
	// name, for NIC facts.
	netName map[string]string
	byPath  map[string]moref
	byName  map[string][]moref
}

// inventoryProps are what phase one reads, per type: only what paths and
// network names need, so it stays small for tens of thousands of VMs.
var inventoryProps = []types.PropertySpec{
	{Type: "VirtualMachine", PathSet: []string{"name", "parent"}},
	{Type: "Folder", PathSet: []string{"name", "parent"}},
	{Type: "Datacenter", PathSet: []string{"name", "parent"}},
	{Type: "Network", PathSet: []string{"name"}},
	{Type: "DistributedVirtualPortgroup", PathSet: []string{"name", "key"}},
}

// readInventory makes three calls whatever the inventory's size:
// CreateContainerView, RetrieveProperties, DestroyView. RetrieveProperties
// (not the paged ...Ex) returns every object in one response.
func readInventory(ctx context.Context, c *vim25.Client) (*inventory, error) {
	root := c.ServiceContent.RootFolder
	cv, err := methods.CreateContainerView(ctx, c, &types.CreateContainerView{
		This: *c.ServiceContent.ViewManager, Container: root, Recursive: true,
		Type: []string{"VirtualMachine", "Folder", "Datacenter", "Network"},
	})
	if err != nil {
		return nil, fmt.Errorf("create container view: %w", err)
	}
	view := cv.Returnval
	defer func() {
		// A view left behind only costs server memory until logout.
		_, _ = methods.DestroyView(context.WithoutCancel(ctx), c, &types.DestroyView{This: view})
	}()
	spec := types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{Obj: view, Skip: types.NewBool(true), SelectSet: []types.BaseSelectionSpec{
			&types.TraversalSpec{Type: "ContainerView", Path: "view"},
		}}},
		PropSet: inventoryProps,
	}
	res, err := methods.RetrieveProperties(ctx, c, &types.RetrieveProperties{
		This: c.ServiceContent.PropertyCollector, SpecSet: []types.PropertyFilterSpec{spec}})
	if err != nil {
		return nil, fmt.Errorf("retrieve inventory: %w", err)
	}
	return buildInventory(root, res.Returnval), nil
}

func buildInventory(root moref, objs []types.ObjectContent) *inventory {
	inv := &inventory{root: root, name: map[moref]string{}, parent: map[moref]moref{},
		netName: map[string]string{}, byPath: map[string]moref{}, byName: map[string][]moref{}}
	for _, oc := range objs {
		ref := oc.Obj
		var key string
		for _, p := range oc.PropSet {
			switch v := p.Val.(type) {
			case string:
				if p.Name == "name" {
					inv.name[ref] = v
				} else if p.Name == "key" {
					key = v
				}
			case types.ManagedObjectReference:
				if p.Name == "parent" {
					inv.parent[ref] = v
				}
			}
		}
		switch ref.Type {
		case "VirtualMachine":
			inv.vms = append(inv.vms, ref)
		case "Datacenter":
			inv.dcs = append(inv.dcs, ref)
		case "Folder":
		default: // networks of any kind
			inv.netName[ref.Value] = inv.name[ref]
			if key != "" {
				inv.netName[key] = inv.name[ref]
			}
		}
	}
	memo := map[moref]string{}
	for _, vm := range inv.vms {
		p := inv.path(vm, memo)
		if p != "" {
			inv.byPath[p] = vm
		}
		inv.byName[inv.name[vm]] = append(inv.byName[inv.name[vm]], vm)
	}
	return inv
}

// path builds an inventory path from the parent chain, or "" when the
// chain leaves what was read (a VM in a vApp has no folder parent).
func (inv *inventory) path(ref moref, memo map[moref]string) string {
	if ref == inv.root {
		return ""
	}
	if p, ok := memo[ref]; ok {
		return p
	}
	name, ok := inv.name[ref]
	parent, hasParent := inv.parent[ref]
	if !ok || !hasParent {
		memo[ref] = ""
		return ""
	}
	var p string
	if parent == inv.root {
		p = "/" + name
	} else if pp := inv.path(parent, memo); pp != "" {
		p = pp + "/" + name
	}
	memo[ref] = p
	return p
}

// lookup finds one VM by inventory path, datacenter-relative path or bare
// name. It returns the candidates: none (not found), one, or several (an
// ambiguous name), and a reason when the query cannot be resolved at all.
func (inv *inventory) lookup(q, datacenter string) ([]moref, string) {
	if q == "" {
		return nil, "the VM path is empty"
	}
	if strings.HasPrefix(q, "/") {
		if ref, ok := inv.byPath[strings.TrimSuffix(q, "/")]; ok {
			return []moref{ref}, ""
		}
		return nil, ""
	}
	dc := datacenter
	if dc == "" && len(inv.dcs) == 1 {
		dc = inv.name[inv.dcs[0]]
	}
	if strings.Contains(q, "/") {
		if dc == "" {
			return nil, fmt.Sprintf("%q is relative and no datacenter is set (there are %d)", q, len(inv.dcs))
		}
		return inv.lookup("/"+dc+"/vm/"+q, "")
	}
	var out []moref
	memo := map[moref]string{}
	for _, ref := range inv.byName[q] {
		if datacenter == "" || strings.HasPrefix(inv.path(ref, memo), "/"+datacenter+"/") {
			out = append(out, ref)
		}
	}
	return out, ""
}

// vmProps are what phase two reads for the VMs asked about: only what
// facts, fingerprint and findings use, since decoding the response is most
// of an observation's client-side cost (config.hardware.device dominates).
var vmProps = []string{
	"name", "config.instanceUuid", "config.changeVersion", "config.guestId",
	"config.firmware", "config.bootOptions", "config.hardware.numCPU", "config.hardware.memoryMB",
	"config.hardware.device", "config.keyId", "config.template", "runtime.powerState",
	"rootSnapshot", "layoutEx.file", "guest.guestFamily",
}

// readVMs reads vmProps of refs in one RetrieveProperties call.
func readVMs(ctx context.Context, c *vim25.Client, refs []moref) (map[moref]mo.VirtualMachine, error) {
	out := map[moref]mo.VirtualMachine{}
	if len(refs) == 0 {
		return out, nil
	}
	spec := types.PropertyFilterSpec{PropSet: []types.PropertySpec{{Type: "VirtualMachine", PathSet: vmProps}}}
	for _, r := range refs {
		spec.ObjectSet = append(spec.ObjectSet, types.ObjectSpec{Obj: r})
	}
	res, err := methods.RetrieveProperties(ctx, c, &types.RetrieveProperties{
		This: c.ServiceContent.PropertyCollector, SpecSet: []types.PropertyFilterSpec{spec}})
	if err != nil {
		return nil, fmt.Errorf("retrieve VM properties: %w", err)
	}
	var vms []mo.VirtualMachine
	if err := mo.LoadObjectContent(res.Returnval, &vms); err != nil {
		return nil, fmt.Errorf("decode VM properties: %w", err)
	}
	for _, vm := range vms {
		out[vm.Self] = vm
	}
	return out, nil
}
