package vsphere

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/vim25/mo"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/vsphere/vcsimtest"
	"github.com/hypersdk/hyperagent/schema"
)

// benchSims are built once per size: the simulator builds about 20 VMs a
// second, so 2,000 VMs take minutes before the first iteration.
var benchSims sync.Map // int (VMs) → *vcsimtest.Server

func benchSim(b *testing.B, vms int) *vcsimtest.Server {
	b.Helper()
	if v, ok := benchSims.Load(vms); ok {
		return v.(*vcsimtest.Server)
	}
	srv, err := vcsimtest.Start(vcsimtest.Options{Machine: vms / 2})
	if err != nil {
		b.Fatal(err)
	}
	benchSims.Store(vms, srv) // closed by TestMain
	return srv
}

// benchVMs is the inventory size: HYPERAGENT_BENCH_VMS, default 2,000.
func benchVMs(b *testing.B) int { return benchSize(b, "HYPERAGENT_BENCH_VMS", 2000) }

// benchSize is an inventory size from the environment variable name, or
// def.
func benchSize(b *testing.B, name string, def int) int {
	n := def
	if v := os.Getenv(name); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 {
			b.Fatalf("%s=%q: want an even number ≥ 2", name, v)
		}
	}
	return n
}

// BenchmarkObserve observes every VM of an inventory of 10 VMs and of
// HYPERAGENT_BENCH_VMS VMs, batched (what the source does) and with one
// finder lookup plus one property read per VM (what a naive tool does),
// reporting wall time and HTTP round trips per observation of all VMs.
// The naive loop grows with the square of the inventory (each lookup lists
// the folder); HYPERAGENT_BENCH_NAIVE_VMS limits it to that many VMs of
// each inventory; it reports its cost per VM either way.
//
//	HYPERAGENT_BENCH_VMS=2000 go test -run '^$' -bench Observe -benchtime 3x -timeout 30m ./plugins/vsphere/
func BenchmarkObserve(b *testing.B) {
	clearBenchEnv(b)
	for _, n := range []int{10, benchVMs(b)} {
		srv := benchSim(b, n)
		qs := allVMQueries(n / 2)
		b.Run("batched/vms="+strconv.Itoa(n), func(b *testing.B) {
			s, c := benchLoggedIn(b, srv)
			ctx := context.Background()
			for b.Loop() {
				res, err := s.ObserveVMs(ctx, plugins.ObserveVMsRequest{VMs: qs})
				if err != nil {
					b.Fatal(err)
				}
				if len(res.VMs) != n || !res.VMs[qs[n-1].Address].Found {
					b.Fatalf("%d answers", len(res.VMs))
				}
			}
			b.ReportMetric(float64(c.n.Load())/float64(b.N), "round-trips/op")
		})
		b.Run("finder-per-vm/vms="+strconv.Itoa(n), func(b *testing.B) {
			ctx := context.Background()
			u := *srv.URL
			u.User = url.UserPassword(srv.Username, srv.Password)
			gc, err := govmomi.NewClient(ctx, &u, true)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = gc.Logout(ctx) }()
			c := &counter{rt: gc.Client.Client.Transport}
			gc.Client.Client.Transport = c
			f := find.NewFinder(gc.Client)
			sample := qs
			if v := os.Getenv("HYPERAGENT_BENCH_NAIVE_VMS"); v != "" {
				k, err := strconv.Atoi(v)
				if err != nil || k < 1 {
					b.Fatalf("HYPERAGENT_BENCH_NAIVE_VMS=%q", v)
				}
				sample = qs[:min(k, len(qs))]
			}
			start := time.Now()
			for b.Loop() {
				for _, q := range sample {
					vm, err := f.VirtualMachine(ctx, q.Path)
					if err != nil {
						b.Fatal(err)
					}
					var m mo.VirtualMachine
					if err := vm.Properties(ctx, vm.Reference(), vmProps, &m); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(c.n.Load())/float64(b.N), "round-trips/op")
			b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N*len(sample)), "ms/vm")
			b.ReportMetric(float64(len(sample)), "vms-looked-up")
		})
	}
}

func clearBenchEnv(b *testing.B) {
	for _, k := range govcEnv {
		b.Setenv(k, "")
	}
}

// benchLoggedIn is a source logged in to srv, outside the timing, whose
// HTTP round trips are counted from then on.
func benchLoggedIn(b *testing.B, srv *vcsimtest.Server) (*Source, *counter) {
	b.Helper()
	s := benchSource(b, srv)
	c := countRoundTrips(s)
	if _, err := observeOne(context.Background(), s, "DC0_H0_VM0"); err != nil {
		b.Fatal(err)
	}
	c.n.Store(0)
	return s, c
}

func benchSource(b *testing.B, srv *vcsimtest.Server) *Source {
	b.Helper()
	v, err := Factory().New(context.Background(), plugins.NewRequest{Config: blockConfig(srv, nil)})
	if err != nil {
		b.Fatal(err)
	}
	s := v.(*Source)
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkExport exports one VM whose disk holds
// HYPERAGENT_BENCH_EXPORT_MIB (default 256) seeded MiB from an in-process
// simulator, so a CPU profile shows both ends. bench/vsphere/export.sh
// compares the throughput with govc and a raw copy, the simulator in its
// own process.
func BenchmarkExport(b *testing.B) {
	clearBenchEnv(b)
	mib := 256
	if v := os.Getenv("HYPERAGENT_BENCH_EXPORT_MIB"); v != "" {
		var err error
		if mib, err = strconv.Atoi(v); err != nil || mib < 1 {
			b.Fatalf("HYPERAGENT_BENCH_EXPORT_MIB=%q", v)
		}
	}
	srv, err := vcsimtest.Start(vcsimtest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ref, err := srv.FindVM("DC0_H0_VM0")
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.MakeExportable(ref); err != nil {
		b.Fatal(err)
	}
	data := content(7, mib<<20)
	if _, err := srv.Seed(ref, 0, bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	want := sha(data)
	s := benchSource(b, srv)
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		dir := b.TempDir()
		res, err := s.Export(ctx, plugins.ExportRequest{Address: "m", VM: "/DC0/vm/DC0_H0_VM0", Dir: dir,
			Settings: schema.ExportSettings{Dir: dir, PowerOff: true, RestorePower: true}, Progress: func(plugins.ProgressEvent) {}})
		if err != nil {
			b.Fatal(err)
		}
		if got := res.Export.Disks[0].SHA256; got != want {
			b.Fatalf("sha256 %s, want %s", got, want)
		}
	}
}
