package worker

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hypersdk/hyperagent/docs"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// TestProgressFile runs real qemu-img on a job of two disks (a quarter of
// each pseudo-random data, the rest holes), paced by -rate-limit so that
// it takes about a second and a half: every progress file the worker
// writes is read as it lands. The figures only grow, never pass the total
// (the disks' bytes), come at least ProgressInterval apart, move from the
// first disk to the second, and end at the total; each names the claim's
// lease and is valid against docs/schema/progress.json; and once the job
// is done no progress file or temp file is left.
func TestProgressFile(t *testing.T) {
	requireQemuImg(t)
	d := newDirs(t)
	small, big := filepath.Join(d.in, "small.raw"), filepath.Join(d.in, "big.raw")
	makeRaw(t, small, 16<<20, 7)
	makeRaw(t, big, 64<<20, 8)
	m := d.manifest(t, "paced", "qcow2", [2]string{small, "raw"}, [2]string{big, "raw"})
	d.queueManifest(t, m)
	cfg := d.config()
	cfg.RateLimit, cfg.ProgressInterval = 12<<20, 100*time.Millisecond
	w := newWorker(t, cfg)

	type seen struct {
		p     protocol.Progress
		lease protocol.Lease
	}
	var mu sync.Mutex
	var writes []seen
	var errs []string
	w.testHook = func(event, path string) {
		if event != "progress" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err.Error())
			return
		}
		if err := docs.Validate("progress.json", b); err != nil {
			errs = append(errs, err.Error())
		}
		p, err := protocol.ParseProgress(b)
		if err != nil {
			errs = append(errs, err.Error())
			return
		}
		lb, err := os.ReadFile(filepath.Join(filepath.Dir(path), protocol.LeaseName(p.Job)))
		if err != nil {
			errs = append(errs, err.Error())
			return
		}
		l, err := protocol.ParseLease(lb)
		if err != nil {
			errs = append(errs, err.Error())
			return
		}
		writes = append(writes, seen{*p, l})
	}
	runWithin(t, w, 2*time.Minute)
	d.finished(t, protocol.DirProcessed, "paced.json", protocol.ReportSuffix)

	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d progress files written", len(writes))
	if len(errs) > 0 {
		t.Fatalf("reading the progress files: %v", errs)
	}
	if len(writes) < 6 {
		t.Fatalf("%d progress files written, want one every 100ms of a conversion of about 1.5s: %+v", len(writes), writes)
	}
	total := m.Disks[0].Bytes + m.Disks[1].Bytes
	var prev int64 = -1
	disks := map[string]bool{}
	for i, s := range writes {
		p := s.p
		if p.Job != "paced.json" || p.TotalBytes != total || p.Token != s.lease.Token {
			t.Errorf("write %d: %+v (lease %+v): want job paced.json, total %d, the lease's token", i, p, s.lease, total)
		}
		if p.DoneBytes <= prev || p.DoneBytes > total {
			t.Errorf("write %d: done %d after %d, total %d: want growing, within the total", i, p.DoneBytes, prev, total)
		}
		if p.Disk == "disk1" && p.DoneBytes < m.Disks[0].Bytes {
			t.Errorf("write %d: %d done in disk1, before all of disk0 (%d)", i, p.DoneBytes, m.Disks[0].Bytes)
		}
		if i > 0 && i < len(writes)-1 {
			if gap := p.UpdatedAt.Sub(writes[i-1].p.UpdatedAt); gap < cfg.ProgressInterval {
				t.Errorf("write %d came %v after the one before, want at least %v", i, gap, cfg.ProgressInterval)
			}
		}
		prev = p.DoneBytes
		disks[p.Disk] = true
	}
	if last := writes[len(writes)-1].p; last.DoneBytes != total || last.Disk != "disk1" {
		t.Errorf("last write %+v: want all %d bytes, disk1", last, total)
	}
	if !disks["disk0"] || !disks["disk1"] {
		t.Errorf("progress named disks %v, want both", disks)
	}
	left, _ := filepath.Glob(filepath.Join(d.wf, protocol.DirProcessing, ".*progress*"))
	if len(left) > 0 {
		t.Errorf("left in processing/: %v", left)
	}
}

// TestProgressParser: qemu-img convert -p's records, however its output
// is cut into writes, give the shares in order; anything else (garbage,
// an overlong record, a share out of range) gives nothing.
func TestProgressParser(t *testing.T) {
	tests := map[string]struct {
		writes []string
		want   []float64
	}{
		"qemu-img 7.2": {[]string{"    (0.00/100%)\r    (1.56/100%)\r    (100.00/100%)\r    (100.00/100%)\r\n"},
			[]float64{0, 0.0156, 1, 1}},
		"cut anywhere":    {[]string{"    (12", ".5/10", "0%)\r", "  (50.00/100%)", "\r"}, []float64{0.125, 0.5}},
		"unended record":  {[]string{"    (33.00/100%)"}, nil},
		"garbage between": {[]string{"hello\r(50/100%)\rwarning: x\n (75.25/100%)\n"}, []float64{0.5, 0.7525}},
		"over 100":        {[]string{"(100.01/100%)\r(250/100%)\r(999/100%)\r"}, nil},
		"negative":        {[]string{"(-1.00/100%)\r"}, nil},
		"not a number":    {[]string{"(NaN/100%)\r(Inf/100%)\r(1e2/100%)\r(0x10/100%)\r"}, nil},
		"overlong record": {[]string{strings.Repeat(" ", 100) + "(10.00/100%)\r(20.00/100%)\r"}, []float64{0.2}},
		"overlong across writes": {[]string{strings.Repeat("x", 40), strings.Repeat("x", 40), "(10.00/100%)\r", "(30.00/100%)\r"},
			[]float64{0.3}},
		"empty records": {[]string{"\r\r\n\r(5.00/100%)\r"}, []float64{0.05}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var got []float64
			pp := &progressParser{report: func(s float64) { got = append(got, s) }}
			for _, w := range tt.writes {
				if n, err := pp.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
				t.Errorf("shares (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProgressEntries: which processing/ entries the orphan rule treats
// as progress files, and the job they are for.
func TestProgressEntries(t *testing.T) {
	for entry, want := range map[string]string{
		".j-a1.json.progress.json":                      "j-a1.json",
		".j-a1.json.progress.json.0123456789abcdef.tmp": "j-a1.json",
		".j-a1.json.lease":                              "",
		".j-a1.json.progress.json.bak":                  "",
		"j-a1.json.progress.json":                       "",
		".progress.json":                                "",
		"j-a1.json":                                     "",
	} {
		got, ok := progressEntry(entry)
		if ok != (want != "") || got != want {
			t.Errorf("progressEntry(%q) = %q, %v; want %q", entry, got, ok, want)
		}
	}
}

// TestProgressOrphans: a take-back pass removes the progress files of jobs
// no longer in processing/ and temp files once they are older than the
// lease, and leaves a job's progress that is still claimed, or recent; a
// job taken back from a dead holder goes back to the queue without its
// progress.
func TestProgressOrphans(t *testing.T) {
	d := newDirs(t)
	cfg := d.config()
	w := newWorker(t, cfg)
	proc := filepath.Join(d.wf, protocol.DirProcessing)
	old := time.Now().Add(-2 * cfg.Lease)
	files := map[string]bool{ // name → still there after the pass
		"live-a1.json":                                                    true,
		"dead-a1.json":                                                    false, // taken back
		protocol.LeaseName("dead-a1.json"):                                false,
		protocol.ProgressName("dead-a1.json"):                             false,
		protocol.ProgressName("live-a1.json"):                             true,  // its job is claimed
		protocol.ProgressName("gone-a1.json"):                             false, // its job left, long ago
		protocol.ProgressName("gone-a1.json") + ".0123456789abcdef.tmp":   false,
		protocol.ProgressName("live-a1.json") + ".fedcba9876543210.tmp":   false, // a dead writer's temp
		protocol.ProgressName("recent-a1.json"):                           true,  // its job just left
		protocol.ProgressName("recent-a1.json") + ".0123456789abcdef.tmp": true,
	}
	for name := range files {
		p := filepath.Join(proc, name)
		if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, ".recent") {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The claimed job's lease, fresh, so that the pass leaves it alone.
	if err := os.WriteFile(filepath.Join(proc, protocol.LeaseName("live-a1.json")), []byte("w 0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.reclaimStale()
	if q := d.queueDir(t); !cmp.Equal(q, []string{"dead-a1.json"}) {
		t.Errorf("queue after the pass: %v, want the dead holder's job back", q)
	}
	for name, stays := range files {
		_, err := os.Stat(filepath.Join(proc, name))
		if there := err == nil; there != stays {
			t.Errorf("%s: there after the pass = %v, want %v", name, there, stays)
		}
	}
}
