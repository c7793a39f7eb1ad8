package main

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// BenchmarkAwaitNotice measures how soon apply notices a finished job:
// from each job's success sidecar landing in the workflow directory (its
// modification time) to the end of apply's await step for it, over
// HYPERAGENT_BENCH_VMS migrations (default 48) of small disks
// (HYPERAGENT_BENCH_DISK_MIB, default 2) through the simulator, the worker
// and libvirt's test driver, the converter's watch (inotify) waking the
// await. It reports p50, p99 and the largest (goal: p99 at most 50 ms).
// A file's modification time is the kernel's coarse clock, up to a tick
// (1-4 ms) before the write: the figures are that much too large at worst.
//
//	go test -run '^$' -bench AwaitNotice -benchtime 1x ./cmd/hyperagent
func BenchmarkAwaitNotice(b *testing.B) {
	n, diskMiB := 48, 2
	if v, err := strconv.Atoi(os.Getenv("HYPERAGENT_BENCH_VMS")); err == nil && v > 0 {
		n = v
	}
	if v, err := strconv.Atoi(os.Getenv("HYPERAGENT_BENCH_DISK_MIB")); err == nil && v > 0 {
		diskMiB = v
	}
	ctx := context.Background()
	lv, err := holdTestDriver(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer lv.Disconnect()
	var all []time.Duration
	for range b.N {
		tl := newTimeline()
		w := pipelineWorld(b, n, diskMiB, false, tl.trace)
		stopLandings, err := tl.watchLandings(w.workflow)
		if err != nil {
			b.Fatal(err)
		}
		tl.t0 = time.Now()
		e := &env{stdin: os.Stdin, stdout: tl, stderr: discard{}, log: hclog.NewNullLogger(), registry: builtinRegistry(),
			environ: []string{"HYPERAGENT_VAR_vcenter_password=" + w.password}}
		if code := run(ctx, []string{"apply", "-auto-approve", "-json", w.dir}, e); code != exitOK {
			b.Fatalf("apply exited %d", code)
		}
		if err := stopLandings(); err != nil {
			b.Fatal(err)
		}
		got := tl.notices(w.jobOf(b))
		if len(got) != n {
			b.Fatalf("%d jobs noticed, want %d", len(got), n)
		}
		all = append(all, got...)
	}
	slices.Sort(all)
	at := func(q float64) float64 {
		return float64(all[min(len(all)-1, int(q*float64(len(all))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(float64(all[len(all)-1].Microseconds())/1000, "max-ms")
}
