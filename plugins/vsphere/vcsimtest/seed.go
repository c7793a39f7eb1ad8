package vcsimtest

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// VM returns the simulator's object for ref, unwrapping ExportableVM.
func (s *Server) VM(ref types.ManagedObjectReference) (*simulator.VirtualMachine, error) {
	switch o := s.Model.Map().Get(ref).(type) {
	case *ExportableVM:
		return o.VirtualMachine, nil
	case *simulator.VirtualMachine:
		return o, nil
	default:
		return nil, fmt.Errorf("vcsim: %s is not a VM (%T)", ref, o)
	}
}

// DiskFile is the local file behind the VM's n-th disk (0-based, in device
// order): the file the NFC lease serves for it.
func (s *Server) DiskFile(ref types.ManagedObjectReference, n int) (string, error) {
	vm, err := s.VM(ref)
	if err != nil {
		return "", err
	}
	disks := object.VirtualDeviceList(vm.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil))
	if n < 0 || n >= len(disks) {
		return "", fmt.Errorf("vcsim: %s has %d disks, no disk %d", vm.Name, len(disks), n)
	}
	b, ok := disks[n].GetVirtualDevice().Backing.(types.BaseVirtualDeviceFileBackingInfo)
	if !ok {
		return "", fmt.Errorf("vcsim: disk %d of %s is not file-backed", n, vm.Name)
	}
	var p object.DatastorePath
	if !p.FromString(b.GetVirtualDeviceFileBackingInfo().FileName) {
		return "", fmt.Errorf("vcsim: bad backing path %q", b.GetVirtualDeviceFileBackingInfo().FileName)
	}
	return s.datastoreFile(p)
}

// datastoreFile is the local file behind a datastore path.
func (s *Server) datastoreFile(p object.DatastorePath) (string, error) {
	for _, e := range s.Model.Map().All("Datastore") {
		if ds, ok := e.(*simulator.Datastore); ok && ds.Name == p.Datastore {
			return filepath.Join(ds.Summary.Url, filepath.FromSlash(p.Path)), nil
		}
	}
	return "", fmt.Errorf("vcsim: datastore %q not found", p.Datastore)
}

// Seed replaces the content of the VM's n-th disk file with r's bytes, so
// an export returns exactly them. It returns the number of bytes written.
// When the bytes are a sparse VMDK (a qemu-img or VMware image), the
// disk's capacity becomes the one its header declares, as it is in
// vSphere, so that the simulated VM describes the disk it holds. Seeding
// overwrites vcsim's disk descriptor: do it after any simulator call that
// parses the disk (extend, crypto).
func (s *Server) Seed(ref types.ManagedObjectReference, n int, r io.Reader) (int64, error) {
	name, err := s.DiskFile(ref, n)
	if err != nil {
		return 0, err
	}
	f, err := os.Create(name)
	if err != nil {
		return 0, err
	}
	var head headBuffer
	written, err := io.Copy(f, io.TeeReader(r, &head))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return written, err
	}
	if capacity, ok := sparseCapacity(head.b); ok {
		err = s.setDiskCapacity(ref, n, capacity)
	}
	return written, err
}

// headBuffer keeps the first sector written through it.
type headBuffer struct{ b []byte }

func (h *headBuffer) Write(p []byte) (int, error) {
	if k := min(512-len(h.b), len(p)); k > 0 {
		h.b = append(h.b, p[:k]...)
	}
	return len(p), nil
}

// sparseCapacity reads the capacity, in bytes, from a sparse VMDK header.
func sparseCapacity(head []byte) (int64, bool) {
	if len(head) < 512 || string(head[:4]) != "KDMV" {
		return 0, false
	}
	return int64(binary.LittleEndian.Uint64(head[12:])) * 512, true
}

// setDiskCapacity sets the capacity of the VM's n-th disk.
func (s *Server) setDiskCapacity(ref types.ManagedObjectReference, n int, capacity int64) error {
	vm, err := s.VM(ref)
	if err != nil {
		return err
	}
	disks := object.VirtualDeviceList(vm.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil))
	if n < 0 || n >= len(disks) {
		return fmt.Errorf("vcsim: %s has %d disks, no disk %d", vm.Name, len(disks), n)
	}
	d := disks[n].(*types.VirtualDisk)
	s.Model.Map().WithLock(s.Model.Service.Context, vm, func() {
		d.CapacityInBytes, d.CapacityInKB = capacity, capacity/1024
	})
	return nil
}

// FindVM returns the reference of the VM with the given name.
func (s *Server) FindVM(name string) (types.ManagedObjectReference, error) {
	for _, e := range s.Model.Map().All("VirtualMachine") {
		if e.Entity().Name == name {
			return e.(mo.Reference).Reference(), nil
		}
	}
	return types.ManagedObjectReference{}, fmt.Errorf("vcsim: no VM named %q", name)
}
