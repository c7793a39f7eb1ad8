package libvirt

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hypersdk/hyperagent/plugins"
)

// BenchmarkObserveDomains observes 200 defined domains (and 200 absent
// ones) in one call through the daemon's test driver.
func BenchmarkObserveDomains(b *testing.B) {
	cfg := Config{URI: testURI, StorageDir: b.TempDir(), NetworkMap: map[string]string{"VM Network": "default"},
		Machine: "q35", NVRAMDir: defaultNVRAMDir}
	tg, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tg.Close()
	ctx := context.Background()
	src := b.TempDir()
	var q []plugins.DomainQuery
	for i := 0; i < 200; i++ {
		name := fmt.Sprintf("bench-%d-%d", os.Getpid(), i)
		disk := filepath.Join(src, name+".qcow2")
		if err := os.WriteFile(disk, []byte("x"), 0o644); err != nil {
			b.Fatal(err)
		}
		a := fmt.Sprintf("migration.bench[%d]", i)
		_, err := tg.Define(ctx, plugins.DefineRequest{Address: a, Name: name,
			Facts:   plugins.VMFacts{CPUs: 1, MemoryMiB: 256, Firmware: "bios", NICs: []plugins.NIC{{ID: "n", MAC: "00:50:56:00:00:01", Network: "VM Network"}}},
			Outputs: []plugins.Output{{DiskID: "d0", Path: disk, Format: "qcow2"}}})
		if err != nil {
			b.Fatalf("define (is libvirtd running? run .ci/setup): %v", err)
		}
		q = append(q, plugins.DomainQuery{Address: a, Name: name, Networks: []string{"VM Network"}},
			plugins.DomainQuery{Address: a + "-absent", Name: name + "-absent"})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, err := tg.ObserveDomains(ctx, plugins.ObserveDomainsRequest{Domains: q})
		if err != nil {
			b.Fatal(err)
		}
		if len(r.Domains) != 400 {
			b.Fatalf("%d observations", len(r.Domains))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/200, "µs/domain")
}

// BenchmarkCopyVerified moves 256 MiB across filesystems (tmpfs to the
// test's TempDir): copy, sha256, fsync, rename.
func BenchmarkCopyVerified(b *testing.B) {
	const size = 256 << 20
	shm, err := os.MkdirTemp("/dev/shm", "hyperagent-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(shm)
	src := filepath.Join(shm, "disk.raw")
	buf := make([]byte, size)
	rand.Read(buf)
	if err := os.WriteFile(src, buf, 0o644); err != nil {
		b.Fatal(err)
	}
	dst := filepath.Join(b.TempDir(), "disk.raw")
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := copyVerified(context.Background(), src, dst, ""); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.Remove(dst); err != nil { // copyVerified never replaces dst
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
