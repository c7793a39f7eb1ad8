package vcsimtest

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// The power methods of an exportable VM are recorded, so tests can tell a
// guest shutdown from a hard power-off. A call that a fault rule rejects
// never reaches the VM and is not recorded.

func (vm *ExportableVM) PowerOffVMTask(ctx *simulator.Context, req *types.PowerOffVM_Task) soap.HasFault {
	vm.server.record(vm.Self, "PowerOffVM_Task")
	return vm.VirtualMachine.PowerOffVMTask(ctx, req)
}

func (vm *ExportableVM) PowerOnVMTask(ctx *simulator.Context, req *types.PowerOnVM_Task) soap.HasFault {
	vm.server.record(vm.Self, "PowerOnVM_Task")
	return vm.VirtualMachine.PowerOnVMTask(ctx, req)
}

func (s *Server) record(ref types.ManagedObjectReference, method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = map[types.ManagedObjectReference][]string{}
	}
	s.calls[ref] = append(s.calls[ref], method)
}

// Calls lists, in order, the power methods (ShutdownGuest,
// PowerOffVM_Task, PowerOnVM_Task) and ExportVm calls an exportable VM
// received.
func (s *Server) Calls(ref types.ManagedObjectReference) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls[ref]...)
}
