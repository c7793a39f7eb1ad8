package hyper2kvm

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
	"github.com/hypersdk/hyperagent/plugins/plugintest"
	"github.com/hypersdk/hyperagent/plugins/worker"
)

// progressOf asks the converter once about jobs (by id, for address
// "migration.<id>") and returns the events it reported.
func progressOf(t *testing.T, c *Converter, ids ...string) []plugins.ProgressEvent {
	t.Helper()
	var q []plugins.JobQuery
	for _, id := range ids {
		q = append(q, plugins.JobQuery{Address: "migration." + id, JobID: id})
	}
	var mu sync.Mutex
	var got []plugins.ProgressEvent
	err := c.ReportProgress(context.Background(), plugins.JobProgressRequest{Jobs: q, Progress: func(ev plugins.ProgressEvent) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ev)
	}})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestReportProgressAgainstWorker: the real worker converts a 64 MiB disk
// (a quarter of it pseudo-random data) with real qemu-img, paced by its
// rate limit to about two seconds; the converter, asked as the engine's
// await asks while the job runs, reports the job's figures moving up
// within the total, the disk's bytes, and nothing once the job is done.
func TestReportProgressAgainstWorker(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatalf("qemu-img not found: install Debian's qemu-utils (.ci/setup does): %v", err)
	}
	f := newFixture(t)
	disk := writeSparseDisk(t, filepath.Join(f.in, "a.raw"), 64<<20, 5)
	id := "paced-5b0e7f2a0000-a1"
	if _, err := f.submit(submitReq("migration.paced", id, disk)); err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{WorkflowDir: f.wf, InputRoots: []string{f.in}, OutputRoots: []string{f.out},
		Once: true, RateLimit: 8 << 20, ProgressInterval: 50 * time.Millisecond, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background()) }()
	var events []plugins.ProgressEvent
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		case <-time.After(10 * time.Millisecond):
		}
		events = append(events, progressOf(t, f.c, id)...)
	}
	if obs := f.observe(t, id)[id]; obs.State != plugins.JobSucceeded {
		t.Fatalf("job %+v, want succeeded", obs)
	}
	if after := progressOf(t, f.c, id); len(after) > 0 {
		t.Errorf("progress reported for a finished job: %+v", after)
	}
	moving := map[int64]bool{}
	var prev int64
	for i, ev := range events {
		if ev.Address != "migration."+id || ev.Item != plugins.ConversionItem(id) || ev.Total != disk.Size {
			t.Errorf("event %d: %+v, want the job's item, total %d", i, ev, disk.Size)
		}
		if ev.Done < prev || ev.Done > ev.Total {
			t.Errorf("event %d: done %d after %d, total %d: want growing within the total", i, ev.Done, prev, ev.Total)
		}
		if ev.Done > 0 && ev.Done < ev.Total {
			moving[ev.Done] = true
		}
		prev = ev.Done
	}
	if len(moving) < 3 {
		t.Errorf("%d distinct partial figures in %d events, want the conversion seen moving: %+v", len(moving), len(events), events)
	}
}

// writeSparseDisk writes a raw disk of size bytes, a quarter of it
// pseudo-random data, and returns it as an export recorded it.
func writeSparseDisk(t testing.TB, path string, size int64, seed uint64) plugins.Disk {
	t.Helper()
	plugintest.WriteSparseRaw(t, path, size, seed)
	sum, n := sha(t, path)
	return plugins.Disk{ID: "disk0", Path: path, Format: "raw", Size: n, SHA256: sum}
}

// TestReportProgressDistrust: progress files are read from processing/
// only for a claimed job, as regular files within bounds, naming the job
// and its current lease. Every other file gives no event (and a debug
// line), a FIFO does not block, and a job with no file at all (the
// hyper2kvm daemon's) has unknown progress.
func TestReportProgressDistrust(t *testing.T) {
	const token, other = "0123456789abcdef", "fedcba9876543210"
	valid := func(job string) string {
		return `{"version":1,"job":"` + job + `","token":"` + token + `","updated_at":"2026-11-23T08:00:00Z","done_bytes":400,"total_bytes":1000,"disk":"disk0"}`
	}
	tests := map[string]struct {
		name     string // the job file in processing/
		progress func(t *testing.T, path, job string)
		lease    string // "" for none
		want     []plugins.ProgressEvent
		logged   bool
	}{
		"believed": {name: "j-a1.json", progress: write(valid("j-a1.json")), lease: "w " + token + "\n",
			want: []plugins.ProgressEvent{{Address: "migration.j-a1", Item: "conversion j-a1", Done: 400, Total: 1000}}},
		"clash-renamed job": {name: "j-a1_20261123_080000.json", progress: write(valid("j-a1_20261123_080000.json")), lease: "w " + token + "\n",
			want: []plugins.ProgressEvent{{Address: "migration.j-a1", Item: "conversion j-a1", Done: 400, Total: 1000}}},
		"no progress file (the daemon)": {name: "j-a1.json", lease: "w " + token + "\n"},
		"another claim's":               {name: "j-a1.json", progress: write(valid("j-a1.json")), lease: "w " + other + "\n", logged: true},
		"no lease":                      {name: "j-a1.json", progress: write(valid("j-a1.json")), logged: true},
		"a garbled lease":               {name: "j-a1.json", progress: write(valid("j-a1.json")), lease: token, logged: true},
		"another job's":                 {name: "j-a1.json", progress: write(valid("k-a1.json")), lease: "w " + token + "\n", logged: true},
		"garbage":                       {name: "j-a1.json", progress: write("\x00\xffnot json"), lease: "w " + token + "\n", logged: true},
		"done over total": {name: "j-a1.json", progress: write(strings.Replace(valid("j-a1.json"), `"done_bytes":400`, `"done_bytes":1001`, 1)),
			lease: "w " + token + "\n", logged: true},
		"negative done": {name: "j-a1.json", progress: write(strings.Replace(valid("j-a1.json"), `"done_bytes":400`, `"done_bytes":-1`, 1)),
			lease: "w " + token + "\n", logged: true},
		"zero total": {name: "j-a1.json", progress: write(strings.Replace(valid("j-a1.json"), `"total_bytes":1000`, `"total_bytes":0`, 1)),
			lease: "w " + token + "\n", logged: true},
		"absurd total": {name: "j-a1.json", progress: write(strings.Replace(valid("j-a1.json"), `"total_bytes":1000`, `"total_bytes":9223372036854775807`, 1)),
			lease: "w " + token + "\n", logged: true},
		"newer version": {name: "j-a1.json", progress: write(strings.Replace(valid("j-a1.json"), `"version":1`, `"version":2`, 1)),
			lease: "w " + token + "\n", logged: true},
		"huge": {name: "j-a1.json", progress: write(valid("j-a1.json") + strings.Repeat(" ", protocol.ProgressMaxBytes)),
			lease: "w " + token + "\n", logged: true},
		"a symlink": {name: "j-a1.json", lease: "w " + token + "\n", logged: true, progress: func(t *testing.T, path, job string) {
			real := filepath.Join(t.TempDir(), "real.json")
			mustWrite(t, real, valid(job))
			if err := os.Symlink(real, path); err != nil {
				t.Fatal(err)
			}
		}},
		"a FIFO": {name: "j-a1.json", lease: "w " + token + "\n", logged: true, progress: func(t *testing.T, path, job string) {
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		"a directory": {name: "j-a1.json", lease: "w " + token + "\n", logged: true, progress: func(t *testing.T, path, job string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		"queued, not claimed": {name: "", progress: write(valid("j-a1.json")), lease: "w " + token + "\n"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			f := newFixture(t)
			c, err := New(Config{WorkflowDir: f.wf, OutputDir: f.out}, hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: &logs}))
			if err != nil {
				t.Fatal(err)
			}
			proc := filepath.Join(f.wf, protocol.DirProcessing)
			job := tt.name
			if job == "" { // the job sits in the queue; stray files in processing/
				job = "j-a1.json"
				mustWrite(t, filepath.Join(f.wf, protocol.DirQueued, job), "{}")
			} else {
				mustWrite(t, filepath.Join(proc, job), "{}")
			}
			mustWrite(t, filepath.Join(proc, ".keep"), "")
			if tt.lease != "" {
				mustWrite(t, filepath.Join(proc, protocol.LeaseName(job)), tt.lease)
			}
			if tt.progress != nil {
				tt.progress(t, filepath.Join(proc, protocol.ProgressName(job)), job)
			}
			got := progressOf(t, c, "j-a1")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if l := strings.Contains(logs.String(), "progress file ignored"); l != tt.logged {
				t.Errorf("logged that the file was ignored: %v, want %v:\n%s", l, tt.logged, logs.String())
			}
		})
	}
}

func write(data string) func(t *testing.T, path, job string) {
	return func(t *testing.T, path, _ string) { mustWrite(t, path, data) }
}

// TestReportProgressNoWorkflowDir: a workflow directory not made yet has
// no progress to report, and that is no error.
func TestReportProgressNoWorkflowDir(t *testing.T) {
	c, err := New(Config{WorkflowDir: filepath.Join(t.TempDir(), "none"), OutputDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := progressOf(t, c, "j-a1"); len(got) > 0 {
		t.Errorf("events %+v from nothing", got)
	}
}
