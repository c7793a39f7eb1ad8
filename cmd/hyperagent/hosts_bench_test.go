package main

import (
	"archive/tar"
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hypersdk/hyperagent/reconcile/pgstate"
	"github.com/hypersdk/hyperagent/reconcile/pgstate/pgtest"
)

// BenchmarkHostsThroughput runs one campaign of 30 OVAs (each a disk of
// HYPERAGENT_BENCH_DISK_MIB, default 64, of random bytes: converted for
// real) with 1, 2 and then 3 hosts, each host an agent and a worker
// (one job at a time) on one PostgreSQL workspace and one workflow
// directory, no limit declared but each agent's parallelism (3). It
// reports, for each, the time from the agents' start to the 30th
// domain, the throughput in MiB/s of disk migrated and its ratio to one
// host's, the CPU its agents and workers used (own-cpu%, of the machine's
// capacity), and how busy the machine's CPUs (all processes, others'
// too) and the work directory's disk were meanwhile (from /proc/stat and
// /proc/diskstats), which says which of them limits.
//
//	go test -run '^$' -bench HostsThroughput -benchtime 1x ./cmd/hyperagent/
func BenchmarkHostsThroughput(b *testing.B) {
	cs := pgtest.ConnStr(b, os.Getenv)
	diskMiB := 64
	if v := os.Getenv("HYPERAGENT_BENCH_DISK_MIB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("HYPERAGENT_BENCH_DISK_MIB=%q: want a number of MiB", v)
		}
		diskMiB = n
	}
	const vms = 30
	var base float64
	for b.Loop() {
		for hosts := 1; hosts <= 3; hosts++ {
			took, own, cpu, disk := hostsRun(b, cs, hosts, vms, diskMiB)
			mibs := float64(vms*diskMiB) / took.Seconds()
			if hosts == 1 {
				base = mibs
			}
			b.ReportMetric(took.Seconds(), fmt.Sprintf("s/%d-hosts", hosts))
			b.ReportMetric(mibs, fmt.Sprintf("MiB/s/%d-hosts", hosts))
			b.ReportMetric(mibs/base, fmt.Sprintf("x/%d-hosts", hosts))
			b.ReportMetric(own, fmt.Sprintf("own-cpu%%/%d-hosts", hosts))
			b.ReportMetric(cpu, fmt.Sprintf("cpu%%/%d-hosts", hosts))
			b.ReportMetric(disk, fmt.Sprintf("disk%%/%d-hosts", hosts))
		}
	}
}

// hostsRun migrates one campaign with n hosts and returns how long it
// took, the CPU time its agents and workers (their qemu-img included)
// used, and how busy the machine's CPUs and the disk were meanwhile, as
// percents of the machine's capacity over that time.
func hostsRun(b *testing.B, cs string, n, vms, diskMiB int) (took time.Duration, ownPct, cpuPct, diskPct float64) {
	hw := newHostsWorld(b, cs, vms, diskMiB, hostsLimits{})
	for _, a := range hw.addrs {
		key := strings.TrimSuffix(strings.TrimPrefix(a, `migration.vm["`), `"]`)
		fillOVADisk(b, filepath.Join(hw.work, "nas", "vm-"+key+".ova"), rand.Uint64())
	}
	state, err := pgstate.NewStore(cs, hw.ws)
	if err != nil {
		b.Fatal(err)
	}
	defer state.Close()
	cpu0, disk0, at0 := cpuTicks(b), diskTicks(b, hw.work), time.Now()
	var cmds []*exec.Cmd
	for i := range n {
		cmds = append(cmds, hw.startWorker(b, i, 1))
		cmd, _ := hw.startHost(b, i, newPGRelay(b, cs), cs)
		cmds = append(cmds, cmd)
	}
	for deadline := time.Now().Add(15 * time.Minute); hw.defined(b, state) < vms; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d hosts: %d of %d defined after 15 minutes", n, hw.defined(b, state), vms)
		}
	}
	took = time.Since(at0)
	cpu1, disk1 := cpuTicks(b), diskTicks(b, hw.work)
	var own time.Duration
	for _, c := range cmds {
		if code := stop(c); code != 0 {
			b.Errorf("%s exited %d", c.Args[1], code)
		}
		own += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
	}
	busy, total := float64(cpu1[0]-cpu0[0]), float64(cpu1[1]-cpu0[1])
	capacity := took.Seconds() * float64(runtime.NumCPU())
	return took, 100 * own.Seconds() / capacity, 100 * busy / total, 100 * float64(disk1-disk0) / float64(took.Milliseconds())
}

// fillOVADisk writes pseudo-random bytes over the disk member of an OVA
// writeSparseOVA made (its second member), so that converting it is
// real work.
func fillOVADisk(b *testing.B, path string, seed uint64) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	ovf, err := tr.Next()
	if err != nil {
		b.Fatal(err)
	}
	disk, err := tr.Next()
	if err != nil {
		b.Fatal(err)
	}
	off := 512 + (ovf.Size+511)/512*512 + 512
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		b.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	if _, err := io.CopyN(f, rng, disk.Size); err != nil {
		b.Fatal(err)
	}
}

// cpuTicks reads the busy and the total jiffies of all CPUs.
func cpuTicks(b *testing.B) [2]uint64 {
	line, err := procLine("/proc/stat", "cpu ")
	if err != nil {
		b.Fatal(err)
	}
	var busy, total uint64
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return [2]uint64{busy, total}
}

// diskTicks reads the milliseconds the disk holding dir spent doing I/O
// (the io_ticks of /proc/diskstats).
func diskTicks(b *testing.B, dir string) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		b.Fatal(err)
	}
	line, err := procLine("/proc/diskstats", fmt.Sprintf("%d %d ", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil {
		b.Fatal(err)
	}
	fields := strings.Fields(line)
	if len(fields) < 13 {
		b.Fatalf("/proc/diskstats: %q", line)
	}
	v, err := strconv.ParseUint(fields[12], 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// procLine returns the first line of file starting with prefix, its
// blanks each made one space.
func procLine(file, prefix string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.Join(strings.Fields(sc.Text()), " "); strings.HasPrefix(l, prefix) {
			return l, nil
		}
	}
	return "", fmt.Errorf("%s: no line starting %q", file, prefix)
}
