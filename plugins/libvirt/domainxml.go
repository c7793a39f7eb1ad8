package libvirt

import (
	"fmt"
	"path/filepath"

	"libvirt.org/go/libvirtxml"

	"github.com/hypersdk/hyperagent/plugins"
)

// domainSpec is everything the domain XML is built from, resolved: sizes
// chosen, disks placed, networks mapped.
type domainSpec struct {
	Name      string
	UUID      string        // empty: libvirt assigns one
	Type      string        // kvm, qemu, test: what the connection offers
	Owner     plugins.Owner // recorded in our metadata
	MemoryMiB int64
	VCPUs     int
	UEFI      bool
	Secure    bool
	Machine   string
	CPUMode   string
	Disks     []placedDisk // in boot order
	NICs      []placedNIC
	Firmware  firmwarePaths
}

type placedDisk struct {
	Path   string
	Format string // qcow2 | raw
}

type placedNIC struct {
	MAC string // empty: libvirt generates one
	Net netRef
}

type firmwarePaths struct {
	Loader, Vars, SecureLoader, SecureVars, NVRAMDir string
}

// buildDomain turns a spec into libvirt's domain model. Every disk is on
// virtio in boot order (vda boots first), every NIC is virtio.
func buildDomain(s domainSpec) (*libvirtxml.Domain, error) {
	if s.MemoryMiB <= 0 || s.VCPUs <= 0 {
		return nil, fmt.Errorf("domain %s: memory (%d MiB) and vcpus (%d) must be positive", s.Name, s.MemoryMiB, s.VCPUs)
	}
	if len(s.Disks) == 0 {
		return nil, fmt.Errorf("domain %s: no disks", s.Name)
	}
	d := &libvirtxml.Domain{
		Type:     s.Type,
		Name:     s.Name,
		UUID:     s.UUID,
		Metadata: &libvirtxml.DomainMetadata{XML: metadataXML(s.Owner)},
		Memory:   &libvirtxml.DomainMemory{Value: uint(s.MemoryMiB), Unit: "MiB"},
		VCPU:     &libvirtxml.DomainVCPU{Placement: "static", Value: uint(s.VCPUs)},
		OS: &libvirtxml.DomainOS{
			Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: s.Machine, Type: "hvm"},
		},
		// UEFI on x86 needs ACPI; every guest a VMware VM was expects both.
		Features: &libvirtxml.DomainFeatureList{
			ACPI: &libvirtxml.DomainFeature{},
			APIC: &libvirtxml.DomainFeatureAPIC{},
		},
		Devices: &libvirtxml.DomainDeviceList{},
	}
	if s.CPUMode != "" {
		d.CPU = &libvirtxml.DomainCPU{Mode: s.CPUMode}
	}
	if s.UEFI {
		loader, vars := s.Firmware.Loader, s.Firmware.Vars
		secure := "no"
		if s.Secure {
			loader, vars, secure = s.Firmware.SecureLoader, s.Firmware.SecureVars, "yes"
			// Secure boot firmware keeps its variables in SMM.
			d.Features.SMM = &libvirtxml.DomainFeatureSMM{State: "on"}
		}
		d.OS.Loader = &libvirtxml.DomainLoader{Path: loader, Readonly: "yes", Secure: secure, Type: "pflash"}
		d.OS.NVRam = &libvirtxml.DomainNVRam{
			NVRam:    filepath.Join(s.Firmware.NVRAMDir, s.Name+"_VARS.fd"),
			Template: vars,
		}
	}
	for i, disk := range s.Disks {
		if disk.Format != "qcow2" && disk.Format != "raw" {
			return nil, plugins.Terminal(fmt.Errorf("domain %s: disk %s has format %q; libvirt disks here are qcow2 or raw", s.Name, disk.Path, disk.Format))
		}
		d.Devices.Disks = append(d.Devices.Disks, libvirtxml.DomainDisk{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: disk.Format},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: disk.Path}},
			Target: &libvirtxml.DomainDiskTarget{Dev: virtioDev(i), Bus: "virtio"},
			Boot:   &libvirtxml.DomainDeviceBoot{Order: uint(i + 1)},
		})
	}
	for _, nic := range s.NICs {
		iface := libvirtxml.DomainInterface{
			Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
			Source: &libvirtxml.DomainInterfaceSource{},
		}
		if nic.MAC != "" {
			iface.MAC = &libvirtxml.DomainInterfaceMAC{Address: nic.MAC}
		}
		if nic.Net.Bridge != "" {
			iface.Source.Bridge = &libvirtxml.DomainInterfaceSourceBridge{Bridge: nic.Net.Bridge}
		} else {
			iface.Source.Network = &libvirtxml.DomainInterfaceSourceNetwork{Network: nic.Net.Network}
		}
		d.Devices.Interfaces = append(d.Devices.Interfaces, iface)
	}
	return d, nil
}

// virtioDev names the i-th virtio disk: vda … vdz, vdaa …, as the kernel does.
func virtioDev(i int) string {
	name := ""
	for n := i; ; n = n/26 - 1 {
		name = string(rune('a'+n%26)) + name
		if n < 26 {
			break
		}
	}
	return "vd" + name
}
