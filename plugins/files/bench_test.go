package files

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hypersdk/hyperagent/plugins"
)

// BenchmarkObserveCached observes 500 OVF VMs whose hashes are cached: the
// cost of a plan over a warm files source (stat, parse, fingerprint).
func BenchmarkObserveCached(b *testing.B) {
	root := b.TempDir()
	spec := ovfSpec{CPUs: 2, Memory: "2048", MemUnits: "byte * 2^20", OSType: "ubuntu64Guest",
		NICs: []ovfNICSpec{{"00:50:56:00:00:01", "VM Network"}}}
	var q []plugins.VMQuery
	for i := 0; i < 500; i++ {
		s := spec
		s.Name = fmt.Sprintf("vm-%03d", i)
		s.Disks = []ovfDiskSpec{{ID: "vmdisk1", File: s.Name + "-disk1.vmdk", Capacity: 1}}
		dir := filepath.Join(root, s.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, s.Disks[0].File), make([]byte, 64<<10), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, s.Name+".ovf"), []byte(s.XML()), 0o644); err != nil {
			b.Fatal(err)
		}
		q = append(q, plugins.VMQuery{Address: s.Name, Path: s.Name})
	}
	src, err := New(Config{Dir: root}, nil)
	if err != nil {
		b.Fatal(err)
	}
	req := plugins.ObserveVMsRequest{VMs: q}
	if _, err := src.ObserveVMs(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := src.ObserveVMs(context.Background(), req)
		if err != nil || len(r.VMs) != 500 || !r.VMs["vm-000"].Found {
			b.Fatalf("observe: %v", err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/500, "µs/VM")
}

// BenchmarkUnpackOVA unpacks an OVA holding a 256 MiB disk: read, sha256,
// write, fsync, rename.
func BenchmarkUnpackOVA(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	disk := filepath.Join(dir, "d.vmdk")
	buf := make([]byte, size)
	rand.Read(buf)
	if err := os.WriteFile(disk, buf, 0o644); err != nil {
		b.Fatal(err)
	}
	s := webSpec()
	s.Disks = s.Disks[:1]
	s.Disks[0].File = "d.vmdk"
	ova := filepath.Join(dir, "vm.ova")
	f, err := os.Create(ova)
	if err != nil {
		b.Fatal(err)
	}
	tw := tar.NewWriter(f)
	x := []byte(s.XML())
	tw.WriteHeader(&tar.Header{Name: "vm.ovf", Typeflag: tar.TypeReg, Size: int64(len(x)), Mode: 0o644})
	tw.Write(x)
	tw.WriteHeader(&tar.Header{Name: "d.vmdk", Typeflag: tar.TypeReg, Size: size, Mode: 0o644})
	tw.Write(buf)
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	ctx := context.Background()
	idx, err := readOVAIndex(ctx, ova)
	if err != nil {
		b.Fatal(err)
	}
	out := b.TempDir()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := unpackOVA(ctx, ova, out, idx, func(string, int64, int64) {}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTreeScan walks a source dir of 500 OVF directories (descriptor,
// manifest, two disks each): the cost of one periodic rescan of Watch.
func BenchmarkTreeScan(b *testing.B) {
	root := b.TempDir()
	for i := 0; i < 500; i++ {
		dir := filepath.Join(root, fmt.Sprintf("vm-%03d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for _, f := range []string{"vm.ovf", "vm.mf", "vm-disk1.vmdk", "vm-disk2.vmdk"} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	t := &tree{root: root}
	ctx := context.Background()
	if _, err := t.scan(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		moved, err := t.scan(ctx)
		if err != nil || moved {
			b.Fatalf("scan of an unchanged tree: moved %v, %v", moved, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/500, "µs/VM")
}
