package vsphere

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/hypersdk/hyperagent/plugins"
)

// vmDisk is a virtual disk with what findings and export need.
type vmDisk struct {
	fact      plugins.DiskFact
	key       int32
	ctrlType  string // e.g. VirtualLsiLogicController, for matching NFC device keys
	bus, unit int32
	ord       int // position among the VM's disks in device order
	backing   types.BaseVirtualDeviceBackingInfo
}

// disks lists the VM's disks in boot order: the disks config.bootOptions
// names first, in its order, then the rest by controller kind, bus and unit.
func disks(vm mo.VirtualMachine) []vmDisk {
	if vm.Config == nil {
		return nil
	}
	devs := object.VirtualDeviceList(vm.Config.Hardware.Device)
	var out []vmDisk
	for i, d := range devs.SelectByType((*types.VirtualDisk)(nil)) {
		disk := d.(*types.VirtualDisk)
		vd := vmDisk{key: disk.Key, backing: disk.Backing, ord: i}
		kind := "disk"
		if disk.ControllerKey != 0 {
			if c := devs.FindByKey(disk.ControllerKey); c != nil {
				kind = devs.Type(c) // scsi, sata, nvme, ide
				vd.ctrlType = fmt.Sprintf("%T", c)[len("*types."):]
				if bc, ok := c.(types.BaseVirtualController); ok {
					vd.bus = bc.GetVirtualController().BusNumber
				}
			}
		}
		if disk.UnitNumber != nil {
			vd.unit = *disk.UnitNumber
		}
		vd.fact = plugins.DiskFact{
			ID:            fmt.Sprintf("%s%d-%d", kind, vd.bus, vd.unit),
			CapacityBytes: diskCapacity(disk),
			Backing:       backingFile(disk.Backing),
		}
		if info := disk.DeviceInfo; info != nil {
			vd.fact.Label = info.GetDescription().Label
		}
		out = append(out, vd)
	}
	rank := map[int32]int{}
	if vm.Config.BootOptions != nil {
		for i, b := range vm.Config.BootOptions.BootOrder {
			if bd, ok := b.(*types.VirtualMachineBootOptionsBootableDiskDevice); ok {
				if _, seen := rank[bd.DeviceKey]; !seen {
					rank[bd.DeviceKey] = i
				}
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		ri, iok := rank[out[i].key]
		rj, jok := rank[out[j].key]
		if iok != jok {
			return iok
		}
		if iok && ri != rj {
			return ri < rj
		}
		return out[i].fact.ID < out[j].fact.ID
	})
	for i := range out {
		out[i].fact.BootOrder = i
	}
	return out
}

func diskCapacity(d *types.VirtualDisk) int64 {
	if d.CapacityInBytes > 0 {
		return d.CapacityInBytes
	}
	return d.CapacityInKB * 1024
}

func backingFile(b types.BaseVirtualDeviceBackingInfo) string {
	if f, ok := b.(types.BaseVirtualDeviceFileBackingInfo); ok {
		return f.GetVirtualDeviceFileBackingInfo().FileName
	}
	return ""
}

// facts are the VM's facts the later steps need.
func facts(vm mo.VirtualMachine, inv *inventory) plugins.VMFacts {
	f := plugins.VMFacts{Name: vm.Name, PowerState: string(vm.Runtime.PowerState), Disks: []plugins.DiskFact{}, NICs: []plugins.NIC{}}
	if vm.Config == nil {
		f.OSFamily, f.Firmware = "unknown", "unknown"
		return f
	}
	c := vm.Config
	f.UUID = c.InstanceUuid
	f.GuestID = c.GuestId
	f.OSFamily = osFamily(c.GuestId, guestFamily(vm))
	f.Firmware = firmware(c.Firmware)
	if c.BootOptions != nil && c.BootOptions.EfiSecureBootEnabled != nil {
		f.SecureBoot = *c.BootOptions.EfiSecureBootEnabled
	}
	f.CPUs = int(c.Hardware.NumCPU)
	f.MemoryMiB = int64(c.Hardware.MemoryMB)
	for _, d := range disks(vm) {
		f.Disks = append(f.Disks, d.fact)
	}
	devs := object.VirtualDeviceList(c.Hardware.Device)
	for _, d := range devs.SelectByType((*types.VirtualEthernetCard)(nil)) {
		card := d.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
		f.NICs = append(f.NICs, plugins.NIC{ID: devs.Name(d), MAC: card.MacAddress, Network: networkName(card.Backing, inv)})
	}
	return f
}

func guestFamily(vm mo.VirtualMachine) string {
	if vm.Guest != nil {
		return vm.Guest.GuestFamily
	}
	return ""
}

// firmware maps vSphere's firmware to hyperagent's words. vSphere leaves it
// unset for BIOS VMs created by old versions.
func firmware(fw string) string {
	switch fw {
	case "efi":
		return "uefi"
	case "bios", "":
		return "bios"
	}
	return fw
}

// osFamily reads the guest OS family from the running guest when VMware
// Tools reports it, else from the configured guestId.
func osFamily(guestID, family string) string {
	switch family {
	case "windowsGuest":
		return "windows"
	case "linuxGuest":
		return "linux"
	}
	id := strings.ToLower(guestID)
	switch {
	case strings.HasPrefix(id, "win"):
		return "windows"
	case strings.Contains(id, "linux"):
		return "linux"
	}
	for _, p := range []string{"rhel", "centos", "ubuntu", "debian", "sles", "suse", "opensuse", "fedora",
		"oracle", "asianux", "mandr", "turbo", "redhat", "coreos", "photon", "rocky", "alma", "amazon", "genericlinux"} {
		if strings.HasPrefix(id, p) {
			return "linux"
		}
	}
	return "unknown"
}

func networkName(b types.BaseVirtualDeviceBackingInfo, inv *inventory) string {
	switch b := b.(type) {
	case *types.VirtualEthernetCardNetworkBackingInfo:
		if b.Network != nil && inv != nil {
			if n := inv.netName[b.Network.Value]; n != "" {
				return n
			}
		}
		return b.DeviceName
	case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
		if inv != nil {
			if n := inv.netName[b.Port.PortgroupKey]; n != "" {
				return n
			}
		}
		return b.Port.PortgroupKey
	case *types.VirtualEthernetCardOpaqueNetworkBackingInfo:
		return b.OpaqueNetworkId
	}
	return ""
}

// fingerprint changes whenever what an export would produce may change:
// the instance, the config version (bumped by every reconfigure), the power
// state, each disk's key, size and backing, and whether snapshots exist.
func fingerprint(vm mo.VirtualMachine) string {
	h := sha256.New()
	if vm.Config != nil {
		fmt.Fprintf(h, "uuid=%s\nchange=%s\n", vm.Config.InstanceUuid, vm.Config.ChangeVersion)
	}
	fmt.Fprintf(h, "power=%s\nsnapshots=%t\n", vm.Runtime.PowerState, len(vm.RootSnapshot) > 0)
	for _, d := range disks(vm) {
		fmt.Fprintf(h, "disk=%d %d %T %s\n", d.key, d.fact.CapacityBytes, d.backing, d.fact.Backing)
	}
	return hex.EncodeToString(h.Sum(nil))
}
