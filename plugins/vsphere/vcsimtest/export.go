package vcsimtest

import (
	"fmt"
	"html"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// ExportableVM adds ExportVm to a simulated VM. vcsim implements only
// ExportSnapshot; ExportVm reuses its NFC lease code on the VM's current
// configuration, refusing a VM that is not powered off as vCenter does.
type ExportableVM struct {
	*simulator.VirtualMachine
	server *Server
}

// ExportVm opens an NFC lease serving every file-backed device of the VM.
func (vm *ExportableVM) ExportVm(ctx *simulator.Context, req *types.ExportVm) soap.HasFault {
	vm.server.record(vm.Self, "ExportVm")
	if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
		return &methods.ExportVmBody{Fault_: simulator.Fault("", &types.InvalidPowerState{
			RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: vm.Runtime.PowerState})}
	}
	// ExportSnapshot type-asserts the registry's entry to
	// *simulator.VirtualMachine, so the unwrapped VM stands in meanwhile.
	ctx.Map.Put(vm.VirtualMachine)
	defer ctx.Map.Put(vm)
	snap := &simulator.VirtualMachineSnapshot{}
	snap.Vm, snap.Config = vm.Self, *vm.Config
	r := snap.ExportSnapshot(ctx, &types.ExportSnapshot{This: vm.Self}).(*methods.ExportSnapshotBody)
	ref := r.Res.Returnval
	if l, ok := ctx.Session.Get(ref).(*simulator.HttpNfcLease); ok {
		if err := vm.server.recordLeaseFiles(vm.VirtualMachine, l); err != nil {
			return &methods.ExportVmBody{Fault_: simulator.Fault(err.Error(), &types.SystemError{Reason: err.Error()})}
		}
		ctx.Session.Put(&recordingLease{HttpNfcLease: l, server: vm.server})
		vm.server.Leases.record(ref.Value, LeaseOpened)
	}
	return &methods.ExportVmBody{Res: &types.ExportVmResponse{Returnval: ref}}
}

// ShutdownGuest accepts the request but, for a VM passed to
// IgnoreGuestShutdown, leaves it running: a guest that ignores the request.
func (vm *ExportableVM) ShutdownGuest(ctx *simulator.Context, req *types.ShutdownGuest) soap.HasFault {
	vm.server.record(vm.Self, "ShutdownGuest")
	if vm.server.ignoresShutdown(vm.Self) {
		return &methods.ShutdownGuestBody{Res: new(types.ShutdownGuestResponse)}
	}
	return vm.VirtualMachine.ShutdownGuest(ctx, req)
}

// IgnoreGuestShutdown makes the (exportable) VM's guest ignore shutdown
// requests, so only a hard power-off stops it.
func (s *Server) IgnoreGuestShutdown(ref types.ManagedObjectReference) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ignore == nil {
		s.ignore = map[types.ManagedObjectReference]bool{}
	}
	s.ignore[ref] = true
}

func (s *Server) ignoresShutdown(ref types.ManagedObjectReference) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ignore[ref]
}

// MakeExportable registers the ExportVm extension for the VM. Only VMs made
// exportable are wrapped: vcsim's snapshot methods type-assert the registry
// entry, so a wrapped VM must not have snapshots removed or reverted.
func (s *Server) MakeExportable(ref types.ManagedObjectReference) error {
	switch o := s.Model.Map().Get(ref).(type) {
	case *ExportableVM:
		return nil
	case *simulator.VirtualMachine:
		s.Model.Map().Put(&ExportableVM{VirtualMachine: o, server: s})
		return nil
	default:
		return fmt.Errorf("vcsim: %s is not a VM (%T)", ref, o)
	}
}

// LeaseEvent is what happened to an NFC lease.
type LeaseEvent string

const (
	LeaseOpened    LeaseEvent = "opened"
	LeaseCompleted LeaseEvent = "completed"
	LeaseAborted   LeaseEvent = "aborted"
	LeaseProgress  LeaseEvent = "progress"
)

// LeaseLog records lease events by lease id, in order.
type LeaseLog struct {
	mu     sync.Mutex
	events map[string][]LeaseEvent
	order  []string
}

func newLeaseLog() *LeaseLog { return &LeaseLog{events: map[string][]LeaseEvent{}} }

func (l *LeaseLog) record(id string, e LeaseEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.events[id]; !ok {
		l.order = append(l.order, id)
	}
	l.events[id] = append(l.events[id], e)
}

// Leases lists lease ids in the order they were opened.
func (l *LeaseLog) Leases() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.order...)
}

// Final is the last completed/aborted event of a lease, or "" while it is
// neither.
func (l *LeaseLog) Final(id string) LeaseEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var last LeaseEvent
	for _, e := range l.events[id] {
		if e == LeaseCompleted || e == LeaseAborted {
			last = e
		}
	}
	return last
}

// Count counts events of one kind for a lease.
func (l *LeaseLog) Count(id string, e LeaseEvent) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, x := range l.events[id] {
		if x == e {
			n++
		}
	}
	return n
}

// recordingLease records Complete, Abort and Progress before delegating,
// and answers GetManifest for downloads as vCenter does (vcsim lists only
// uploads).
type recordingLease struct {
	*simulator.HttpNfcLease
	server *Server
}

func (l *recordingLease) HttpNfcLeaseComplete(ctx *simulator.Context, req *types.HttpNfcLeaseComplete) soap.HasFault {
	l.server.Leases.record(req.This.Value, LeaseCompleted)
	return l.HttpNfcLease.HttpNfcLeaseComplete(ctx, req)
}

func (l *recordingLease) HttpNfcLeaseAbort(ctx *simulator.Context, req *types.HttpNfcLeaseAbort) soap.HasFault {
	l.server.Leases.record(req.This.Value, LeaseAborted)
	return l.HttpNfcLease.HttpNfcLeaseAbort(ctx, req)
}

func (l *recordingLease) HttpNfcLeaseProgress(ctx *simulator.Context, req *types.HttpNfcLeaseProgress) soap.HasFault {
	l.server.Leases.record(req.This.Value, LeaseProgress)
	return l.HttpNfcLease.HttpNfcLeaseProgress(ctx, req)
}

func (l *recordingLease) HttpNfcLeaseGetManifest(ctx *simulator.Context, req *types.HttpNfcLeaseGetManifest) soap.HasFault {
	return &methods.HttpNfcLeaseGetManifestBody{Res: &types.HttpNfcLeaseGetManifestResponse{
		Returnval: l.server.manifest(req.This.Value)}}
}

// OvfManager adds CreateDescriptor, which vcsim lacks. The descriptor names
// the VM and references exactly the files the client passed, as vCenter's
// References section does.
type OvfManager struct {
	*simulator.OvfManager
}

func (m *OvfManager) CreateDescriptor(ctx *simulator.Context, req *types.CreateDescriptor) soap.HasFault {
	name := req.Cdp.Name
	if name == "" {
		if e, ok := ctx.Map.Get(req.Obj).(mo.Entity); ok {
			name = e.Entity().Name
		}
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1">` + "\n  <References>\n")
	for i, f := range req.Cdp.OvfFiles {
		fmt.Fprintf(&b, "    <File ovf:id=\"file%d\" ovf:href=\"%s\" ovf:size=\"%d\"/>\n", i+1, html.EscapeString(f.Path), f.Size)
	}
	b.WriteString("  </References>\n")
	fmt.Fprintf(&b, "  <VirtualSystem ovf:id=\"%s\">\n    <Name>%s</Name>\n  </VirtualSystem>\n</Envelope>\n",
		html.EscapeString(name), html.EscapeString(name))
	return &methods.CreateDescriptorBody{Res: &types.CreateDescriptorResponse{
		Returnval: types.OvfCreateDescriptorResult{OvfDescriptor: b.String()}}}
}
