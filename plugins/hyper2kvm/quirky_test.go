package hyper2kvm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
)

// quirkyDaemon stands in for the real hyper2kvm daemon with its habits:
// it writes sidecars after moving the manifest and in several writes, files
// results under the local date the job finished, and clash-renames.
type quirkyDaemon struct {
	t  *testing.T
	wf string
}

func (d quirkyDaemon) move(from, to string) {
	d.t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(d.wf, to)), 0o755); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(d.wf, from), filepath.Join(d.wf, to)); err != nil {
		d.t.Fatal(err)
	}
}

// produce writes the output a job's manifest names, as a converter would.
func (d quirkyDaemon) produce(m *protocol.Manifest, content string) {
	for _, dk := range m.Disks {
		mustWrite(d.t, m.OutputPath(dk), content)
	}
}

func (f *fixture) submitted(t *testing.T, id string) *protocol.Manifest {
	t.Helper()
	disk := writeDisk(t, filepath.Join(f.in, id+".raw"), 9)
	if _, err := f.submit(submitReq("migration."+id, id, disk)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(f.wf, protocol.DirQueued, id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := protocol.ParseManifest(b, ".json")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const fullReport = `{"version":"1.0","timestamp":"2026-11-23T00:00:01Z","hyper2kvm_version":"0.9",
 "input_manifest":{"path":"x","manifest_version":"1.0","source_vm_name":"web-01"},
 "pipeline":{"success":true,"duration_seconds":3.5,"stages":{"convert":{"success":true,"duration":3.1,"result":"ok"}}},
 "artifacts":[{"type":"converted_disk","path":"OUT","disk_id":"disk0","format":"qcow2","size_bytes":6,"boot_order_hint":0,"compressed":false}],
 "warnings":[],"errors":[],"summary":{"total_stages":1,"successful_stages":1,"failed_stages":0,"total_artifacts":1}}`

func TestQuirkyDaemon(t *testing.T) {
	f := newFixture(t)
	d := quirkyDaemon{t: t, wf: f.wf}

	// Sidecar after the move, written in two parts: processing until parseable.
	m := f.submitted(t, "two-writes")
	d.move("to_be_processed/two-writes.json", "processing/two-writes.json")
	if got := f.observe(t, "two-writes")["two-writes"].State; got != plugins.JobProcessing {
		t.Errorf("claimed: %s, want processing", got)
	}
	d.produce(m, "qcow2!")
	d.move("processing/two-writes.json", "processed/2026-11-23/two-writes.json")
	if got := f.observe(t, "two-writes")["two-writes"].State; got != plugins.JobProcessing {
		t.Errorf("moved, no sidecar: %s, want processing", got)
	}
	side := filepath.Join(f.wf, "processed/2026-11-23/two-writes.json.report.json")
	report := strings.Replace(fullReport, "OUT", m.OutputPath(m.Disks[0]), 1)
	mustWrite(t, side, report[:len(report)/2])
	if obs := f.observe(t, "two-writes")["two-writes"]; obs.State != plugins.JobProcessing || !strings.Contains(obs.Detail, "waiting") {
		t.Errorf("half a sidecar: %+v, want processing (waiting)", obs)
	}
	mustWrite(t, side, report)
	obs := f.observe(t, "two-writes")["two-writes"]
	if obs.State != plugins.JobSucceeded || len(obs.Outputs) != 1 || obs.Outputs[0].Size != 6 {
		t.Errorf("whole sidecar: %+v, want succeeded with a sized output", obs)
	}

	// Completion dates across midnight, a clash-renamed job, both legacy
	// short reports, an error sidecar, and a full report that failed.
	for _, id := range []string{"before-midnight", "after-midnight", "clash", "failed", "pipeline-failed", "missing-output"} {
		f.submitted(t, id)
	}
	mb := f.submitted(t, "short-success")
	mc := f.submitted(t, "short-completed")
	d.move("to_be_processed/before-midnight.json", "processed/2026-11-22/before-midnight.json")
	mustWrite(t, filepath.Join(f.wf, "processed/2026-11-22/before-midnight.json.report.json"), `{"job_id":"before-midnight","status":"success","duration_s":12}`)
	d.move("to_be_processed/after-midnight.json", "processed/2026-11-23/after-midnight.json")
	mustWrite(t, filepath.Join(f.wf, "processed/2026-11-23/after-midnight.json.report.json"), `{"manifest":"after-midnight.json","status":"completed","completed_at":"2026-11-23T00:00:04"}`)
	for _, id := range []string{"before-midnight", "after-midnight"} {
		mm, _ := protocol.ParseManifest(mustRead(t, f.wf, id), ".json")
		d.produce(mm, "out-"+id)
	}
	d.move("to_be_processed/short-success.json", "processed/2026-11-23/short-success.json")
	mustWrite(t, filepath.Join(f.wf, "processed/2026-11-23/short-success.json.report.json"), `{"job_id":"short-success","status":"success","duration_s":1}`)
	d.produce(mb, "abc")
	d.move("to_be_processed/short-completed.json", "processed/2026-11-23/short-completed.json")
	mustWrite(t, filepath.Join(f.wf, "processed/2026-11-23/short-completed.json.report.json"), `{"manifest":"short-completed.json","status":"completed","completed_at":"x"}`)
	d.produce(mc, "abcd")
	mustWrite(t, filepath.Join(f.wf, "processing/clash.json"), "{}") // an older job holds the name
	d.move("to_be_processed/clash.json", "processing/clash_20261123_000102.json")
	os.Remove(filepath.Join(f.wf, "processing/clash.json"))
	d.move("to_be_processed/failed.json", "failed/2026-11-23/failed.json")
	mustWrite(t, filepath.Join(f.wf, "failed/2026-11-23/failed.json.error.json"),
		`{"job_id":"failed","original_name":"failed.json","failed_at":"2026-11-23T01:00:00","error":"virt-v2v exited 1","exception":"RuntimeError","status":"failed"}`)
	d.move("to_be_processed/pipeline-failed.json", "processed/2026-11-23/pipeline-failed.json")
	mustWrite(t, filepath.Join(f.wf, "processed/2026-11-23/pipeline-failed.json.report.json"),
		strings.Replace(strings.Replace(fullReport, `"success":true,"duration_seconds"`, `"success":false,"duration_seconds"`, 1),
			`"errors":[]`, `"errors":[{"stage":"fix","message":"grub not found","timestamp":"t"}]`, 1))
	d.move("to_be_processed/missing-output.json", "processed/2026-11-23/missing-output.json")
	mustWrite(t, filepath.Join(f.wf, "processed/2026-11-23/missing-output.json.report.json"), `{"job_id":"missing-output","status":"success"}`)

	got := f.observe(t, "before-midnight", "after-midnight", "short-success", "short-completed", "clash", "failed", "pipeline-failed", "missing-output", "never-submitted")
	want := map[string]plugins.JobState{
		"before-midnight": plugins.JobSucceeded, "after-midnight": plugins.JobSucceeded,
		"short-success": plugins.JobSucceeded, "short-completed": plugins.JobSucceeded,
		"clash": plugins.JobProcessing, "failed": plugins.JobFailed, "pipeline-failed": plugins.JobFailed,
		"missing-output": plugins.JobFailed, "never-submitted": plugins.JobUnknown,
	}
	for id, st := range want {
		if got[id].State != st {
			t.Errorf("%s: %s (%+v), want %s", id, got[id].State, got[id], st)
		}
	}
	if o := got["short-success"].Outputs; len(o) != 1 || o[0].Path != mb.OutputPath(mb.Disks[0]) || o[0].Size != 3 {
		t.Errorf("short report outputs = %+v", o)
	}
	if e := got["failed"].Error; e != "virt-v2v exited 1" {
		t.Errorf("failed error = %q", e)
	}
	if e := got["pipeline-failed"].Error; !strings.Contains(e, "grub not found") {
		t.Errorf("pipeline-failed error = %q", e)
	}
	if e := got["missing-output"].Error; !strings.Contains(e, "no such file") {
		t.Errorf("missing-output error = %q", e)
	}

	// Submitting a job that sits clash-renamed in processing/ adds nothing.
	if _, err := f.submit(submitReq("migration.clash", "clash", writeDisk(t, filepath.Join(f.in, "clash.raw"), 9))); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.wf, "to_be_processed/clash.json")); !os.IsNotExist(err) {
		t.Errorf("a clash-renamed job was submitted a second time (%v)", err)
	}

	// The clash-renamed job finishes under its new name: matched by prefix.
	mcl, _ := protocol.ParseManifest(mustReadPath(t, filepath.Join(f.wf, "processing/clash_20261123_000102.json")), ".json")
	d.produce(mcl, "clashed")
	d.move("processing/clash_20261123_000102.json", "processed/2026-11-23/clash_20261123_000102.json")
	mustWrite(t, filepath.Join(f.wf, "processed/2026-11-23/clash_20261123_000102.json.report.json"), `{"job_id":"clash_20261123_000102","status":"success"}`)
	if obs := f.observe(t, "clash")["clash"]; obs.State != plugins.JobSucceeded {
		t.Errorf("clash after finishing: %+v", obs)
	}
	// A prefix that is not the clash pattern is another job.
	if obs := f.observe(t, "clash_2026")["clash_2026"]; obs.State != plugins.JobUnknown {
		t.Errorf("clash_2026 matched someone else's job: %+v", obs)
	}
}

func mustRead(t *testing.T, wf, id string) []byte {
	matches, _ := filepath.Glob(filepath.Join(wf, "processed", "*", id+".json"))
	if len(matches) != 1 {
		t.Fatalf("%s: %v", id, matches)
	}
	return mustReadPath(t, matches[0])
}

func mustReadPath(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type fakeUnits struct {
	st  UnitState
	err error
	n   int
}

func (f *fakeUnits) UnitState(ctx context.Context, unit string) (UnitState, error) {
	f.n++
	return f.st, f.err
}

// TestStalled: queued or processing past the timeout is stalled, with the
// daemon unit's state (read once per pass) or why it is unknown.
func TestStalled(t *testing.T) {
	units := &fakeUnits{st: UnitState{ActiveState: "active", SubState: "running", MainPID: 4242, NRestarts: 3}}
	tests := []struct {
		name       string
		unit       string
		reader     *fakeUnits
		wantDetail string
	}{
		{"unit-state", "hyper2kvm@vsphere.service", units, "unit hyper2kvm@vsphere.service: ActiveState=active SubState=running MainPID=4242 NRestarts=3"},
		{"no-unit", "", units, "unit state unknown: no unit configured"},
		{"no-bus", "hyper2kvm.service", &fakeUnits{err: errors.New("no system bus")}, "unit state unknown: no system bus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, WithUnitStateReader(tt.reader))
			f.c.cfg.Unit = tt.unit
			f.submitted(t, "queued")
			f.submitted(t, "claimed")
			quirkyDaemon{t: t, wf: f.wf}.move("to_be_processed/claimed.json", "processing/claimed.json")
			obs := f.observe(t, "queued", "claimed")
			if obs["queued"].State != plugins.JobQueued || obs["claimed"].State != plugins.JobProcessing {
				t.Fatalf("before the timeout: %+v", obs)
			}
			f.now = f.now.Add(61 * time.Minute)
			calls := tt.reader.n
			obs = f.observe(t, "queued", "claimed")
			for _, id := range []string{"queued", "claimed"} {
				if obs[id].State != plugins.JobStalled || !strings.HasSuffix(obs[id].Detail, tt.wantDetail) {
					t.Errorf("%s: %s %q, want stalled ending %q", id, obs[id].State, obs[id].Detail, tt.wantDetail)
				}
			}
			if obs["queued"].Claimed || !obs["claimed"].Claimed {
				t.Errorf("claimed: queued %v, claimed %v; want false, true", obs["queued"].Claimed, obs["claimed"].Claimed)
			}
			if tt.unit != "" && tt.reader.n-calls != 1 {
				t.Errorf("unit state read %d times in one pass, want 1", tt.reader.n-calls)
			}
		})
	}
}

func TestWithdraw(t *testing.T) {
	f := newFixture(t)
	f.submitted(t, "queued")
	f.submitted(t, "claimed")
	quirkyDaemon{t: t, wf: f.wf}.move("to_be_processed/claimed.json", "processing/claimed.json")
	ctx := context.Background()
	r, err := f.c.Withdraw(ctx, plugins.WithdrawRequest{Address: "migration.queued", JobID: "queued", Want: f.wants["queued"]})
	if err != nil || !r.Withdrawn {
		t.Fatalf("withdraw queued: %+v %v", r, err)
	}
	if _, err := os.Stat(filepath.Join(f.wf, protocol.DirWithdrawn, "queued.json")); err != nil {
		t.Errorf("withdrawn manifest not kept: %v", err)
	}
	if obs := f.observe(t, "queued")["queued"]; obs.State != plugins.JobUnknown || !strings.Contains(obs.Detail, "withdrawn") {
		t.Errorf("after withdraw: %+v", obs)
	}
	r, err = f.c.Withdraw(ctx, plugins.WithdrawRequest{Address: "migration.claimed", JobID: "claimed", Want: f.wants["claimed"]})
	if err != nil || r.Withdrawn || !strings.Contains(r.Detail, "claimed") {
		t.Errorf("withdraw claimed: %+v %v, want not withdrawn with a reason", r, err)
	}
	if _, err := os.Stat(filepath.Join(f.wf, "processing/claimed.json")); err != nil {
		t.Errorf("a claimed job was touched: %v", err)
	}
}

// TestWithdrawErrorHasNoStepPrefix: the engine prefixes "withdraw
// <address>: "; the converter's error names the job and the cause only.
func TestWithdrawErrorHasNoStepPrefix(t *testing.T) {
	f := newFixture(t)
	f.submitted(t, "queued")
	mustWrite(t, filepath.Join(f.wf, protocol.DirWithdrawn), "a file where the directory should be")
	_, err := f.c.Withdraw(context.Background(), plugins.WithdrawRequest{Address: "migration.queued", JobID: "queued", Want: f.wants["queued"]})
	if err == nil || !strings.HasPrefix(err.Error(), "job queued: ") {
		t.Errorf("Withdraw = %v, want an error starting \"job queued: \"", err)
	}
}

// TestLeaseIsProgress: a job hyperagent's worker claimed long ago but
// whose lease it still renews is converting, not stalled; once the lease
// stops being renewed the timeout counts from its last renewal.
func TestLeaseIsProgress(t *testing.T) {
	f := newFixture(t)
	f.submitted(t, "long")
	quirkyDaemon{t: t, wf: f.wf}.move("to_be_processed/long.json", "processing/long.json")
	lease := filepath.Join(f.wf, "processing", ".long.json.lease")
	mustWrite(t, lease, "worker-1 token\n")
	f.now = f.now.Add(3 * time.Hour) // past the 1h timeout since the claim
	if err := os.Chtimes(lease, f.now, f.now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if o := f.observe(t, "long")["long"]; o.State != plugins.JobProcessing || !o.Claimed {
		t.Fatalf("a renewed lease: %+v, want processing", o)
	}
	f.now = f.now.Add(61 * time.Minute)
	if o := f.observe(t, "long")["long"]; o.State != plugins.JobStalled || !o.Claimed {
		t.Fatalf("a lease not renewed for over the timeout: %+v, want stalled and claimed", o)
	}
}

// TestObserverNeverFollowsSymlinks: a job "file" that is a symlink (a
// worker moves one to failed/ as it is) is not a job: never followed, never
// read.
func TestObserverNeverFollowsSymlinks(t *testing.T) {
	f := newFixture(t)
	f.submitted(t, "real")
	target := filepath.Join(f.wf, protocol.DirQueued, "real.json")
	day := filepath.Join(f.wf, protocol.DirFailed, "2026-12-01")
	if err := os.MkdirAll(day, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(day, "link.json")); err != nil {
		t.Fatal(err)
	}
	f.wants["link"] = f.wants["real"]
	if o := f.observe(t, "link")["link"]; o.State != plugins.JobUnknown {
		t.Errorf("a symlinked job file was taken for a job: %+v", o)
	}
}
