package vsphere

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/vsphere/vcsimtest"
)

// allVMQueries asks about every VM of a VPX model with m machines per pool.
func allVMQueries(m int) []plugins.VMQuery {
	var qs []plugins.VMQuery
	for i := range m {
		for _, n := range []string{"DC0_H0_VM%d", "DC0_C0_RP0_VM%d"} {
			name := fmt.Sprintf(n, i)
			qs = append(qs, plugins.VMQuery{Address: "migration.m[\"" + name + "\"]", Path: "/DC0/vm/" + name, PowerOff: true})
		}
	}
	return qs
}

func TestObserveManyVMs(t *testing.T) {
	srv := sharedBigSim(t)
	s := newTestSource(t, blockConfig(srv, nil))
	qs := allVMQueries(bigMachines)
	res, err := s.ObserveVMs(context.Background(), plugins.ObserveVMsRequest{VMs: qs})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.VMs) != len(qs) {
		t.Fatalf("%d answers for %d queries", len(res.VMs), len(qs))
	}
	prints := map[string]string{}
	mac := regexp.MustCompile(`^([0-9a-f]{2}:){5}[0-9a-f]{2}$`)
	for _, q := range qs {
		o := res.VMs[q.Address]
		if !o.Found {
			t.Fatalf("%s not found: %+v", q.Path, o.Findings)
		}
		f := o.Facts
		if "/DC0/vm/"+f.Name != q.Path || f.UUID == "" || f.CPUs < 1 || f.MemoryMiB < 1 || f.Firmware != "bios" || f.PowerState != "poweredOn" {
			t.Fatalf("%s: facts %+v", q.Path, f)
		}
		if len(f.Disks) != 1 || f.Disks[0].CapacityBytes <= 0 || f.Disks[0].ID == "" || f.Disks[0].Backing == "" {
			t.Fatalf("%s: disks %+v", q.Path, f.Disks)
		}
		if len(f.NICs) != 1 || !mac.MatchString(f.NICs[0].MAC) || f.NICs[0].Network == "" {
			t.Fatalf("%s: NICs %+v", q.Path, f.NICs)
		}
		if other, dup := prints[o.Fingerprint]; dup {
			t.Fatalf("%s and %s share fingerprint %s", q.Path, other, o.Fingerprint)
		}
		prints[o.Fingerprint] = q.Path
		for _, fd := range o.Findings {
			if fd.Severity == plugins.SeverityError {
				t.Errorf("%s: unexpected error finding %+v", q.Path, fd)
			}
		}
	}
}

// TestRoundTripsDoNotGrow observes every VM of a 10-VM and a 300-VM
// inventory through a counting transport: the HTTP round trips must be
// the same. (1,000 and 10,000 VMs are in BenchmarkObserve: building them
// in the simulator takes minutes.)
func TestRoundTripsDoNotGrow(t *testing.T) {
	sameRoundTrips(t, "observing", func(s *Source, machines int) {
		res, err := s.ObserveVMs(context.Background(), plugins.ObserveVMsRequest{VMs: allVMQueries(machines)})
		if err != nil {
			t.Fatal(err)
		}
		for a, o := range res.VMs {
			if !o.Found {
				t.Fatalf("%s not found", a)
			}
		}
	})
}

// sameRoundTrips runs call on a source logged in to a 10-VM inventory and
// on one logged in to the shared 300-VM inventory, each through a
// counting transport, and requires both to take the same HTTP round
// trips: 4 (CreateContainerView, RetrieveProperties ×2, DestroyView).
func sameRoundTrips(t *testing.T, what string, call func(s *Source, machines int)) {
	t.Helper()
	small := startSim(t, vcsimtest.Options{Machine: 5})
	count := func(srv *vcsimtest.Server, machines int) int64 {
		s := newTestSource(t, blockConfig(srv, nil))
		c := countRoundTrips(s)
		if _, err := observeOne(context.Background(), s, "DC0_H0_VM0"); err != nil { // logs in
			t.Fatal(err)
		}
		c.n.Store(0)
		call(s, machines)
		return c.n.Load()
	}
	n10 := count(small, 5)
	n300 := count(sharedBigSim(t), bigMachines)
	t.Logf("round trips: 10 VMs %d, %d VMs %d", n10, 2*bigMachines, n300)
	if n10 != n300 {
		t.Errorf("%s 10 VMs took %d round trips, %d VMs took %d", what, n10, 2*bigMachines, n300)
	}
	if n10 != 4 {
		t.Errorf("round trips = %d, want 4", n10)
	}
}

func TestObservePaths(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	ctx := context.Background()
	c, f := admin(t, srv)
	vmFolder, err := f.Folder(ctx, "/DC0/vm")
	if err != nil {
		t.Fatal(err)
	}
	prod, err := vmFolder.CreateFolder(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	moved := findVM(t, f, "/DC0/vm/DC0_H0_VM1")
	task, err := prod.MoveInto(ctx, []types.ManagedObjectReference{moved.Reference()})
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	// A second VM named like one elsewhere makes the bare name ambiguous.
	twin := findVM(t, f, "/DC0/vm/DC0_C0_RP0_VM1")
	if task, err = prod.MoveInto(ctx, []types.ManagedObjectReference{twin.Reference()}); err == nil {
		err = task.Wait(ctx)
	}
	if err == nil {
		task, err = object.NewVirtualMachine(c.Client, twin.Reference()).Rename(ctx, "DC0_H0_VM0")
	}
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	s := newTestSource(t, blockConfig(srv, nil))
	tests := map[string]struct {
		path    string
		found   string // VM name, or "" for not found
		summary string // error finding expected when not found
	}{
		"absolute in a folder": {path: "/DC0/vm/prod/DC0_H0_VM1", found: "DC0_H0_VM1"},
		"relative":             {path: "prod/DC0_H0_VM1", found: "DC0_H0_VM1"},
		"bare name":            {path: "DC0_H0_VM1", found: "DC0_H0_VM1"},
		"absolute twin":        {path: "/DC0/vm/prod/DC0_H0_VM0", found: "DC0_H0_VM0"},
		"ambiguous":            {path: "DC0_H0_VM0", summary: "ambiguous VM name"},
		"missing":              {path: "/DC0/vm/nope", summary: "VM not found"},
		"old path":             {path: "/DC0/vm/DC0_H0_VM1", summary: "VM not found"},
	}
	var qs []plugins.VMQuery
	for name, tc := range tests {
		qs = append(qs, plugins.VMQuery{Address: name, Path: tc.path, PowerOff: true})
	}
	res, err := s.ObserveVMs(ctx, plugins.ObserveVMsRequest{VMs: qs})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range tests {
		o := res.VMs[name]
		if tc.found != "" {
			if !o.Found || o.Facts.Name != tc.found {
				t.Errorf("%s: found %v name %q, want %q (%+v)", name, o.Found, o.Facts.Name, tc.found, o.Findings)
			}
			continue
		}
		if o.Found || len(o.Findings) != 1 || o.Findings[0].Summary != tc.summary || o.Findings[0].Severity != plugins.SeverityError {
			t.Errorf("%s: %+v, want one error finding %q", name, o, tc.summary)
		}
	}
}
