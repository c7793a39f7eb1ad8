package vsphere

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/url"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vmware/govmomi/nfc"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// testLeaseInfo builds what nfc.Lease.Wait returns for device URLs given as
// (device key, path, is a disk).
func testLeaseInfo(devs ...struct {
	key, path string
	disk      bool
}) *nfc.LeaseInfo {
	info := &nfc.LeaseInfo{}
	for _, d := range devs {
		u := &url.URL{Scheme: "https", Host: "esx", Path: "/nfc/lease/" + d.path}
		info.DeviceUrl = append(info.DeviceUrl, types.HttpNfcLeaseDeviceUrl{Key: d.key, Url: u.String(), Disk: types.NewBool(d.disk)})
		info.Items = append(info.Items, nfc.NewFileItem(u, types.OvfFileItem{DeviceId: d.key, Path: d.path}))
	}
	return info
}

type dev = struct {
	key, path string
	disk      bool
}

// twoDiskVM has an LSI Logic controller with disks at units 0 and 1, the
// second first in the boot order.
func twoDiskVM() mo.VirtualMachine {
	unit0, unit1 := int32(0), int32(1)
	ctrl := &types.VirtualLsiLogicController{VirtualSCSIController: types.VirtualSCSIController{
		VirtualController: types.VirtualController{BusNumber: 0, VirtualDevice: types.VirtualDevice{Key: 1000}}}}
	disk := func(key int32, unit *int32, file string) *types.VirtualDisk {
		return &types.VirtualDisk{CapacityInKB: 1024, VirtualDevice: types.VirtualDevice{Key: key, ControllerKey: 1000, UnitNumber: unit,
			Backing: &types.VirtualDiskFlatVer2BackingInfo{VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: file}}}}
	}
	return mo.VirtualMachine{Config: &types.VirtualMachineConfigInfo{
		Hardware: types.VirtualHardware{Device: []types.BaseVirtualDevice{ctrl,
			disk(2000, &unit0, "[ds] vm/vm.vmdk"), disk(2001, &unit1, "[ds] vm/vm_1.vmdk")}},
		BootOptions: &types.VirtualMachineBootOptions{BootOrder: []types.BaseVirtualMachineBootOptionsBootableDevice{
			&types.VirtualMachineBootOptionsBootableDiskDevice{DeviceKey: 2001}}},
	}}
}

func TestPlanItems(t *testing.T) {
	type item struct{ Name, DiskID string }
	tests := map[string]struct {
		info    *nfc.LeaseInfo
		want    []item
		wantErr string
	}{
		"vCenter device keys, listed out of order": {
			info: testLeaseInfo(dev{"/vm-7/VirtualLsiLogicController0:1", "disk-1.vmdk", true},
				dev{"/vm-7/VirtualLsiLogicController0:0", "disk-0.vmdk", true}, dev{"/vm-7/nvram", "vm.nvram", false}),
			want: []item{{"lsilogic0-1.vmdk", "lsilogic0-1"}, {"lsilogic0-0.vmdk", "lsilogic0-0"}, {"vm.nvram", ""}},
		},
		"vcsim device keys match by position": {
			info: testLeaseInfo(dev{"/vm-7/disk:0", "vm.vmdk", true}, dev{"/vm-7/disk:1", "vm_1.vmdk", true}),
			want: []item{{"lsilogic0-0.vmdk", "lsilogic0-0"}, {"lsilogic0-1.vmdk", "lsilogic0-1"}},
		},
		"mounted media are skipped": {
			info: testLeaseInfo(dev{"/vm-7/cdrom:0", "ubuntu.iso", false}, dev{"/vm-7/floppy:0", "a.flp", false},
				dev{"/vm-7/disk:0", "vm.vmdk", true}, dev{"/vm-7/disk:1", "vm_1.vmdk", true}),
			want: []item{{"lsilogic0-0.vmdk", "lsilogic0-0"}, {"lsilogic0-1.vmdk", "lsilogic0-1"}},
		},
		"unsafe and clashing names": {
			info: testLeaseInfo(dev{"/vm-7/disk:0", "vm.vmdk", true}, dev{"/a/x", "../we ird.nvram", false}, dev{"/b/x", "we_ird.nvram", false}),
			want: []item{{"lsilogic0-0.vmdk", "lsilogic0-0"}, {"we_ird.nvram", ""}, {"2-we_ird.nvram", ""}},
		},
		"a disk the configuration lacks": {
			info:    testLeaseInfo(dev{"/vm-7/disk:0", "a.vmdk", true}, dev{"/vm-7/disk:1", "b.vmdk", true}, dev{"/vm-7/disk:2", "c.vmdk", true}),
			wantErr: "does not list",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			items, err := planItems(tc.info, disks(twoDiskVM()))
			if tc.wantErr != "" {
				if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.wantErr)) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []item
			for _, it := range items {
				id := ""
				if it.disk != nil {
					id = it.disk.fact.ID
				}
				got = append(got, item{it.name, id})
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("items (-want +got):\n%s", d)
			}
		})
	}
	// The boot order comes from bootOptions, not from the device order.
	ds := disks(twoDiskVM())
	if ds[0].fact.ID != "lsilogic0-1" || ds[0].fact.BootOrder != 0 || ds[1].fact.BootOrder != 1 {
		t.Errorf("boot order: %+v", ds)
	}
}

func TestPipe(t *testing.T) {
	data := content(9, 5<<20+77)
	var out bytes.Buffer
	h := sha256.New()
	var last int64
	n, _, err := pipe(&out, h, bytes.NewReader(data), func(done int64) { last = done }, func() {})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(data)) || last != n || !bytes.Equal(out.Bytes(), data) || hex.EncodeToString(h.Sum(nil)) != sha(data) {
		t.Errorf("copied %d of %d bytes, last progress %d, equal %v", n, len(data), last, bytes.Equal(out.Bytes(), data))
	}
}

// TestPipeWriteFailsWhileReadStalls: a failed write ends the copy even
// when the server has stopped sending; abort is what unblocks the read.
func TestPipeWriteFailsWhileReadStalls(t *testing.T) {
	unblock := make(chan struct{})
	src := io.MultiReader(bytes.NewReader(make([]byte, 1<<20)), stalled(unblock))
	diskFull := errors.New("no space left on device")
	aborted := false
	_, _, err := pipe(failingWriter{diskFull}, sha256.New(), src, func(int64) {},
		func() { aborted = true; close(unblock) })
	if !errors.Is(err, diskFull) {
		t.Fatalf("error = %v, want the write's", err)
	}
	if !aborted {
		t.Error("abort was not called")
	}
}

// TestPipeSlowSum: a summer that lags behind the writer still sees every
// byte in order; no buffer is refilled while either side holds it.
func TestPipeSlowSum(t *testing.T) {
	data := content(11, 3<<20+5)
	var out, summed bytes.Buffer
	slow := writerFunc(func(p []byte) (int, error) {
		time.Sleep(time.Millisecond)
		return summed.Write(p)
	})
	n, _, err := pipe(&out, slow, iotest.HalfReader(bytes.NewReader(data)), func(int64) {}, func() {})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) || !bytes.Equal(summed.Bytes(), data) {
		t.Errorf("copied %d of %d bytes; written equal %v, summed equal %v", n, len(data),
			bytes.Equal(out.Bytes(), data), bytes.Equal(summed.Bytes(), data))
	}
}

// TestPipeSumFails: a check that refuses the data (another disk) ends the
// copy with its error, and abort unblocks the read.
func TestPipeSumFails(t *testing.T) {
	unblock := make(chan struct{})
	src := io.MultiReader(bytes.NewReader(make([]byte, 1<<20)), stalled(unblock))
	refused := errors.New("wrong disk")
	aborted := false
	_, _, err := pipe(io.Discard, failingWriter{refused}, src, func(int64) {},
		func() { aborted = true; close(unblock) })
	if !errors.Is(err, refused) {
		t.Fatalf("error = %v, want the check's", err)
	}
	if !aborted {
		t.Error("abort was not called")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// stalled blocks reads until unblock is closed, like a response body
// whose request is cancelled.
type stalled chan struct{}

func (s stalled) Read([]byte) (int, error) {
	<-s
	return 0, context.Canceled
}
