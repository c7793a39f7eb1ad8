package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm"
	"github.com/hypersdk/hyperagent/plugins/plugintest"
	"github.com/hypersdk/hyperagent/plugins/worker"
	"github.com/hypersdk/hyperagent/schema"
)

// events collects progress events from many goroutines.
type events struct {
	mu  sync.Mutex
	got []plugins.ProgressEvent
}

func (e *events) add(ev plugins.ProgressEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev)
}

func (e *events) all() []plugins.ProgressEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]plugins.ProgressEvent(nil), e.got...)
}

// TestAwaitProgressRealWorker: await on the hyper2kvm converter while the
// real worker converts a 64 MiB disk with real qemu-img (paced by its rate
// limit to about two seconds) reports the job's progress as the worker
// publishes it: figures that only grow, within the disk's bytes, and end
// at the total when the job succeeds.
func TestAwaitProgressRealWorker(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatalf("qemu-img not found: install Debian's qemu-utils (.ci/setup does): %v", err)
	}
	root := t.TempDir()
	wf, in, out := filepath.Join(root, "wf"), filepath.Join(root, "in"), filepath.Join(root, "out")
	for _, d := range []string{wf, in, out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	disk := sparseDisk(t, filepath.Join(in, "a.raw"), 64<<20)
	conv, err := hyper2kvm.New(hyper2kvm.Config{WorkflowDir: wf, OutputDir: out, Timeout: "5m"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req := plugins.SubmitRequest{Address: "migration.a", Campaign: testLineage, JobID: "a-000000000000-a1",
		Export: plugins.ExportResult{Disks: []plugins.Disk{disk},
			Facts: plugins.VMFacts{Name: "a", OSFamily: "linux", Firmware: "bios", CPUs: 1, MemoryMiB: 1024}},
		Options: schema.ConvertSettings{Format: "qcow2", Validate: true}}
	if _, err := conv.Submit(ctx, req); err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{WorkflowDir: wf, InputRoots: []string{in}, OutputRoots: []string{out},
		RateLimit: 8 << 20, ProgressInterval: 50 * time.Millisecond, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	defer func() { stop(); <-done }()

	var evs events
	p := newJobPoller(ctx, "converter.hyper2kvm.w", conv, 20*time.Millisecond, hclog.NewNullLogger(), evs.add)
	obs, err := p.wait(ctx, plugins.JobQuery{Address: req.Address, JobID: req.JobID, Want: req.Provenance()})
	if err != nil || obs.State != plugins.JobSucceeded {
		t.Fatalf("await: %+v, %v; want succeeded", obs, err)
	}
	got := evs.all()
	if len(got) < 4 {
		t.Fatalf("%d progress events, want the conversion seen moving: %+v", len(got), got)
	}
	var prev int64 = -1
	for i, ev := range got {
		if ev.Address != req.Address || ev.Item != plugins.ConversionItem(req.JobID) || ev.Total != disk.Size {
			t.Errorf("event %d: %+v, want the job's, total %d", i, ev, disk.Size)
		}
		if ev.Done <= prev || ev.Done > ev.Total {
			t.Errorf("event %d: done %d after %d, total %d: want growing within the total", i, ev.Done, prev, ev.Total)
		}
		prev = ev.Done
	}
	if last := got[len(got)-1]; last.Done != disk.Size {
		t.Errorf("last event %+v: want the whole disk, %d", last, disk.Size)
	}
}

// sparseDisk writes a raw disk of size bytes, a quarter of it
// pseudo-random data, and returns it as an export recorded it.
func sparseDisk(t *testing.T, path string, size int64) plugins.Disk {
	t.Helper()
	plugintest.WriteSparseRaw(t, path, size, 1)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return plugins.Disk{ID: "disk0", Path: path, Format: "raw", Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}
}

// figuresConverter is a converter whose jobs, once observed after
// release, end as end says; ReportProgress reports figures while it has
// them (none: a converter like the hyper2kvm daemon, which publishes none).
type figuresConverter struct {
	mu      sync.Mutex
	end     plugins.JobState
	ended   bool
	figures *plugins.ProgressEvent
}

func (c *figuresConverter) Submit(context.Context, plugins.SubmitRequest) (plugins.SubmitResponse, error) {
	return plugins.SubmitResponse{}, nil
}

func (c *figuresConverter) Withdraw(context.Context, plugins.WithdrawRequest) (plugins.WithdrawResponse, error) {
	return plugins.WithdrawResponse{}, nil
}

func (c *figuresConverter) ObserveJobs(_ context.Context, req plugins.ObserveJobsRequest) (plugins.ObserveJobsResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]plugins.JobObservation{}
	for _, q := range req.Jobs {
		st := plugins.JobProcessing
		if c.ended {
			st = c.end
		}
		out[q.JobID] = plugins.JobObservation{JobID: q.JobID, State: st, Error: "boom"}
	}
	return plugins.ObserveJobsResponse{Jobs: out}, nil
}

func (c *figuresConverter) ReportProgress(_ context.Context, req plugins.JobProgressRequest) error {
	c.mu.Lock()
	f := c.figures
	c.mu.Unlock()
	if f != nil {
		for _, q := range req.Jobs {
			req.Progress(plugins.ProgressEvent{Address: q.Address, Item: plugins.ConversionItem(q.JobID), Done: f.Done, Total: f.Total})
		}
	}
	return nil
}

// TestAwaitProgressFigures: what await passes on of a converter's
// figures. Figures are passed on when they move; a success after figures
// adds the total; a failure does not; a converter that publishes no
// figures gets none, whatever the end.
func TestAwaitProgressFigures(t *testing.T) {
	ev := func(done int64) plugins.ProgressEvent {
		return plugins.ProgressEvent{Address: "migration.a", Item: "conversion a-1", Done: done, Total: 100}
	}
	tests := map[string]struct {
		figures []int64 // published while the job runs, in turn
		end     plugins.JobState
		want    []plugins.ProgressEvent
	}{
		"success after figures":          {[]int64{10, 10, 40}, plugins.JobSucceeded, []plugins.ProgressEvent{ev(10), ev(40), ev(100)}},
		"success at the total":           {[]int64{30, 100}, plugins.JobSucceeded, []plugins.ProgressEvent{ev(30), ev(100)}},
		"failure after figures":          {[]int64{30}, plugins.JobFailed, []plugins.ProgressEvent{ev(30)}},
		"no figures (the daemon)":        {nil, plugins.JobSucceeded, nil},
		"no figures, stalled (a daemon)": {nil, plugins.JobStalled, nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := &figuresConverter{end: tt.end}
			var evs events
			p := newJobPoller(ctx, "converter.fake.conv", c, time.Hour, hclog.NewNullLogger(), evs.add)
			p.mu.Lock()
			p.waiters["a-1"] = &jobWaiter{q: plugins.JobQuery{Address: "migration.a", JobID: "a-1"}, done: make(chan jobAnswer, 1)}
			p.mu.Unlock()
			for _, done := range tt.figures {
				c.mu.Lock()
				c.figures = &plugins.ProgressEvent{Done: done, Total: 100}
				c.mu.Unlock()
				p.readProgress(ctx)
			}
			c.mu.Lock()
			c.ended = true
			c.mu.Unlock()
			p.round(ctx)
			if diff := cmp.Diff(tt.want, evs.all()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAwaitWithoutProgressHook: a run without a Progress hook reads no
// figures, even from a converter that publishes them.
func TestAwaitWithoutProgressHook(t *testing.T) {
	c := &figuresConverter{figures: &plugins.ProgressEvent{Done: 1, Total: 2}}
	p := newJobPoller(t.Context(), "converter.fake.conv", c, time.Hour, hclog.NewNullLogger(), nil)
	if p.reporter != nil {
		t.Error("a poller without a Progress hook reads figures")
	}
}

// reportingFake is the fake converter, reporting 30 of 100 bytes of each
// job it is processing.
type reportingFake struct{ *plugintest.Converter }

func (c reportingFake) ReportProgress(_ context.Context, req plugins.JobProgressRequest) error {
	for _, q := range req.Jobs {
		if st, _ := c.Job(q.JobID); st == plugins.JobProcessing {
			req.Progress(plugins.ProgressEvent{Address: q.Address, Item: plugins.ConversionItem(q.JobID), Done: 30, Total: 100})
		}
	}
	return nil
}

// TestApplyReportsConversionProgress: Apply passes the figures its
// converter reports of an awaited job to ApplyOptions.Progress, where the
// views take export progress from, and ends them at the total when the
// job succeeds.
func TestApplyReportsConversionProgress(t *testing.T) {
	h := newHarness(t, "", "a")
	h.conv.Rounds = 50
	h.set.Converters[convAddr.String()] = reportingFake{h.conv}
	p := h.plan(PlanRequest{})
	if _, err := h.store.Lock("apply"); err != nil {
		t.Fatal(err)
	}
	defer h.store.Unlock()
	var evs events
	res, err := h.engine().Apply(context.Background(), h.state(), p, ApplyOptions{Progress: evs.add})
	if err != nil || !res.OK() {
		t.Fatalf("apply: %+v, %v", res, err)
	}
	job := h.state().Migrations["migration.a"].Job.ID
	var conv []plugins.ProgressEvent
	for _, ev := range evs.all() {
		if ev.Item == plugins.ConversionItem(job) {
			conv = append(conv, ev)
		}
	}
	want := []plugins.ProgressEvent{
		{Address: "migration.a", Item: plugins.ConversionItem(job), Done: 30, Total: 100},
		{Address: "migration.a", Item: plugins.ConversionItem(job), Done: 100, Total: 100},
	}
	if diff := cmp.Diff(want, conv); diff != "" {
		t.Errorf("conversion progress (-want +got):\n%s", diff)
	}
}
