package vsphere

import (
	"context"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/vsphere/vcsimtest"
)

// TestDiscoverRoundTripsDoNotGrow lists every VM of a 10-VM and a 300-VM
// inventory through a counting transport: the HTTP round trips must be
// the same, and as few as observation's. Every VM comes back with its
// facts. (The time is BenchmarkDiscover's.)
func TestDiscoverRoundTripsDoNotGrow(t *testing.T) {
	sameRoundTrips(t, "discovering", func(s *Source, machines int) {
		res, err := s.Discover(context.Background(), plugins.DiscoverRequest{PowerOff: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.VMs) != 2*machines || len(res.Skipped) != 0 {
			t.Fatalf("%d VMs and %v skipped, want %d VMs", len(res.VMs), res.Skipped, 2*machines)
		}
		for _, vm := range res.VMs {
			f := vm.Observation.Facts
			if !vm.Observation.Found || vm.Observation.Fingerprint == "" || vm.Path != "/DC0/vm/"+f.Name || vm.Name != f.Name || vm.Folder != "/DC0/vm" ||
				f.CPUs < 1 || f.MemoryMiB < 1 || len(f.Disks) != 1 || f.Disks[0].CapacityBytes <= 0 || f.PowerState != "poweredOn" {
				t.Fatalf("%+v", vm)
			}
			for _, fd := range vm.Observation.Findings {
				if fd.Severity == plugins.SeverityError {
					t.Errorf("%s: unexpected error finding %+v", vm.Path, fd)
				}
			}
		}
	})
}

// TestDiscoverSelects: a folder (relative or absolute) keeps its VMs at
// any depth, patterns keep the names they match, a template is skipped
// with the reason, a VM a migration names (by name or path) says which,
// and the findings are made for the power-off setting asked.
func TestDiscoverSelects(t *testing.T) {
	srv := startSim(t, vcsimtest.Options{})
	ctx := context.Background()
	_, f := admin(t, srv)
	root, err := f.Folder(ctx, "/DC0/vm")
	if err != nil {
		t.Fatal(err)
	}
	prod, err := root.CreateFolder(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	web, err := prod.CreateFolder(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	for p, to := range map[string]*object.Folder{"/DC0/vm/DC0_H0_VM1": prod, "/DC0/vm/DC0_C0_RP0_VM1": web} {
		task, err := to.MoveInto(ctx, []types.ManagedObjectReference{findVM(t, f, p).Reference()})
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	tmpl := findVM(t, f, "/DC0/vm/DC0_C0_RP0_VM0")
	task, err := tmpl.PowerOff(ctx)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err == nil {
		err = tmpl.MarkAsTemplate(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}

	s := newTestSource(t, blockConfig(srv, nil))
	paths := func(r plugins.DiscoverResponse) []string {
		var out []string
		for _, vm := range r.VMs {
			out = append(out, vm.Path+" "+vm.Folder+" "+vm.NamedBy)
		}
		return out
	}
	tests := map[string]struct {
		req     plugins.DiscoverRequest
		want    []string
		skipped []string
	}{
		"all": {req: plugins.DiscoverRequest{Known: map[string]string{"migration.a": "DC0_H0_VM0", "migration.b": "/DC0/vm/prod/web/DC0_C0_RP0_VM1"}},
			want: []string{"/DC0/vm/DC0_H0_VM0 /DC0/vm migration.a", "/DC0/vm/prod/DC0_H0_VM1 /DC0/vm/prod ",
				"/DC0/vm/prod/web/DC0_C0_RP0_VM1 /DC0/vm/prod/web migration.b"},
			skipped: []string{"/DC0/vm/DC0_C0_RP0_VM0: a template"}},
		"relative folder, at any depth": {req: plugins.DiscoverRequest{Folder: "prod"},
			want: []string{"/DC0/vm/prod/DC0_H0_VM1 /DC0/vm/prod ", "/DC0/vm/prod/web/DC0_C0_RP0_VM1 /DC0/vm/prod/web "}},
		"absolute folder": {req: plugins.DiscoverRequest{Folder: "/DC0/vm/prod/web/"},
			want: []string{"/DC0/vm/prod/web/DC0_C0_RP0_VM1 /DC0/vm/prod/web "}},
		"patterns": {req: plugins.DiscoverRequest{Match: []string{"*_H0_VM0", "DC0_C0_*"}},
			want: []string{"/DC0/vm/DC0_H0_VM0 /DC0/vm ", "/DC0/vm/prod/web/DC0_C0_RP0_VM1 /DC0/vm/prod/web "}, skipped: []string{"/DC0/vm/DC0_C0_RP0_VM0: a template"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res, err := s.Discover(ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, paths(res)); diff != "" {
				t.Errorf("VMs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.skipped, res.Skipped); diff != "" {
				t.Errorf("skipped (-want +got):\n%s", diff)
			}
		})
	}

	on, err := s.Discover(ctx, plugins.DiscoverRequest{Match: []string{"DC0_H0_VM0"}})
	if err != nil {
		t.Fatal(err)
	}
	if fs := on.VMs[0].Observation.Findings; len(fs) != 1 || fs[0].Summary != "VM is poweredOn" {
		t.Errorf("findings without power_off: %+v", fs)
	}
	for _, bad := range []plugins.DiscoverRequest{{Folder: "nowhere"}, {Match: []string{"["}}} {
		if _, err := s.Discover(ctx, bad); err == nil || !plugins.IsTerminal(err) {
			t.Errorf("%+v: err = %v, want a terminal error", bad, err)
		}
	}
}

// BenchmarkDiscover lists every VM of an inventory of
// HYPERAGENT_BENCH_DISCOVER_VMS VMs (default 300), as
// `hyperagent discover` does, reporting the time and the HTTP round trips
// of one listing.
//
//	go test -run '^$' -bench Discover -benchtime 10x ./plugins/vsphere/
func BenchmarkDiscover(b *testing.B) {
	clearBenchEnv(b)
	n := benchSize(b, "HYPERAGENT_BENCH_DISCOVER_VMS", 300)
	srv := benchSim(b, n)
	b.Run("vms="+strconv.Itoa(n), func(b *testing.B) {
		s, c := benchLoggedIn(b, srv)
		ctx := context.Background()
		for b.Loop() {
			res, err := s.Discover(ctx, plugins.DiscoverRequest{PowerOff: true})
			if err != nil {
				b.Fatal(err)
			}
			if len(res.VMs) != n {
				b.Fatalf("%d VMs, want %d", len(res.VMs), n)
			}
		}
		b.ReportMetric(float64(c.n.Load())/float64(b.N), "round-trips/op")
	})
}
