package main

import (
	"context"
	"flag"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/hypersdk/hyperagent/plugins/vsphere/vcsimtest"
)

// cmdVcsim is the script command
//
//	vcsim [-vms=N] [-folder=NAME:VM,VM...]... [-template=VM]
//
// It starts govmomi's vCenter simulator in the test process (the VPX
// model: datacenter DC0, N VMs named DC0_H0_VMi and DC0_C0_RP0_VMi, all
// powered on), moves the named VMs into new folders under /DC0/vm, turns
// one into a template, and sets VCSIM_URL, VCSIM_USER, VCSIM_PASSWORD and
// VCSIM_THUMBPRINT for the script. The simulator stops when the script
// ends.
func cmdVcsim(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! vcsim")
	}
	fs := flag.NewFlagSet("vcsim", flag.ContinueOnError)
	vms := fs.Int("vms", 4, "VMs (even)")
	var folders []string
	fs.Var(stringsFlag(&folders), "folder", "NAME:VM,VM... moved into /DC0/vm/NAME")
	template := fs.String("template", "", "a VM to power off and mark as a template")
	if err := fs.Parse(args); err != nil {
		ts.Fatalf("vcsim: %v", err)
	}
	srv, err := vcsimtest.Start(vcsimtest.Options{Machine: *vms / 2, Password: "vcsim-pw-3f9c2a"})
	ts.Check(err)
	ts.Defer(srv.Close)
	ctx := context.Background()
	c, err := srv.Client(ctx)
	ts.Check(err)
	defer func() { _ = c.Logout(ctx) }()
	f := find.NewFinder(c.Client)
	root, err := f.Folder(ctx, "/DC0/vm")
	ts.Check(err)
	for _, spec := range folders {
		name, list, ok := strings.Cut(spec, ":")
		if !ok {
			ts.Fatalf("vcsim: -folder=%s: want NAME:VM,VM", spec)
		}
		folder, err := root.CreateFolder(ctx, name)
		ts.Check(err)
		var refs []types.ManagedObjectReference
		for _, vm := range strings.Split(list, ",") {
			o, err := f.VirtualMachine(ctx, "/DC0/vm/"+vm)
			ts.Check(err)
			refs = append(refs, o.Reference())
		}
		task, err := folder.MoveInto(ctx, refs)
		ts.Check(err)
		ts.Check(task.Wait(ctx))
	}
	if *template != "" {
		vms, err := f.VirtualMachineList(ctx, "/DC0/vm/...")
		ts.Check(err)
		var vm *object.VirtualMachine
		for _, v := range vms {
			if v.Name() == *template {
				vm = v
			}
		}
		if vm == nil {
			ts.Fatalf("vcsim: no VM %s", *template)
		}
		task, err := vm.PowerOff(ctx)
		ts.Check(err)
		ts.Check(task.Wait(ctx))
		ts.Check(vm.MarkAsTemplate(ctx))
	}
	ts.Setenv("VCSIM_URL", srv.URL.String())
	ts.Setenv("VCSIM_USER", srv.Username)
	ts.Setenv("VCSIM_PASSWORD", srv.Password)
	ts.Setenv("VCSIM_THUMBPRINT", srv.Thumbprint)
}
