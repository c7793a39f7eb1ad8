package vsphere

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/vsphere/vcsimtest"
)

// TestExportCancel cancels the export once the first megabytes arrived:
// the lease is aborted, nothing is left in the export directory (no final
// file, no .part), and the VM hyperagent powered off is powered on again.
func TestExportCancel(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	ctx := context.Background()
	_, f := admin(t, srv)
	vm, data := exportable(ctx, t, srv, f, "DC0_H0_VM0", 24<<20)
	s := newTestSource(t, blockConfig(srv, nil))

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var p progressLog
	p.on = func(e plugins.ProgressEvent) {
		if e.Done < int64(len(data)) {
			cancel()
		}
	}
	dir := filepath.Join(t.TempDir(), "web")
	_, err := s.Export(cctx, exportRequest(dir, &p, true))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	t.Log(err)
	if len(p.events) == 0 {
		t.Fatal("cancelled before any progress: the test did not cancel mid-download")
	}
	leases := srv.Leases.Leases()
	if len(leases) != 1 || srv.Leases.Final(leases[0]) != vcsimtest.LeaseAborted {
		t.Errorf("leases %v: want one, aborted", leases)
	}
	if d := cmp.Diff([]string{}, dirEntries(t, dir)); d != "" {
		t.Errorf("export dir after cancel (-want +got):\n%s", d)
	}
	if got := srv.Calls(vm.Reference()); !cmp.Equal(got, []string{"ShutdownGuest", "ExportVm", "PowerOnVM_Task"}) {
		t.Errorf("VM calls %v, want shutdown, export, power-on", got)
	}
	if st := powerState(ctx, t, vm); st != types.VirtualMachinePowerStatePoweredOn {
		t.Errorf("power state %s after a cancelled export, want poweredOn", st)
	}
}

func faultRule(method string, fault types.BaseMethodFault) *simulator.FaultInjectionRule {
	r := &simulator.FaultInjectionRule{MethodName: method, ObjectType: "*", ObjectName: "*",
		Probability: 1, Enabled: true, FaultType: simulator.FaultTypeGeneric, Message: "injected " + method}
	if fault != nil {
		r.FaultType, r.Fault = simulator.FaultTypeCustom, fault
	}
	return r
}

// TestExportFaults injects vSphere faults (the simulator's fault rules) on
// power-off, the export call and the lease, and checks what is left
// behind: the lease is aborted whenever it was opened, no file remains,
// and the power state is restored when hyperagent changed it and
// restore_power is set.
func TestExportFaults(t *testing.T) {
	const none = vcsimtest.LeaseEvent("no lease")
	tests := map[string]struct {
		faults    []*simulator.FaultInjectionRule
		noRestore bool
		wantErr   []string
		lease     vcsimtest.LeaseEvent // final event of the one lease, or none
		power     types.VirtualMachinePowerState
		calls     []string
	}{
		"power-off fails": {
			faults: []*simulator.FaultInjectionRule{faultRule("ShutdownGuest", &types.ToolsUnavailable{}), faultRule("PowerOffVM_Task", nil)},
			// Both calls are refused before they reach the VM.
			wantErr: []string{"power off DC0_H0_VM0", "injected PowerOffVM_Task"}, lease: none,
			power: types.VirtualMachinePowerStatePoweredOn, calls: nil,
		},
		"ExportVm fails": {
			faults:  []*simulator.FaultInjectionRule{faultRule("ExportVm", &types.TaskInProgress{})},
			wantErr: []string{"start export"}, lease: none,
			power: types.VirtualMachinePowerStatePoweredOn, calls: []string{"ShutdownGuest", "PowerOnVM_Task"},
		},
		"lease complete fails": {
			faults:  []*simulator.FaultInjectionRule{faultRule("HttpNfcLeaseComplete", nil)},
			wantErr: []string{"complete export lease", "injected HttpNfcLeaseComplete"}, lease: vcsimtest.LeaseAborted,
			power: types.VirtualMachinePowerStatePoweredOn, calls: []string{"ShutdownGuest", "ExportVm", "PowerOnVM_Task"},
		},
		"lease complete fails, restore_power off": {
			faults:    []*simulator.FaultInjectionRule{faultRule("HttpNfcLeaseComplete", nil)},
			noRestore: true,
			wantErr:   []string{"complete export lease"}, lease: vcsimtest.LeaseAborted,
			power: types.VirtualMachinePowerStatePoweredOff, calls: []string{"ShutdownGuest", "ExportVm"},
		},
		"lease complete and abort fail": {
			faults: []*simulator.FaultInjectionRule{faultRule("HttpNfcLeaseComplete", nil), faultRule("HttpNfcLeaseAbort", nil)},
			// The abort's failure is logged; the export's error stays the cause.
			wantErr: []string{"complete export lease"}, lease: "",
			power: types.VirtualMachinePowerStatePoweredOn, calls: []string{"ShutdownGuest", "ExportVm", "PowerOnVM_Task"},
		},
		"descriptor fails": {
			faults:  []*simulator.FaultInjectionRule{faultRule("CreateDescriptor", nil)},
			wantErr: []string{"create OVF descriptor"}, lease: vcsimtest.LeaseAborted,
			power: types.VirtualMachinePowerStatePoweredOn, calls: []string{"ShutdownGuest", "ExportVm", "PowerOnVM_Task"},
		},
		"restoring power fails too": {
			faults:  []*simulator.FaultInjectionRule{faultRule("HttpNfcLeaseComplete", nil), faultRule("PowerOnVM_Task", nil)},
			wantErr: []string{"complete export lease", "restore power of DC0_H0_VM0"}, lease: vcsimtest.LeaseAborted,
			power: types.VirtualMachinePowerStatePoweredOff, calls: []string{"ShutdownGuest", "ExportVm"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := startSim(t, vcsimtest.Options{})
			ctx := context.Background()
			_, f := admin(t, srv)
			vm, _ := exportable(ctx, t, srv, f, "DC0_H0_VM0", 2<<20+1)
			for _, r := range tc.faults {
				srv.Service().AddFaultRule(r)
			}
			s := newTestSource(t, blockConfig(srv, nil))
			dir := filepath.Join(t.TempDir(), "web")
			var p progressLog
			req := exportRequest(dir, &p, true)
			req.Settings.RestorePower = !tc.noRestore
			_, err := s.Export(ctx, req)
			if err == nil {
				t.Fatal("export succeeded despite the fault")
			}
			t.Log(err)
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q", w)
				}
			}
			leases := srv.Leases.Leases()
			switch {
			case tc.lease == none && len(leases) != 0:
				t.Errorf("leases %v, want none", leases)
			case tc.lease != none && (len(leases) != 1 || srv.Leases.Final(leases[0]) != tc.lease):
				t.Errorf("leases %v, want one ending %q", leases, tc.lease)
			}
			if d := cmp.Diff([]string{}, dirEntries(t, dir)); d != "" {
				t.Errorf("export dir (-want +got):\n%s", d)
			}
			if got := srv.Calls(vm.Reference()); !cmp.Equal(got, tc.calls) {
				t.Errorf("VM calls %v, want %v", got, tc.calls)
			}
			if st := powerState(ctx, t, vm); st != tc.power {
				t.Errorf("power state %s, want %s", st, tc.power)
			}
		})
	}
}

// TestExportKeepsLeaseAlive holds the download still until the lease
// updater has renewed the lease (HttpNfcLeaseProgress, every 2 s): without
// the updater a real vCenter drops the lease of a slow download.
func TestExportKeepsLeaseAlive(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	ctx := context.Background()
	_, f := admin(t, srv)
	_, data := exportable(ctx, t, srv, f, "DC0_H0_VM0", 3<<20)
	s := newTestSource(t, blockConfig(srv, nil))
	var p progressLog
	var renewed bool
	p.on = func(e plugins.ProgressEvent) {
		if renewed || e.Done == int64(len(data)) {
			return
		}
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if ls := srv.Leases.Leases(); len(ls) == 1 && srv.Leases.Count(ls[0], vcsimtest.LeaseProgress) > 0 {
				renewed = true
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	res, err := s.Export(ctx, exportRequest(t.TempDir(), &p, true))
	if err != nil {
		t.Fatal(err)
	}
	if !renewed {
		t.Fatal("the lease was not renewed while the download was held for 15 s")
	}
	if res.Export.Disks[0].SHA256 != sha(data) {
		t.Error("sha256 differs after a held download")
	}
}

// TestExportCancelDuringShutdown cancels while the guest is shutting
// down: vSphere cannot take that back, and the error says so.
func TestExportCancelDuringShutdown(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	ctx := context.Background()
	_, f := admin(t, srv)
	vm, _ := exportable(ctx, t, srv, f, "DC0_H0_VM0", 1024)
	srv.IgnoreGuestShutdown(vm.Reference()) // the shutdown takes "forever"
	s := newTestSource(t, blockConfig(srv, nil))
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { // cancel once the shutdown was asked for
		for !cmp.Equal(srv.Calls(vm.Reference()), []string{"ShutdownGuest"}) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	var p progressLog
	_, err := s.Export(cctx, exportRequest(t.TempDir(), &p, true))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "may still power off") {
		t.Fatalf("error = %v, want a cancellation that says the guest may still power off", err)
	}
	if got := srv.Calls(vm.Reference()); !cmp.Equal(got, []string{"ShutdownGuest"}) {
		t.Errorf("VM calls %v, want only the shutdown request", got)
	}
}
