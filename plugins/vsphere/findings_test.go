package vsphere

import (
	"context"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/vsphere/vcsimtest"
)

// editDisk reconfigures the VM's first disk.
func editDisk(ctx context.Context, t *testing.T, vm *object.VirtualMachine, edit func(*types.VirtualDisk)) {
	t.Helper()
	devs, err := vm.Device(ctx)
	if err != nil {
		t.Fatal(err)
	}
	disk := devs.SelectByType((*types.VirtualDisk)(nil))[0].(*types.VirtualDisk)
	edit(disk)
	if err := vm.EditDevice(ctx, disk); err != nil {
		t.Fatal(err)
	}
}

func reconfigure(ctx context.Context, t *testing.T, vm *object.VirtualMachine, spec types.VirtualMachineConfigSpec) {
	t.Helper()
	task, err := vm.Reconfigure(ctx, spec)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func powerOffVM(ctx context.Context, t *testing.T, vm *object.VirtualMachine) {
	t.Helper()
	task, err := vm.PowerOff(ctx)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestFindings(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{Machine: 4})
	ctx := context.Background()
	_, f := admin(t, srv)
	vm := func(name string) *object.VirtualMachine { return findVM(t, f, "/DC0/vm/"+name) }

	task, err := vm("DC0_H0_VM1").CreateSnapshot(ctx, "before", "", false, false)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	editDisk(ctx, t, vm("DC0_H0_VM2"), func(d *types.VirtualDisk) {
		d.Backing.(*types.VirtualDiskFlatVer2BackingInfo).DiskMode = string(types.VirtualDiskModeIndependent_persistent)
	})
	editDisk(ctx, t, vm("DC0_H0_VM3"), func(d *types.VirtualDisk) {
		d.Backing.(*types.VirtualDiskFlatVer2BackingInfo).Sharing = string(types.VirtualDiskSharingSharingMultiWriter)
	})
	editDisk(ctx, t, vm("DC0_C0_RP0_VM0"), func(d *types.VirtualDisk) {
		d.CapacityInKB, d.CapacityInBytes = 1<<30, 1<<40 // 1 TiB: more than the test machine has free
	})
	secure := true
	reconfigure(ctx, t, vm("DC0_C0_RP0_VM1"), types.VirtualMachineConfigSpec{Firmware: "efi",
		BootOptions: &types.VirtualMachineBootOptions{EfiSecureBootEnabled: &secure}})
	// vCenter (and vcsim) mark only a powered-off VM as a template.
	tmpl := vm("DC0_C0_RP0_VM2")
	powerOffVM(ctx, t, tmpl)
	if err := tmpl.MarkAsTemplate(ctx); err != nil {
		t.Fatal(err)
	}

	type finding struct {
		Severity plugins.Severity
		Summary  string
	}
	tests := map[string]struct {
		vm       string
		powerOff bool
		want     []finding
	}{
		"clean":                    {vm: "DC0_H0_VM0", powerOff: true},
		"powered on, no power_off": {vm: "DC0_H0_VM0", want: []finding{{plugins.SeverityError, "VM is poweredOn"}}},
		"snapshots":                {vm: "DC0_H0_VM1", powerOff: true, want: []finding{{plugins.SeverityWarning, "VM has snapshots"}}},
		"independent disk":         {vm: "DC0_H0_VM2", powerOff: true, want: []finding{{plugins.SeverityWarning, "independent disk"}}},
		"multi-writer disk":        {vm: "DC0_H0_VM3", powerOff: true, want: []finding{{plugins.SeverityError, "shared disk"}}},
		"disks larger than free":   {vm: "DC0_C0_RP0_VM0", powerOff: true, want: []finding{{plugins.SeverityWarning, "free space may not suffice"}}},
		"uefi":                     {vm: "DC0_C0_RP0_VM1", powerOff: true},
		"template":                 {vm: "DC0_C0_RP0_VM2", powerOff: true, want: []finding{{plugins.SeverityError, "VM is a template"}}},
	}
	s := newTestSource(t, blockConfig(srv, nil))
	dir := t.TempDir()
	var qs []plugins.VMQuery
	for name, tc := range tests {
		qs = append(qs, plugins.VMQuery{Address: name, Path: "/DC0/vm/" + tc.vm, PowerOff: tc.powerOff, ExportDir: dir})
	}
	res, err := s.ObserveVMs(ctx, plugins.ObserveVMsRequest{VMs: qs})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range tests {
		o := res.VMs[name]
		if !o.Found {
			t.Errorf("%s: not found", name)
			continue
		}
		var got []finding
		for _, fd := range o.Findings {
			got = append(got, finding{fd.Severity, fd.Summary})
			t.Logf("%s: %s: %s: %s", name, fd.Severity, fd.Summary, fd.Detail)
		}
		sort.Slice(got, func(i, j int) bool { return got[i].Summary < got[j].Summary })
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%s: findings (-want +got):\n%s", name, d)
		}
	}
	uefi := res.VMs["uefi"].Facts
	if uefi.Firmware != "uefi" || !uefi.SecureBoot {
		t.Errorf("efi VM facts: firmware %q secure boot %v, want uefi and true", uefi.Firmware, uefi.SecureBoot)
	}
	if res.VMs["snapshots"].Fingerprint == res.VMs["clean"].Fingerprint {
		t.Error("fingerprints of different VMs agree")
	}
}

// TestFingerprintMoves: a change to the disks or the power state changes
// the fingerprint; observing again without changes does not.
func TestFingerprintMoves(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	ctx := context.Background()
	_, f := admin(t, srv)
	s := newTestSource(t, blockConfig(srv, nil))
	fp := func() string {
		o, err := observeOne(ctx, s, "/DC0/vm/DC0_H0_VM0")
		if err != nil || !o.Found {
			t.Fatal(err, o.Findings)
		}
		return o.Fingerprint
	}
	first := fp()
	if again := fp(); again != first {
		t.Fatalf("fingerprint moved without a change: %s then %s", first, again)
	}
	vm := findVM(t, f, "/DC0/vm/DC0_H0_VM0")
	editDisk(ctx, t, vm, func(d *types.VirtualDisk) { d.CapacityInKB, d.CapacityInBytes = 0, d.CapacityInBytes+1<<30 })
	grown := fp()
	if grown == first {
		t.Error("fingerprint unchanged after growing a disk")
	}
	task, err := vm.PowerOff(ctx)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	if fp() == grown {
		t.Error("fingerprint unchanged after power-off")
	}
}
