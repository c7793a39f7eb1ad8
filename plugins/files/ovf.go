package files

import (
	"encoding/xml"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/hypersdk/hyperagent/plugins"
)

// The OVF model: only what the facts need. Tags name local names only, so
// that OVF 1.x and 2.x envelopes (different namespaces, same names) and
// VMware's vmw: extensions all decode.
type ovfEnvelope struct {
	XMLName    xml.Name         `xml:"Envelope"`
	References []ovfFile        `xml:"References>File"`
	Disks      []ovfDisk        `xml:"DiskSection>Disk"`
	System     ovfVirtualSystem `xml:"VirtualSystem"`
}

type ovfFile struct {
	ID   string `xml:"id,attr"`
	Href string `xml:"href,attr"`
	Size int64  `xml:"size,attr"`
}

type ovfDisk struct {
	DiskID        string `xml:"diskId,attr"`
	FileRef       string `xml:"fileRef,attr"`
	Capacity      string `xml:"capacity,attr"`
	CapacityUnits string `xml:"capacityAllocationUnits,attr"`
	Format        string `xml:"format,attr"`
}

type ovfVirtualSystem struct {
	ID       string      `xml:"id,attr"`
	Name     string      `xml:"Name"`
	OS       ovfOS       `xml:"OperatingSystemSection"`
	Hardware []ovfHWSect `xml:"VirtualHardwareSection"`
}

type ovfOS struct {
	ID          string `xml:"id,attr"`
	OSType      string `xml:"osType,attr"` // vmw:osType, e.g. ubuntu64Guest
	Description string `xml:"Description"`
}

type ovfHWSect struct {
	Items   []ovfItem   `xml:"Item"`
	Storage []ovfItem   `xml:"StorageItem"`
	Eth     []ovfItem   `xml:"EthernetPortItem"`
	Config  []vmwConfig `xml:"Config"`
}

// ovfItem is a RASD item (rasd:, sasd: and epasd: share these names).
type ovfItem struct {
	InstanceID      string   `xml:"InstanceID"`
	ResourceType    int      `xml:"ResourceType"`
	ElementName     string   `xml:"ElementName"`
	VirtualQuantity string   `xml:"VirtualQuantity"`
	AllocationUnits string   `xml:"AllocationUnits"`
	HostResource    []string `xml:"HostResource"`
	Parent          string   `xml:"Parent"`
	AddressOnParent string   `xml:"AddressOnParent"`
	Address         string   `xml:"Address"`
	Connection      []string `xml:"Connection"`
}

type vmwConfig struct {
	Key   string `xml:"key,attr"`
	Value string `xml:"value,attr"`
}

// CIM resource types (DSP1041) the facts use.
const (
	rtProcessor = 3
	rtMemory    = 4
	rtEthernet  = 10
	rtDisk      = 17
)

// ovfVM is what an OVF says: facts, and each disk's file relative to the
// descriptor's directory, in boot order.
type ovfVM struct {
	Facts plugins.VMFacts
	Files []string // hrefs of the disks, parallel to Facts.Disks
	Sizes []int64  // their sizes as References declares them; 0 when absent
}

func parseOVF(r io.Reader) (*ovfEnvelope, error) {
	var env ovfEnvelope
	dec := xml.NewDecoder(io.LimitReader(r, maxDescriptor))
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("parse OVF: %w", err)
	}
	return &env, nil
}

// maxDescriptor bounds what is read of an OVF: real ones are kilobytes.
const maxDescriptor = 16 << 20

var diskIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// facts turns the envelope into the VM's facts, disks in boot order.
func (env *ovfEnvelope) facts() (ovfVM, error) {
	vs := env.System
	f := plugins.VMFacts{Name: vs.Name, GuestID: vs.OS.OSType, Firmware: "bios", OSFamily: osFamily(vs.OS.OSType, vs.OS.Description),
		Disks: []plugins.DiskFact{}, NICs: []plugins.NIC{}}
	if f.Name == "" {
		f.Name = vs.ID
	}
	var items []ovfItem
	for _, hw := range vs.Hardware {
		items = append(append(append(items, hw.Items...), hw.Storage...), hw.Eth...)
		for _, c := range hw.Config {
			switch c.Key {
			case "firmware":
				if c.Value == "efi" {
					f.Firmware = "uefi"
				}
			case "bootOptions.efiSecureBootEnabled", "uefi.secureBoot.enabled":
				f.SecureBoot = c.Value == "true"
			}
		}
	}
	for _, it := range items {
		switch it.ResourceType {
		case rtProcessor:
			f.CPUs, _ = strconv.Atoi(strings.TrimSpace(it.VirtualQuantity))
		case rtMemory:
			mib, err := toMiB(it.VirtualQuantity, it.AllocationUnits)
			if err != nil {
				return ovfVM{}, err
			}
			f.MemoryMiB = mib
		case rtEthernet:
			nic := plugins.NIC{ID: nicID(it, len(f.NICs)), MAC: strings.ToLower(strings.TrimSpace(it.Address))}
			if len(it.Connection) > 0 {
				nic.Network = strings.TrimSpace(it.Connection[0])
			}
			f.NICs = append(f.NICs, nic)
		}
	}
	found, err := env.disks(items)
	if err != nil {
		return ovfVM{}, err
	}
	vm := ovfVM{}
	seen := map[string]bool{}
	for i, d := range found {
		if !diskIDRe.MatchString(d.fact.ID) || seen[d.fact.ID] {
			d.fact.ID = fmt.Sprintf("disk-%d", i)
		}
		seen[d.fact.ID] = true
		d.fact.BootOrder = i
		f.Disks = append(f.Disks, d.fact)
		vm.Files = append(vm.Files, d.href)
		vm.Sizes = append(vm.Sizes, d.size)
	}
	vm.Facts = f
	return vm, nil
}

// diskAt is a disk item resolved through DiskSection and References, with
// where it sits: its controller's position among the items, and its unit.
type diskAt struct {
	fact       plugins.DiskFact
	href       string
	size       int64
	ctrl, unit int
}

// disks resolves the disk items, sorted as a firmware would boot them: by
// the position of their controller in the hardware section, then by their
// unit number on it.
func (env *ovfEnvelope) disks(items []ovfItem) ([]diskAt, error) {
	pos := map[string]int{}
	for i, it := range items {
		pos[it.InstanceID] = i
	}
	files := map[string]ovfFile{}
	for _, r := range env.References {
		files[r.ID] = r
	}
	disks := map[string]ovfDisk{}
	for _, d := range env.Disks {
		disks[d.DiskID] = d
	}
	var found []diskAt
	for i, it := range items {
		if it.ResourceType != rtDisk || len(it.HostResource) == 0 {
			continue
		}
		ref := strings.TrimSpace(it.HostResource[0])
		ref = strings.TrimPrefix(strings.TrimPrefix(ref, "ovf:"), "/disk/")
		d, ok := disks[ref]
		if !ok {
			return nil, fmt.Errorf("disk item %q refers to %q, which DiskSection does not declare", it.ElementName, it.HostResource[0])
		}
		file, ok := files[d.FileRef]
		if !ok {
			return nil, fmt.Errorf("disk %q refers to file %q, which References does not declare", d.DiskID, d.FileRef)
		}
		capacity, err := toBytes(d.Capacity, d.CapacityUnits)
		if err != nil {
			return nil, fmt.Errorf("disk %q: %w", d.DiskID, err)
		}
		unit, _ := strconv.Atoi(strings.TrimSpace(it.AddressOnParent))
		ctrl, ok := pos[it.Parent]
		if !ok {
			ctrl = i
		}
		found = append(found, diskAt{
			fact: plugins.DiskFact{ID: d.DiskID, Label: it.ElementName, CapacityBytes: capacity, Backing: file.Href},
			href: file.Href, size: file.Size, ctrl: ctrl, unit: unit,
		})
	}
	sort.SliceStable(found, func(i, j int) bool {
		if found[i].ctrl != found[j].ctrl {
			return found[i].ctrl < found[j].ctrl
		}
		return found[i].unit < found[j].unit
	})
	return found, nil
}

func nicID(it ovfItem, i int) string {
	if it.InstanceID != "" && diskIDRe.MatchString(it.InstanceID) {
		return "nic-" + it.InstanceID
	}
	return fmt.Sprintf("nic-%d", i)
}

// checkHref refuses file references that leave the descriptor's directory.
func checkHref(href string) error {
	if href == "" || path.IsAbs(href) || strings.Contains(href, "\\") || strings.Contains(href, "://") {
		return fmt.Errorf("file reference %q is not a relative path", href)
	}
	for _, el := range strings.Split(href, "/") {
		if el == ".." {
			return fmt.Errorf("file reference %q leaves the OVF's directory", href)
		}
	}
	return nil
}

// osFamily guesses linux | windows | unknown from VMware's guest id or the
// OS description.
func osFamily(osType, desc string) string {
	s := strings.ToLower(osType + " " + desc)
	switch {
	case strings.HasPrefix(s, "win") || strings.Contains(s, "windows"):
		return "windows"
	case strings.TrimSpace(s) == "":
		return "unknown"
	}
	for _, l := range []string{"linux", "ubuntu", "debian", "rhel", "centos", "sles", "suse", "fedora", "oracle", "rocky", "alma", "photon", "coreos", "amazon"} {
		if strings.Contains(s, l) {
			return "linux"
		}
	}
	return "unknown"
}
