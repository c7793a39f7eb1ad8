package hyper2kvm

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
	"github.com/hypersdk/hyperagent/plugins/worker"
	"github.com/hypersdk/hyperagent/schema"
)

// startWorker runs the real worker on the fixture's workflow directory
// until the returned stop (a graceful stop) and waits until it is ready:
// its heartbeat written, rewritten every second, so fresh for three
// however slow the machine.
func startWorker(t *testing.T, f *fixture, in, out string) (stop func()) {
	t.Helper()
	w, err := worker.New(worker.Config{WorkflowDir: f.wf, InputRoots: []string{in}, OutputRoots: []string{out},
		HeartbeatInterval: time.Second, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	select {
	case <-w.Ready():
		return stop
	case err := <-done:
		t.Fatalf("worker: %v", err)
		return nil
	}
}

// check runs CheckJobs with the converter's clock at now, unless the test
// moved it.
func (f *fixture) check(t *testing.T, jobs ...plugins.JobCheck) plugins.CheckJobsResponse {
	t.Helper()
	resp, err := f.c.CheckJobs(context.Background(), plugins.CheckJobsRequest{Jobs: jobs})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// summaries renders findings as "severity: summary | detail" per address.
func summaries(resp plugins.CheckJobsResponse) map[string][]string {
	out := map[string][]string{}
	for addr, fs := range resp.Findings {
		for _, f := range fs {
			out[addr] = append(out[addr], string(f.Severity)+": "+f.Summary+" | "+f.Detail)
		}
	}
	return out
}

func job(addr, exportDir string, edit func(*schema.ConvertSettings)) plugins.JobCheck {
	o := schema.ConvertSettings{Format: "qcow2", Validate: true}
	if edit != nil {
		edit(&o)
	}
	return plugins.JobCheck{Address: addr, Options: o, ExportDir: exportDir}
}

// TestCheckJobsNoConsumer: with no heartbeat and no unit, nobody serves
// the queue, and every job says so.
func TestCheckJobsNoConsumer(t *testing.T) {
	f := newFixture(t)
	resp := f.check(t, job("migration.a", f.in, nil), job("migration.b", f.in, nil))
	want := "no worker heartbeat in " + filepath.Join(f.wf, ".workers") + " and no unit configured"
	if diff := cmp.Diff(plugins.ConsumerStatus{Live: false, Detail: want}, resp.Consumer); diff != "" {
		t.Errorf("consumer (-want +got):\n%s", diff)
	}
	for _, addr := range []string{"migration.a", "migration.b"} {
		fs := resp.Findings[addr]
		if len(fs) != 1 || fs[0].Severity != plugins.SeverityError || fs[0].Summary != "no live consumer serves "+f.wf+": "+want ||
			!strings.Contains(fs[0].Detail, "hyperagent worker -workflow-dir="+f.wf) {
			t.Errorf("%s: %+v", addr, fs)
		}
	}
}

// TestCheckJobsAgainstWorker: a running worker's heartbeat makes it the
// live consumer; jobs it could not run (fix, inspect, inputs or outputs
// outside its roots) get error findings with the fix; a heartbeat older
// than three intervals, or none after a graceful stop, serves nothing.
func TestCheckJobsAgainstWorker(t *testing.T) {
	f := newFixture(t)
	stop := startWorker(t, f, f.in, f.out)
	f.now = time.Now()
	elsewhere := filepath.Join(f.root, "elsewhere")
	link := filepath.Join(f.root, "in-link") // resolves into the input root
	if err := os.Symlink(f.in, link); err != nil {
		t.Fatal(err)
	}
	jobs := []plugins.JobCheck{
		job("migration.ok", filepath.Join(f.in, "web", "not-yet-exported"), nil),
		job("migration.link", filepath.Join(link, "db"), nil),
		job("migration.fix", f.in, func(o *schema.ConvertSettings) { o.Fix.Enabled = true }),
		job("migration.inspect", f.in, func(o *schema.ConvertSettings) { o.Inspect = true }),
		job("migration.elsewhere", elsewhere, nil),
	}
	resp := f.check(t, jobs...)
	if !resp.Consumer.Live || !regexp.MustCompile(`^worker on \S+ \(pid \d+\), heartbeat \d+s ago$`).MatchString(resp.Consumer.Detail) {
		t.Errorf("consumer = %+v", resp.Consumer)
	}
	got := summaries(resp)
	realIn, _ := filepath.EvalSymlinks(f.in)
	want := map[string][]string{
		"migration.fix": {"error: the built-in worker cannot run fix (no libguestfs) | remove the fix block, or use the hyper2kvm daemon on " +
			f.wf + " (and name its unit in the converter block)"},
		"migration.inspect": {"error: the built-in worker cannot run inspect (no libguestfs) | set inspect = false in the convert block, " +
			"or use the hyper2kvm daemon on " + f.wf + " (and name its unit in the converter block)"},
		"migration.elsewhere": {"error: the export directory " + elsewhere + " is outside every live worker's input roots | add -input-root=" +
			elsewhere + " (or a parent) to the worker, or set export.dir under one of them (worker on "},
	}
	for addr, lines := range want {
		if len(got[addr]) != 1 || !strings.HasPrefix(got[addr][0], lines[0]) {
			t.Errorf("%s: findings %q, want one starting %q", addr, got[addr], lines[0])
		}
		delete(got, addr)
	}
	if len(got) != 0 {
		t.Errorf("unexpected findings: %q", got)
	}
	if s := summaries(resp)["migration.elsewhere"]; len(s) == 1 && !strings.Contains(s[0], "has "+realIn+")") {
		t.Errorf("the export-dir finding does not name the worker's roots: %q", s)
	}

	// The same worker, against a converter whose output_dir it may not write.
	c2, err := New(Config{WorkflowDir: f.wf, OutputDir: elsewhere, Timeout: "1h"}, nil, WithClock(time.Now))
	if err != nil {
		t.Fatal(err)
	}
	resp, err = c2.CheckJobs(context.Background(), plugins.CheckJobsRequest{Jobs: jobs[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if s := summaries(resp)["migration.ok"]; len(s) != 1 || !strings.HasPrefix(s[0],
		"error: the converter's output_dir "+elsewhere+" is outside every live worker's output roots | add -output-root="+elsewhere) {
		t.Errorf("output_dir outside the worker's roots: %q", s)
	}

	// Three intervals without an update: stale, by the converter's clock.
	f.now = time.Now().Add(time.Minute)
	resp = f.check(t, jobs[0])
	if resp.Consumer.Live || !strings.Contains(resp.Consumer.Detail, "stale (written every 1s)") ||
		!strings.HasSuffix(resp.Consumer.Detail, "no fresh worker heartbeat in "+filepath.Join(f.wf, ".workers")+" and no unit configured") {
		t.Errorf("stale heartbeat: consumer = %+v", resp.Consumer)
	}
	if s := summaries(resp)["migration.ok"]; len(s) != 1 || !strings.HasPrefix(s[0], "error: no live consumer serves "+f.wf+": worker on ") {
		t.Errorf("stale heartbeat: findings %q", s)
	}

	stop()
	f.now = time.Now()
	if resp = f.check(t, jobs[0]); resp.Consumer.Live || !strings.HasPrefix(resp.Consumer.Detail, "no worker heartbeat in ") {
		t.Errorf("after a graceful stop: consumer = %+v", resp.Consumer)
	}
}

// TestCheckJobsUnitOverDBus: the daemon unit named in the block, read over
// a real (private) bus. Active, it serves every stage and its roots are
// unknown: no findings, except warnings for a live worker that could claim
// a job and fail it. Inactive, nothing serves the queue.
func TestCheckJobsUnitOverDBus(t *testing.T) {
	addr := privateSystemBus(t)
	fakeSystemd(t, addr, map[string]map[string]map[string]any{
		"hyper2kvm@vsphere.service": {
			"org.freedesktop.systemd1.Unit":    {"ActiveState": "active", "SubState": "running"},
			"org.freedesktop.systemd1.Service": {"MainPID": uint32(4242), "NRestarts": uint32(0)},
		},
		"hyper2kvm@old.service": {
			"org.freedesktop.systemd1.Unit":    {"ActiveState": "inactive", "SubState": "dead"},
			"org.freedesktop.systemd1.Service": {"MainPID": uint32(0), "NRestarts": uint32(0)},
		},
	})
	f := newFixture(t)
	elsewhere := filepath.Join(f.root, "elsewhere")
	jobs := []plugins.JobCheck{
		job("migration.fix", elsewhere, func(o *schema.ConvertSettings) { o.Fix.Enabled = true }),
		job("migration.plain", f.in, nil),
	}

	f.c.cfg.Unit = "hyper2kvm@old.service"
	resp := f.check(t, jobs...)
	want := "hyper2kvm@old.service is inactive (dead); no worker heartbeat in " + filepath.Join(f.wf, ".workers")
	if resp.Consumer.Live || resp.Consumer.Detail != want {
		t.Errorf("inactive unit: consumer = %+v, want detail %q", resp.Consumer, want)
	}
	if s := summaries(resp)["migration.plain"]; len(s) != 1 || !strings.HasPrefix(s[0], "error: no live consumer serves "+f.wf+": "+want) {
		t.Errorf("inactive unit: findings %q", s)
	}

	f.c.cfg.Unit = "hyper2kvm@vsphere.service"
	resp = f.check(t, jobs...)
	if !resp.Consumer.Live || resp.Consumer.Detail != "hyper2kvm@vsphere.service is active (running); no worker heartbeat in "+filepath.Join(f.wf, ".workers") {
		t.Errorf("active unit: consumer = %+v", resp.Consumer)
	}
	if len(resp.Findings) != 0 {
		t.Errorf("active unit: findings %q, want none (it runs fix; its roots are unknown)", summaries(resp))
	}

	startWorker(t, f, f.in, f.out)
	f.now = time.Now()
	resp = f.check(t, jobs...)
	if !resp.Consumer.Live || !strings.Contains(resp.Consumer.Detail, "), heartbeat ") || !strings.HasSuffix(resp.Consumer.Detail, "; hyper2kvm@vsphere.service is active (running)") {
		t.Errorf("active unit and a worker: consumer = %+v", resp.Consumer)
	}
	got := summaries(resp)
	if s := got["migration.fix"]; len(s) != 2 || !strings.HasPrefix(s[0], "warning: worker on ") || !strings.Contains(s[0], " cannot run fix (no libguestfs) | if it claims this job") ||
		!strings.HasPrefix(s[1], "warning: the export directory "+elsewhere+" is outside the input roots of worker on ") {
		t.Errorf("active unit and a worker: fix job findings %q, want two warnings", s)
	}
	if s := got["migration.plain"]; len(s) != 0 {
		t.Errorf("active unit and a worker: plain job findings %q", s)
	}
}

// TestCheckJobsZlibWorker: a worker whose qemu-img cannot write zstd
// lists compress:zlib in its heartbeat, and a job asking for compressed
// output is warned at plan time; one that does not ask is not, and a
// worker with zstd (this machine's, probed at start) warns of nothing.
func TestCheckJobsZlibWorker(t *testing.T) {
	f := newFixture(t)
	stop := startWorker(t, f, f.in, f.out)
	f.now = time.Now()
	compressed := job("migration.small", f.in, func(o *schema.ConvertSettings) { o.Compress = true })
	plain := job("migration.plain", f.in, nil)
	if got := summaries(f.check(t, compressed, plain)); len(got) != 0 {
		t.Fatalf("a worker with zstd: findings %q", got)
	}
	stop()

	h := &protocol.Heartbeat{Version: protocol.HeartbeatVersion, Host: "old-host", PID: 4242, StartedAt: f.now, UpdatedAt: f.now,
		IntervalSeconds: 5, WorkerVersion: "test", InputRoots: []string{f.in}, OutputRoots: []string{f.out},
		Capabilities: []string{protocol.CapConvert, protocol.CapValidate, protocol.CapChecksum, protocol.CapCompressZlib}}
	data, err := h.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(f.wf, protocol.DirWorkers)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, protocol.HeartbeatName(h.Host, h.PID)), data, 0o644); err != nil {
		t.Fatal(err)
	}
	got := summaries(f.check(t, compressed, plain))
	want := map[string][]string{"migration.small": {"warning: worker on old-host (pid 4242) compresses with zlib: its qemu-img cannot write zstd | " +
		"a compressed conversion there takes several times as long as with zstd (bench/worker/convert.sh); install a qemu-img of QEMU 5.1 or later " +
		"on that host and restart the worker, or set compress = false in the convert block"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}
