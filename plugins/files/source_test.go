package files

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/plugins"
)

func wantWebFacts() plugins.VMFacts {
	return plugins.VMFacts{
		Name: "web-01", GuestID: "ubuntu64Guest", OSFamily: "linux", Firmware: "bios", CPUs: 4, MemoryMiB: 8192,
		Disks: []plugins.DiskFact{
			{ID: "vmdisk1", Label: "Hard disk 2", CapacityBytes: 16 << 20, BootOrder: 0, Backing: "web-01-disk1.vmdk"},
			{ID: "vmdisk2", Label: "Hard disk 1", CapacityBytes: 32 << 20, BootOrder: 1, Backing: "web-01-disk2.vmdk"},
		},
		NICs: []plugins.NIC{
			{ID: "nic-20", MAC: "00:50:56:aa:bb:01", Network: "VM Network"},
			{ID: "nic-21", MAC: "00:50:56:aa:bb:02", Network: "DMZ"},
		},
	}
}

func TestOVFFacts(t *testing.T) {
	tests := map[string]struct {
		mod  func(*ovfSpec)
		want func(*plugins.VMFacts)
	}{
		"vsphere bios":        {func(*ovfSpec) {}, func(*plugins.VMFacts) {}},
		"memory in GiB":       {func(s *ovfSpec) { s.Memory, s.MemUnits = "2", "byte * 2^30" }, func(f *plugins.VMFacts) { f.MemoryMiB = 2048 }},
		"memory as MegaBytes": {func(s *ovfSpec) { s.Memory, s.MemUnits = "512", "MegaBytes" }, func(f *plugins.VMFacts) { f.MemoryMiB = 512 }},
		"efi":                 {func(s *ovfSpec) { s.EFI = true }, func(f *plugins.VMFacts) { f.Firmware = "uefi" }},
		"efi secure boot": {func(s *ovfSpec) { s.EFI, s.Secure = true, true }, func(f *plugins.VMFacts) {
			f.Firmware, f.SecureBoot = "uefi", true
		}},
		"windows": {func(s *ovfSpec) { s.OSType = "windows2019srv_64Guest" }, func(f *plugins.VMFacts) {
			f.GuestID, f.OSFamily = "windows2019srv_64Guest", "windows"
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := webSpec()
			tc.mod(&s)
			env, err := parseOVF(strings.NewReader(s.XML()))
			if err != nil {
				t.Fatal(err)
			}
			vm, err := env.facts()
			if err != nil {
				t.Fatal(err)
			}
			want := wantWebFacts()
			tc.want(&want)
			if diff := cmp.Diff(want, vm.Facts); diff != "" {
				t.Errorf("facts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"web-01-disk1.vmdk", "web-01-disk2.vmdk"}, vm.Files); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

func TestObserveOVF(t *testing.T) {
	root := t.TempDir()
	dir := writeOVFDir(t, root, webSpec())
	s := newTestSource(t, root)
	ctx := context.Background()
	observe := func(vm string) plugins.VMObservation {
		t.Helper()
		r, err := s.ObserveVMs(ctx, plugins.ObserveVMsRequest{VMs: []plugins.VMQuery{{Address: "m", Path: vm}}})
		if err != nil {
			t.Fatal(err)
		}
		return r.VMs["m"]
	}
	first := observe("web-01")
	if diff := cmp.Diff(plugins.VMObservation{Found: true, Fingerprint: first.Fingerprint, Facts: wantWebFacts()}, first); diff != "" {
		t.Errorf("observation (-want +got):\n%s", diff)
	}
	// OVF, manifest, two disks.
	if got := s.cache.hashed.Load(); got != 4 {
		t.Errorf("first observe hashed %d files, want 4", got)
	}
	for _, vm := range []string{"web-01", "web-01/web-01.ovf", filepath.Join(dir, "web-01.ovf")} {
		if o := observe(vm); o.Fingerprint != first.Fingerprint || !o.Found {
			t.Errorf("%s: fingerprint %s, want %s", vm, o.Fingerprint, first.Fingerprint)
		}
	}
	if got := s.cache.hashed.Load(); got != 4 {
		t.Errorf("repeated observes hashed again: %d files hashed, want 4", got)
	}
	// Rewriting a disk moves the fingerprint and costs one hash.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "web-01-disk2.vmdk"), later, later); err != nil {
		t.Fatal(err)
	}
	if o := observe("web-01"); o.Fingerprint == first.Fingerprint {
		t.Errorf("fingerprint did not change when a disk's mtime did")
	}
	if got := s.cache.hashed.Load(); got != 5 {
		t.Errorf("after touching one disk %d files hashed, want 5", got)
	}
}

func TestHashCacheFile(t *testing.T) {
	root := t.TempDir()
	writeOVFDir(t, root, webSpec())
	cacheFile := filepath.Join(t.TempDir(), "state", "hashes.json")
	q := plugins.ObserveVMsRequest{VMs: []plugins.VMQuery{{Address: "m", Path: "web-01"}}}
	for i, want := range []int64{4, 0} {
		s, err := New(Config{Dir: root, HashCache: cacheFile}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.ObserveVMs(context.Background(), q); err != nil {
			t.Fatal(err)
		}
		if got := s.cache.hashed.Load(); got != want {
			t.Errorf("run %d hashed %d files, want %d", i, got, want)
		}
	}
	fi, err := os.Stat(cacheFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file: %v, mode %v", err, fi.Mode())
	}
}

func TestObserveFindings(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	writeOVFDir(t, root, webSpec())
	broken := writeOVFDir(t, root, ovfSpec{Name: "broken", CPUs: 1, Memory: "1", MemUnits: "byte * 2^30",
		Disks: []ovfDiskSpec{{ID: "d1", File: "broken-disk1.vmdk", Capacity: 1}}})
	writeFile(t, filepath.Join(broken, "broken.ovf"), "<Envelope><VirtualSystem>")
	gone := writeOVFDir(t, root, ovfSpec{Name: "gone", CPUs: 1, Memory: "1", MemUnits: "byte * 2^30",
		Disks: []ovfDiskSpec{{ID: "d1", File: "gone-disk1.vmdk", Capacity: 1}}})
	if err := os.Remove(filepath.Join(gone, "gone-disk1.vmdk")); err != nil {
		t.Fatal(err)
	}
	short := writeOVFDir(t, root, ovfSpec{Name: "short", CPUs: 1, Memory: "1", MemUnits: "byte * 2^30",
		Disks: []ovfDiskSpec{{ID: "d1", File: "short-disk1.vmdk", Capacity: 1}}})
	if err := os.Truncate(filepath.Join(short, "short-disk1.vmdk"), 512); err != nil {
		t.Fatal(err)
	}
	qemuImg(t, "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", filepath.Join(root, "flat.vmdk"), "1M")
	if err := os.Remove(filepath.Join(root, "flat-flat.vmdk")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(outside, "secret.img"), "x")
	linked := writeOVFDir(t, root, ovfSpec{Name: "linked", CPUs: 1, Memory: "1", MemUnits: "byte * 2^30",
		Disks: []ovfDiskSpec{{ID: "d1", File: "linked-disk1.vmdk", Capacity: 1}}})
	os.Remove(filepath.Join(linked, "linked-disk1.vmdk"))
	if err := os.Symlink(filepath.Join(outside, "secret.img"), filepath.Join(linked, "linked-disk1.vmdk")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.img"), filepath.Join(root, "link.img")); err != nil {
		t.Fatal(err)
	}
	// An OVA whose descriptor names a disk the archive does not hold.
	writeOVA(t, filepath.Join(root, "diskless.ova"), []tarMember{{hdr: tar.Header{Name: "diskless.ovf", Typeflag: tar.TypeReg},
		body: []byte(ovfSpec{Name: "diskless", CPUs: 1, Memory: "1", MemUnits: "byte * 2^30", Disks: []ovfDiskSpec{{ID: "d1", File: "diskless-disk1.vmdk", Capacity: 1}}}.XML())}})

	tests := map[string]struct {
		vm      string
		found   bool
		summary string
	}{
		"not found":        {"nope.ova", false, "VM files not found"},
		"ovf unreadable":   {"broken", true, "VM files unreadable"},
		"disk missing":     {"gone", true, "disk gone-disk1.vmdk is missing"},
		"ova disk missing": {"diskless.ova", true, "disk diskless-disk1.vmdk is missing"},
		"relative escape":  {"../" + filepath.Base(outside) + "/secret.img", false, "VM path refused"},
		"absolute escape":  {filepath.Join(outside, "secret.img"), false, "VM path refused"},
		"symlink escape":   {"link.img", false, "VM path refused"},
		"no ovf in a dir":  {".", false, "VM files not found"},
	}
	s := newTestSource(t, root)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := s.ObserveVMs(context.Background(), plugins.ObserveVMsRequest{VMs: []plugins.VMQuery{{Address: "m", Path: tc.vm}}})
			if err != nil {
				t.Fatal(err)
			}
			o := r.VMs["m"]
			if o.Found != tc.found || len(o.Findings) != 1 || o.Findings[0].Severity != plugins.SeverityError || o.Findings[0].Summary != tc.summary {
				t.Errorf("observation = %+v; want found=%v and one error %q", o, tc.found, tc.summary)
			}
			_, err = s.Export(context.Background(), plugins.ExportRequest{Address: "m", VM: tc.vm, Dir: t.TempDir(), Progress: func(plugins.ProgressEvent) {}})
			if err == nil || !plugins.IsTerminal(err) {
				t.Errorf("Export: err = %v, want terminal", err)
			}
		})
	}
}
