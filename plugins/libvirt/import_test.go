package libvirt

import (
	"fmt"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/hypersdk/hyperagent/plugins"
)

// defineByHand defines a domain as an administrator would, with the
// given disk devices.
func defineByHand(t *testing.T, tg *Target, name string, disks ...libvirtxml.DomainDisk) {
	t.Helper()
	d := &libvirtxml.Domain{Type: "test", Name: name, Memory: &libvirtxml.DomainMemory{Value: 256, Unit: "MiB"},
		VCPU: &libvirtxml.DomainVCPU{Value: 1}, OS: &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Type: "hvm", Arch: "x86_64"}},
		Devices: &libvirtxml.DomainDeviceList{Disks: disks}}
	redefine(t, tg, d)
	t.Cleanup(func() { undefine(t, tg, name) })
}

func fileDisk(path, format, dev string) libvirtxml.DomainDisk {
	return libvirtxml.DomainDisk{Device: "disk", Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: format},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}},
		Target: &libvirtxml.DomainDiskTarget{Dev: dev, Bus: "virtio"}}
}

// TestImportDomain: a domain defined by hand whose disks are what the
// migration would define is adopted — its owner recorded in libvirt's
// metadata, its disks hashed, its digest the one observation computes, so
// the next observation finds it the migration's and unchanged. Importing
// again for the same owner is accepted; for another, refused.
func TestImportDomain(t *testing.T) {
	tg := newTestTarget(t, testConfig(t))
	ctx := ctxT(t)
	dir := t.TempDir()
	boot := makeDisk(t, dir, "boot", "qcow2", 0)
	data := makeDiskSized(t, dir, "data", "qcow2", 1, "32M")
	name := uniqueName("ha-import")
	cdrom := libvirtxml.DomainDisk{Device: "cdrom", Target: &libvirtxml.DomainDiskTarget{Dev: "hdc", Bus: "ide"}}
	defineByHand(t, tg, name, fileDisk(boot.Path, "qcow2", "vda"), cdrom, fileDisk(data.Path, "qcow2", "vdb"))
	owner := plugins.Owner{Campaign: "c-1", Address: "migration.web"}
	req := plugins.ImportDomainRequest{Address: owner.Address, Campaign: owner.Campaign, Name: name,
		Disks: []plugins.WantDisk{{ID: "scsi0-0", Format: "qcow2", CapacityBytes: 16 << 20}, {ID: "scsi0-1", Format: "qcow2", CapacityBytes: 32 << 20}}}
	res, err := tg.ImportDomain(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	want := []plugins.Output{
		{DiskID: "scsi0-0", Path: boot.Path, Format: "qcow2", Size: boot.Size, SHA256: boot.SHA256, BootOrder: 0},
		{DiskID: "scsi0-1", Path: data.Path, Format: "qcow2", Size: data.Size, SHA256: data.SHA256, BootOrder: 1},
	}
	if fmt.Sprint(res.Outputs) != fmt.Sprint(want) || len(res.Domain.Disks) != 2 || res.Domain.Disks[1].SHA256 != data.SHA256 {
		t.Errorf("outputs %+v, disks %+v; want %+v", res.Outputs, res.Domain.Disks, want)
	}
	obs, err := tg.ObserveDomains(ctx, plugins.ObserveDomainsRequest{Domains: []plugins.DomainQuery{{Address: owner.Address, Campaign: owner.Campaign, Name: name}}})
	if err != nil {
		t.Fatal(err)
	}
	o := obs.Domains[owner.Address]
	if !o.Ours || o.Owner != owner || o.Digest != res.Domain.Digest || o.UUID != res.Domain.UUID || len(o.Findings) != 0 {
		t.Errorf("observed after import: %+v; import returned %+v", o, res.Domain)
	}
	if _, err := tg.ImportDomain(ctx, req); err != nil {
		t.Errorf("importing again for the same owner: %v", err)
	}
	other := req
	other.Campaign = "c-2"
	if _, err := tg.ImportDomain(ctx, other); err == nil || !plugins.IsTerminal(err) || !strings.Contains(err.Error(), "belongs to migration.web of campaign c-1") {
		t.Errorf("another campaign's import: %v", err)
	}
}

// TestImportDomainRefusals: each difference from what the migration would
// define is named, all at once, and the domain is left as it was.
func TestImportDomainRefusals(t *testing.T) {
	tg := newTestTarget(t, testConfig(t))
	ctx := ctxT(t)
	dir := t.TempDir()
	q16 := makeDisk(t, dir, "q16", "qcow2", 0)
	raw := makeDisk(t, dir, "raw16", "raw", 0)
	q8 := makeDiskSized(t, dir, "q8", "qcow2", 0, "8M")
	want16 := []plugins.WantDisk{{ID: "d0", Format: "qcow2", CapacityBytes: 16 << 20}}
	tests := map[string]struct {
		disks []libvirtxml.DomainDisk
		want  []plugins.WantDisk
		err   string
	}{
		"disk count": {[]libvirtxml.DomainDisk{fileDisk(q16.Path, "qcow2", "vda")}, append(want16, want16[0]), "it has 1 disk(s); the VM has 2"},
		"format":     {[]libvirtxml.DomainDisk{fileDisk(raw.Path, "raw", "vda")}, want16, "is raw; the migration converts to qcow2"},
		"read as":    {[]libvirtxml.DomainDisk{fileDisk(q16.Path, "raw", "vda")}, want16, "is qcow2, but the domain reads it as raw"},
		"size":       {[]libvirtxml.DomainDisk{fileDisk(q8.Path, "qcow2", "vda")}, want16, "virtual size of 8.0 MiB (8388608 bytes); the VM's disk has 16.0 MiB (16777216 bytes)"},
		"missing":    {[]libvirtxml.DomainDisk{fileDisk(dir+"/gone.qcow2", "qcow2", "vda")}, want16, "gone.qcow2: no such file or directory"},
		"not a file": {[]libvirtxml.DomainDisk{{Device: "disk", Source: &libvirtxml.DomainDiskSource{Block: &libvirtxml.DomainDiskSourceBlock{Dev: "/dev/null"}},
			Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"}}}, want16, "disk 1 (the VM's d0) is not a file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dom := uniqueName("ha-refuse")
			defineByHand(t, tg, dom, tc.disks...)
			before := domainXML(t, tg, dom)
			_, err := tg.ImportDomain(ctx, plugins.ImportDomainRequest{Address: "migration.m", Campaign: "c", Name: dom, Disks: tc.want})
			if err == nil || !plugins.IsTerminal(err) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want one saying %q", err, tc.err)
			}
			if after := domainXML(t, tg, dom); after.Metadata != nil && strings.Contains(after.Metadata.XML, "hyperagent") || before.UUID != after.UUID {
				t.Errorf("the refused domain was changed: %+v", after.Metadata)
			}
		})
	}
	_, err := tg.ImportDomain(ctx, plugins.ImportDomainRequest{Address: "migration.m", Campaign: "c", Name: uniqueName("ha-none"), Disks: want16})
	if err == nil || !strings.Contains(err.Error(), "no domain named") {
		t.Errorf("missing domain: %v", err)
	}
}
