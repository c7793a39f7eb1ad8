package vsphere

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/vsphere/vcsimtest"
	"github.com/hypersdk/hyperagent/schema"
)

// content is n deterministic pseudo-random bytes: not compressible, not
// aligned to the download buffers.
func content(seed uint64, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b) // never fails
	return b
}

// upload seeds a datastore file through the datastore's HTTP interface, as
// a user of the real vCenter would.
func upload(ctx context.Context, t *testing.T, f *find.Finder, dsPath string, data []byte) {
	t.Helper()
	ds, err := f.Datastore(ctx, "LocalDS_0")
	if err != nil {
		t.Fatal(err)
	}
	p := soap.DefaultUpload
	p.ContentLength = int64(len(data))
	if err := ds.Upload(ctx, bytes.NewReader(data), dsPath, &p); err != nil {
		t.Fatal(err)
	}
}

// exportable makes the VM exportable in the simulator and seeds its first
// disk with n bytes; it returns the VM and the bytes.
func exportable(ctx context.Context, t *testing.T, srv *vcsimtest.Server, f *find.Finder, name string, n int) (*object.VirtualMachine, []byte) {
	t.Helper()
	vm := findVM(t, f, "/DC0/vm/"+name)
	if err := srv.MakeExportable(vm.Reference()); err != nil {
		t.Fatal(err)
	}
	data := content(uint64(n), n)
	upload(ctx, t, f, name+"/disk1.vmdk", data)
	return vm, data
}

// progressLog records progress events; the engine may call from several
// goroutines.
type progressLog struct {
	mu     sync.Mutex
	events []plugins.ProgressEvent
	on     func(plugins.ProgressEvent)
}

func (p *progressLog) report(e plugins.ProgressEvent) {
	p.mu.Lock()
	p.events = append(p.events, e)
	on := p.on
	p.mu.Unlock()
	if on != nil {
		on(e)
	}
}

// check verifies that every item's progress only grows and ends at its size.
func (p *progressLog) check(t *testing.T, addr string, sizes map[string]int64) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	last := map[string]plugins.ProgressEvent{}
	for _, e := range p.events {
		if e.Address != addr {
			t.Errorf("progress for %q, want %q", e.Address, addr)
		}
		if prev, ok := last[e.Item]; ok && e.Done < prev.Done {
			t.Errorf("%s: progress went back from %d to %d", e.Item, prev.Done, e.Done)
		}
		last[e.Item] = e
	}
	for item, size := range sizes {
		e, ok := last[item]
		if !ok {
			t.Errorf("%s: no progress reported", item)
			continue
		}
		if e.Done != size || e.Total != size {
			t.Errorf("%s: last progress %d/%d, want %d/%d", item, e.Done, e.Total, size, size)
		}
	}
}

func exportRequest(dir string, p *progressLog, power bool) plugins.ExportRequest {
	return plugins.ExportRequest{
		Address:  "migration.web",
		VM:       "/DC0/vm/DC0_H0_VM0",
		Dir:      dir,
		Settings: schema.ExportSettings{Dir: dir, PowerOff: power, ShutdownTimeout: 30 * time.Second, RestorePower: true},
		Progress: p.report,
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// dirEntries lists a directory's names, sorted.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, e := range es {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func powerState(ctx context.Context, t *testing.T, vm *object.VirtualMachine) types.VirtualMachinePowerState {
	t.Helper()
	st, err := vm.PowerState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestExport exports a powered-on VM with two seeded disks, the second
// first in the boot order: the guest shuts down, both disks arrive byte for
// byte under their sha256, with an OVF descriptor and a manifest, and the
// result carries facts and the fingerprint of what was exported.
func TestExport(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	ctx := context.Background()
	_, f := admin(t, srv)
	vm, disk1 := exportable(ctx, t, srv, f, "DC0_H0_VM0", 5<<20+123)

	devs, err := vm.Device(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctrl, err := devs.FindDiskController("")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := f.Datastore(ctx, "LocalDS_0")
	if err != nil {
		t.Fatal(err)
	}
	data := devs.CreateDisk(ctrl, ds.Reference(), "[LocalDS_0] DC0_H0_VM0/data.vmdk")
	data.CapacityInKB = 2 << 20
	if err := vm.AddDevice(ctx, data); err != nil {
		t.Fatal(err)
	}
	devs, err = vm.Device(ctx)
	if err != nil {
		t.Fatal(err)
	}
	added := devs.SelectByBackingInfo(&types.VirtualDiskFlatVer2BackingInfo{
		VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: "[LocalDS_0] DC0_H0_VM0/data.vmdk"}})
	if len(added) != 1 {
		t.Fatalf("added disk not found: %v", added)
	}
	reconfigure(ctx, t, vm, types.VirtualMachineConfigSpec{BootOptions: &types.VirtualMachineBootOptions{
		BootOrder: []types.BaseVirtualMachineBootOptionsBootableDevice{
			&types.VirtualMachineBootOptionsBootableDiskDevice{DeviceKey: added[0].GetVirtualDevice().Key}}}})
	disk2 := content(2, 3<<20+7)
	upload(ctx, t, f, "DC0_H0_VM0/data.vmdk", disk2) // last: vcsim parses descriptors on reconfigure

	s := newTestSource(t, blockConfig(srv, nil))
	dir := filepath.Join(t.TempDir(), "web")
	var p progressLog
	res, err := s.Export(ctx, exportRequest(dir, &p, true))
	if err != nil {
		t.Fatal(err)
	}
	e := res.Export

	if got := srv.Calls(vm.Reference()); !cmp.Equal(got, []string{"ShutdownGuest", "ExportVm"}) {
		t.Errorf("VM calls %v, want a guest shutdown then the export", got)
	}
	if !e.PoweredOff || powerState(ctx, t, vm) != types.VirtualMachinePowerStatePoweredOff {
		t.Errorf("PoweredOff %v, power state %s; want the VM left off after a successful export", e.PoweredOff, powerState(ctx, t, vm))
	}
	leases := srv.Leases.Leases()
	if len(leases) != 1 || srv.Leases.Final(leases[0]) != vcsimtest.LeaseCompleted {
		t.Errorf("leases %v: want one, completed", leases)
	}

	type disk struct {
		ID     string
		Size   int64
		SHA256 string
		Boot   int
	}
	var got []disk
	for _, d := range e.Disks {
		got = append(got, disk{d.ID, d.Size, d.SHA256, d.BootOrder})
		if d.Format != "vmdk" || filepath.Dir(d.Path) != dir {
			t.Errorf("disk %s: format %q path %s", d.ID, d.Format, d.Path)
		}
	}
	want := []disk{{"pvscsi0-1", int64(len(disk2)), sha(disk2), 0}, {"pvscsi0-0", int64(len(disk1)), sha(disk1), 1}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("disks (-want +got):\n%s", d)
	}
	for i, wantBytes := range [][]byte{disk2, disk1} {
		b, err := os.ReadFile(e.Disks[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, wantBytes) {
			t.Errorf("%s differs from the seeded bytes", e.Disks[i].Path)
		}
		// The identity recorded beside the sha256 is the file's as it is now,
		// untouched since the export (reading it changes nothing of it).
		fi, err := os.Stat(e.Disks[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		if id := e.Disks[i].Identity; id == nil || *id != *plugins.IdentityOf(fi) || id.Size != int64(len(wantBytes)) {
			t.Errorf("disk %s: identity %+v, want the file's current %+v", e.Disks[i].ID, id, plugins.IdentityOf(fi))
		}
	}
	if d := cmp.Diff([]string{plugins.ExportRecordFile, "DC0_H0_VM0.mf", "DC0_H0_VM0.ovf", "pvscsi0-0.vmdk", "pvscsi0-1.vmdk"}, dirEntries(t, dir)); d != "" {
		t.Errorf("export dir (-want +got):\n%s", d)
	}
	checkFiles(t, e)
	checkDescriptor(t, dir, e)

	// A run killed after the export and before state recorded it finds
	// the export whole, as it was returned.
	adopted, ok, err := s.AdoptExport(ctx, exportRequest(dir, &p, true))
	if err != nil || !ok {
		t.Fatalf("AdoptExport after a completed export: %v, %v", ok, err)
	}
	if d := cmp.Diff(e, adopted); d != "" {
		t.Errorf("adopted export (-returned +adopted):\n%s", d)
	}
	p.check(t, "migration.web", map[string]int64{"pvscsi0-0.vmdk": int64(len(disk1)), "pvscsi0-1.vmdk": int64(len(disk2))})

	if e.Facts.Name != "DC0_H0_VM0" || e.Facts.Firmware != "bios" || len(e.Facts.NICs) != 1 || e.Facts.NICs[0].MAC == "" ||
		len(e.Facts.Disks) != 2 || e.Facts.PowerState != "poweredOff" {
		t.Errorf("facts %+v", e.Facts)
	}
	obs, err := observeOne(ctx, s, "/DC0/vm/DC0_H0_VM0")
	if err != nil {
		t.Fatal(err)
	}
	if obs.Fingerprint != e.Fingerprint {
		t.Error("the fingerprint at export differs from the powered-off VM's")
	}
}

// checkFiles verifies that every file recorded exists with the recorded
// size and sha256, and that the manifest lists them all.
func checkFiles(t *testing.T, e plugins.ExportResult) {
	t.Helper()
	var mf []byte
	names := map[string]string{}
	for _, f := range e.Files {
		b, err := os.ReadFile(f.Path)
		if err != nil {
			t.Error(err)
			continue
		}
		if int64(len(b)) != f.Size || sha(b) != f.SHA256 {
			t.Errorf("%s: recorded %d bytes %s, on disk %d bytes %s", f.Path, f.Size, f.SHA256, len(b), sha(b))
		}
		switch {
		case strings.HasSuffix(f.Path, ".mf"):
			mf = b
		case filepath.Base(f.Path) == plugins.ExportRecordFile:
			// Written last, after the manifest: the export's completion.
		default:
			names[filepath.Base(f.Path)] = f.SHA256
		}
	}
	var lines []string
	for n, s := range names {
		lines = append(lines, fmt.Sprintf("SHA256(%s)= %s", n, s))
	}
	sort.Strings(lines)
	got := strings.Split(strings.TrimSpace(string(mf)), "\n")
	sort.Strings(got)
	if d := cmp.Diff(lines, got); d != "" {
		t.Errorf("manifest (-want +got):\n%s", d)
	}
}

// checkDescriptor verifies that the OVF descriptor references each disk
// file with its size.
func checkDescriptor(t *testing.T, dir string, e plugins.ExportResult) {
	t.Helper()
	ovf, err := os.ReadFile(filepath.Join(dir, e.Facts.Name+".ovf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range e.Disks {
		ref := fmt.Sprintf("ovf:href=%q ovf:size=\"%d\"", filepath.Base(d.Path), d.Size)
		if !strings.Contains(string(ovf), ref) {
			t.Errorf("descriptor lacks %s:\n%s", ref, ovf)
		}
	}
}

// TestExportPowerOff covers how the VM gets powered off: a guest that
// shuts down, a guest that ignores the request (hard power-off after the
// timeout), and a VM that is already off (no power call at all).
func TestExportPowerOff(t *testing.T) {
	tests := map[string]struct {
		prepare    func(ctx context.Context, t *testing.T, srv *vcsimtest.Server, vm *object.VirtualMachine)
		wantCalls  []string
		poweredOff bool
	}{
		"guest shuts down": {wantCalls: []string{"ShutdownGuest", "ExportVm"}, poweredOff: true},
		"guest ignores the shutdown": {
			prepare: func(_ context.Context, _ *testing.T, srv *vcsimtest.Server, vm *object.VirtualMachine) {
				srv.IgnoreGuestShutdown(vm.Reference())
			},
			wantCalls: []string{"ShutdownGuest", "PowerOffVM_Task", "ExportVm"}, poweredOff: true,
		},
		"already off": {
			prepare: func(ctx context.Context, t *testing.T, _ *vcsimtest.Server, vm *object.VirtualMachine) {
				powerOffVM(ctx, t, vm)
			},
			wantCalls: []string{"PowerOffVM_Task", "ExportVm"}, // the first is the test's own
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			srv := startSim(t, vcsimtest.Options{})
			ctx := context.Background()
			_, f := admin(t, srv)
			vm, data := exportable(ctx, t, srv, f, "DC0_H0_VM0", 1<<20+5)
			if tc.prepare != nil {
				tc.prepare(ctx, t, srv, vm)
			}
			s := newTestSource(t, blockConfig(srv, nil))
			var p progressLog
			req := exportRequest(t.TempDir(), &p, true)
			req.Settings.ShutdownTimeout = 300 * time.Millisecond
			res, err := s.Export(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if got := srv.Calls(vm.Reference()); !cmp.Equal(got, tc.wantCalls) {
				t.Errorf("VM calls %v, want %v", got, tc.wantCalls)
			}
			if res.Export.PoweredOff != tc.poweredOff {
				t.Errorf("PoweredOff = %v, want %v", res.Export.PoweredOff, tc.poweredOff)
			}
			if len(res.Export.Disks) != 1 || res.Export.Disks[0].SHA256 != sha(data) {
				t.Errorf("disks %+v, want one with sha256 %s", res.Export.Disks, sha(data))
			}
		})
	}
}

// TestExportRefused: a VM with an error finding is not touched.
func TestExportRefused(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	ctx := context.Background()
	_, f := admin(t, srv)
	vm, _ := exportable(ctx, t, srv, f, "DC0_H0_VM0", 1024)
	s := newTestSource(t, blockConfig(srv, nil))
	tests := map[string]struct {
		vm    string
		power bool
		want  string
	}{
		"powered on without power_off": {vm: "/DC0/vm/DC0_H0_VM0", want: "VM is poweredOn"},
		"not found":                    {vm: "/DC0/vm/nope", power: true, want: "VM not found"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "x")
			var p progressLog
			req := exportRequest(dir, &p, tc.power)
			req.VM = tc.vm
			_, err := s.Export(ctx, req)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !plugins.IsTerminal(err) {
				t.Fatalf("error = %v (terminal %v), want a terminal %q", err, plugins.IsTerminal(err), tc.want)
			}
			if d := cmp.Diff([]string{}, dirEntries(t, dir)); d != "" {
				t.Errorf("export dir (-want +got):\n%s", d)
			}
		})
	}
	if calls := srv.Calls(vm.Reference()); len(calls) != 0 || len(srv.Leases.Leases()) != 0 {
		t.Errorf("refused exports touched the VM: calls %v, leases %v", calls, srv.Leases.Leases())
	}
}

// TestPruneExport deletes what an export recorded, then its directory; a
// recorded path outside the directory is refused and left alone.
func TestPruneExport(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	ctx := context.Background()
	_, f := admin(t, srv)
	exportable(ctx, t, srv, f, "DC0_H0_VM0", 4096)
	s := newTestSource(t, blockConfig(srv, nil))
	root := t.TempDir()
	dir := filepath.Join(root, "web")
	var p progressLog
	res, err := s.Export(ctx, exportRequest(dir, &p, true))
	if err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(root, "keep.txt")
	if err := os.WriteFile(outside, []byte("not the export's"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := res.Export
	bad.Files = append(append([]plugins.File(nil), bad.Files...), plugins.File{Path: filepath.Join(dir, "..", "keep.txt")})
	err = s.PruneExport(ctx, plugins.PruneExportRequest{Address: "migration.web", Export: bad})
	if err == nil || !plugins.IsTerminal(err) || !strings.Contains(err.Error(), "outside the export directory") {
		t.Fatalf("prune with an outside path: %v, want a terminal refusal", err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatalf("the outside file was touched: %v", err)
	}
	if err := s.PruneExport(ctx, plugins.PruneExportRequest{Address: "migration.web", Export: res.Export}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("export directory still there after prune: %v (entries %v)", err, dirEntries(t, dir))
	}
	// Pruning again finds nothing to do.
	if err := s.PruneExport(ctx, plugins.PruneExportRequest{Address: "migration.web", Export: res.Export}); err != nil {
		t.Errorf("second prune: %v", err)
	}
}
