package files

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// ovfSpec describes an OVF fixture the way vSphere writes one.
type ovfSpec struct {
	Name     string
	CPUs     int
	Memory   string // VirtualQuantity
	MemUnits string // AllocationUnits
	EFI      bool
	Secure   bool
	OSType   string
	Disks    []ovfDiskSpec // in the order the items appear
	NICs     []ovfNICSpec
}

type ovfDiskSpec struct {
	ID, File string
	Ctrl     int // 0: SCSI controller 0 (InstanceID 3), 1: SCSI controller 1 (InstanceID 4)
	Unit     int
	Capacity int64 // bytes * 2^20 units, in MiB
	Size     int64 // of the file; written as ovf:size when set
}

type ovfNICSpec struct{ MAC, Network string }

func (s ovfSpec) XML() string {
	var b strings.Builder
	w := func(f string, a ...any) { fmt.Fprintf(&b, f+"\n", a...) }
	w(`<?xml version="1.0" encoding="UTF-8"?>`)
	w(`<Envelope vmw:buildId="build-1" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`)
	w(`  <References>`)
	for i, d := range s.Disks {
		if d.Size > 0 {
			w(`    <File ovf:href="%s" ovf:id="file%d" ovf:size="%d"/>`, d.File, i+1, d.Size)
		} else {
			w(`    <File ovf:href="%s" ovf:id="file%d"/>`, d.File, i+1)
		}
	}
	w(`  </References>`)
	w(`  <DiskSection><Info>Virtual disk information</Info>`)
	for i, d := range s.Disks {
		w(`    <Disk ovf:capacity="%d" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="%s" ovf:fileRef="file%d" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>`, d.Capacity, d.ID, i+1)
	}
	w(`  </DiskSection>`)
	w(`  <NetworkSection><Info>The list of logical networks</Info>`)
	for _, n := range s.NICs {
		w(`    <Network ovf:name="%s"><Description>The %s network</Description></Network>`, n.Network, n.Network)
	}
	w(`  </NetworkSection>`)
	w(`  <VirtualSystem ovf:id="%s"><Info>A virtual machine</Info><Name>%s</Name>`, s.Name, s.Name)
	w(`    <OperatingSystemSection ovf:id="94" vmw:osType="%s"><Info>The OS</Info><Description>guest</Description></OperatingSystemSection>`, s.OSType)
	w(`    <VirtualHardwareSection><Info>Virtual hardware requirements</Info>`)
	w(`      <System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID><vssd:VirtualSystemType>vmx-19</vssd:VirtualSystemType></System>`)
	w(`      <Item><rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits><rasd:ElementName>%d virtual CPU(s)</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>%d</rasd:VirtualQuantity></Item>`, s.CPUs, s.CPUs)
	w(`      <Item><rasd:AllocationUnits>%s</rasd:AllocationUnits><rasd:ElementName>memory</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>%s</rasd:VirtualQuantity></Item>`, s.MemUnits, s.Memory)
	w(`      <Item><rasd:Address>0</rasd:Address><rasd:ElementName>SCSI controller 0</rasd:ElementName><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>`)
	w(`      <Item><rasd:Address>1</rasd:Address><rasd:ElementName>SCSI controller 1</rasd:ElementName><rasd:InstanceID>4</rasd:InstanceID><rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>`)
	for i, d := range s.Disks {
		w(`      <Item><rasd:AddressOnParent>%d</rasd:AddressOnParent><rasd:ElementName>Hard disk %d</rasd:ElementName><rasd:HostResource>ovf:/disk/%s</rasd:HostResource><rasd:InstanceID>%d</rasd:InstanceID><rasd:Parent>%d</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>`, d.Unit, i+1, d.ID, 10+i, 3+d.Ctrl)
	}
	for i, n := range s.NICs {
		w(`      <Item><rasd:Address>%s</rasd:Address><rasd:AddressOnParent>%d</rasd:AddressOnParent><rasd:AutomaticAllocation>true</rasd:AutomaticAllocation><rasd:Connection>%s</rasd:Connection><rasd:ElementName>Network adapter %d</rasd:ElementName><rasd:InstanceID>%d</rasd:InstanceID><rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>`, n.MAC, 7+i, n.Network, i+1, 20+i)
	}
	if s.EFI {
		w(`      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>`)
	}
	if s.Secure {
		w(`      <vmw:Config ovf:required="false" vmw:key="bootOptions.efiSecureBootEnabled" vmw:value="true"/>`)
	}
	w(`    </VirtualHardwareSection>`)
	w(`  </VirtualSystem>`)
	w(`</Envelope>`)
	return b.String()
}

func webSpec() ovfSpec {
	return ovfSpec{
		Name: "web-01", CPUs: 4, Memory: "8192", MemUnits: "byte * 2^20", OSType: "ubuntu64Guest",
		// Listed data disk first, on the second controller: the boot disk
		// is the one on controller 0.
		Disks: []ovfDiskSpec{
			{ID: "vmdisk2", File: "web-01-disk2.vmdk", Ctrl: 1, Unit: 0, Capacity: 32},
			{ID: "vmdisk1", File: "web-01-disk1.vmdk", Ctrl: 0, Unit: 0, Capacity: 16},
		},
		NICs: []ovfNICSpec{{"00:50:56:AA:BB:01", "VM Network"}, {"00:50:56:aa:bb:02", "DMZ"}},
	}
}

// writeOVFDir writes an OVF directory with real streamOptimized VMDKs made
// by qemu-img, and a manifest, and returns the directory.
func writeOVFDir(t *testing.T, parent string, s ovfSpec) string {
	t.Helper()
	dir := filepath.Join(parent, s.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var mf strings.Builder
	s.Disks = append([]ovfDiskSpec(nil), s.Disks...)
	for i, d := range s.Disks {
		p := filepath.Join(dir, d.File)
		qemuImg(t, "create", "-q", "-f", "vmdk", "-o", "subformat=streamOptimized", p, fmt.Sprintf("%dM", d.Capacity))
		fmt.Fprintf(&mf, "SHA256(%s)= %s\n", d.File, sha(t, p))
		s.Disks[i].Size = size(t, p)
	}
	ovf := filepath.Join(dir, s.Name+".ovf")
	writeFile(t, ovf, s.XML())
	fmt.Fprintf(&mf, "SHA256(%s)= %s\n", s.Name+".ovf", sha(t, ovf))
	writeFile(t, filepath.Join(dir, s.Name+".mf"), mf.String())
	return dir
}

type tarMember struct {
	hdr  tar.Header
	body []byte
	file string // content from this file instead of body
}

// writeOVA writes a tar with the members in order.
func writeOVA(t *testing.T, path string, members []tarMember) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, m := range members {
		hdr := m.hdr
		var r io.Reader = strings.NewReader(string(m.body))
		if m.file != "" {
			in, err := os.Open(m.file)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			fi, _ := in.Stat()
			hdr.Size, r = fi.Size(), in
		} else if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == 0 {
			hdr.Size = int64(len(m.body))
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

// ovaFromDir packs an OVF directory as vSphere does: descriptor first.
func ovaFromDir(t *testing.T, dir, ova string, s ovfSpec) {
	t.Helper()
	ms := []tarMember{{hdr: tar.Header{Name: s.Name + ".ovf", Typeflag: tar.TypeReg}, file: filepath.Join(dir, s.Name+".ovf")}}
	ms = append(ms, tarMember{hdr: tar.Header{Name: s.Name + ".mf", Typeflag: tar.TypeReg}, file: filepath.Join(dir, s.Name+".mf")})
	for _, d := range s.Disks {
		ms = append(ms, tarMember{hdr: tar.Header{Name: d.File, Typeflag: tar.TypeReg}, file: filepath.Join(dir, d.File)})
	}
	writeOVA(t, ova, ms)
}

func qemuImg(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatal("qemu-img not found: install qemu-utils (run .ci/setup)")
	}
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img %v: %v: %s", args, err, out)
	}
	return string(out)
}

func sha(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newTestSource(t *testing.T, dir string) *Source {
	t.Helper()
	s, err := New(Config{Dir: dir, MaxParallelExports: 2}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return s
}
