package vsphere

import (
	"context"
	"errors"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
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
	srv := startSim(t, vcsimtest.Options{Machine: 6})
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

	editDisk(ctx, t, vm("DC0_H0_VM4"), func(d *types.VirtualDisk) {
		flat := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		d.Backing = &types.VirtualDiskRawDiskMappingVer1BackingInfo{VirtualDeviceFileBackingInfo: flat.VirtualDeviceFileBackingInfo,
			LunUuid: "0200000000600508b1001c", CompatibilityMode: "physicalMode", DiskMode: string(types.VirtualDiskModePersistent)}
	})
	key := types.CryptoKeyId{KeyId: "key-1", ProviderId: &types.KeyProviderId{Id: "kms-1"}}
	encDisk := vm("DC0_H0_VM5")
	devs, err := encDisk.Device(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reconfigure(ctx, t, encDisk, types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{
		&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationEdit,
			Device:  devs.SelectByType((*types.VirtualDisk)(nil))[0],
			Backing: &types.VirtualDeviceConfigSpecBackingSpec{Crypto: &types.CryptoSpecEncrypt{CryptoKeyId: key}}}}})
	encVM := vm("DC0_C0_RP0_VM4")
	powerOffVM(ctx, t, encVM) // vSphere encrypts only a powered-off VM
	reconfigure(ctx, t, encVM, types.VirtualMachineConfigSpec{Crypto: &types.CryptoSpecEncrypt{CryptoKeyId: key}})
	reconfigure(ctx, t, vm("DC0_C0_RP0_VM5"), types.VirtualMachineConfigSpec{Firmware: "coreboot"})
	powerOffVM(ctx, t, vm("DC0_C0_RP0_VM3"))

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
		"raw device mapping":       {vm: "DC0_H0_VM4", powerOff: true, want: []finding{{plugins.SeverityError, "raw device mapping"}}},
		"encrypted disk":           {vm: "DC0_H0_VM5", powerOff: true, want: []finding{{plugins.SeverityError, "encrypted disk"}}},
		"encrypted VM":             {vm: "DC0_C0_RP0_VM4", want: []finding{{plugins.SeverityError, "VM is encrypted"}}},
		"unsupported firmware":     {vm: "DC0_C0_RP0_VM5", powerOff: true, want: []finding{{plugins.SeverityError, "unsupported firmware"}}},
		"powered off already":      {vm: "DC0_C0_RP0_VM3"},
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

// TestSpaceFindings compares free space with the bytes the VM's disks use
// on the datastore and with their capacity. vcsim's disk extents are empty
// files, so the allocated sizes are set here; statfs is the real one in
// TestFindings.
func TestSpaceFindings(t *testing.T) {
	const gib = int64(1) << 30
	vm := func(extents ...int64) mo.VirtualMachine {
		l := &types.VirtualMachineFileLayoutEx{File: []types.VirtualMachineFileLayoutExFileInfo{
			{Type: string(types.VirtualMachineFileLayoutExFileTypeConfig), Size: 100 * gib}, // not a disk: ignored
		}}
		for _, n := range extents {
			l.File = append(l.File, types.VirtualMachineFileLayoutExFileInfo{Type: string(types.VirtualMachineFileLayoutExFileTypeDiskExtent), Size: n})
		}
		return mo.VirtualMachine{LayoutEx: l}
	}
	tests := map[string]struct {
		vm       mo.VirtualMachine
		free     uint64
		statErr  error
		capacity int64
		want     []plugins.Severity
		summary  string
	}{
		"plenty":               {vm: vm(2 * gib), free: uint64(20 * gib), capacity: 10 * gib},
		"less than allocated":  {vm: vm(3*gib, 2*gib), free: uint64(4 * gib), capacity: 10 * gib, want: []plugins.Severity{plugins.SeverityError}, summary: "not enough free space"},
		"less than capacity":   {vm: vm(2 * gib), free: uint64(4 * gib), capacity: 10 * gib, want: []plugins.Severity{plugins.SeverityWarning}, summary: "free space may not suffice"},
		"nothing allocated":    {vm: vm(), free: uint64(gib), capacity: 10 * gib, want: []plugins.Severity{plugins.SeverityWarning}, summary: "free space may not suffice"},
		"statfs fails":         {vm: vm(gib), statErr: errors.New("permission denied"), capacity: gib, want: []plugins.Severity{plugins.SeverityWarning}, summary: "free space unknown"},
		"exactly the capacity": {vm: vm(gib), free: uint64(10 * gib), capacity: 10 * gib},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var asked string
			s := &Source{statfs: func(dir string) (uint64, error) { asked = dir; return tc.free, tc.statErr }}
			got := s.spaceFindings(tc.vm, plugins.VMQuery{Path: "/DC/vm/x", ExportDir: "/srv/exports/x"}, tc.capacity)
			if asked != "/srv/exports/x" {
				t.Errorf("statfs asked about %q", asked)
			}
			var sev []plugins.Severity
			for _, f := range got {
				sev = append(sev, f.Severity)
				if f.Summary != tc.summary {
					t.Errorf("summary %q, want %q", f.Summary, tc.summary)
				}
			}
			if d := cmp.Diff(tc.want, sev); d != "" {
				t.Errorf("severities (-want +got):\n%s", d)
			}
		})
	}
}

// TestFreeBytes reads the free space of an export directory yet to be
// created from its nearest existing ancestor.
func TestFreeBytes(t *testing.T) {
	dir := t.TempDir()
	want, err := freeBytes(dir)
	if err != nil || want == 0 {
		t.Fatalf("freeBytes(%s) = %d, %v", dir, want, err)
	}
	got, err := freeBytes(filepath.Join(dir, "not", "yet"))
	if err != nil {
		t.Fatal(err)
	}
	// Other processes write to the same filesystem meanwhile: allow 1 GiB.
	if diff := int64(got) - int64(want); diff > 1<<30 || diff < -(1<<30) {
		t.Errorf("free of a missing subdirectory %d, of its parent %d", got, want)
	}
	if _, err := freeBytes(filepath.Join(dir, "\x00")); err == nil {
		t.Error("freeBytes of an invalid path succeeded")
	}
}
