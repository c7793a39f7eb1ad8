package hyper2kvm

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
	"github.com/hypersdk/hyperagent/plugins/worker"
)

// TestSubmitManifest checks the manifest Submit writes, field by field
// where docs/protocol.md has a rule, and that submitting again adds nothing.
func TestSubmitManifest(t *testing.T) {
	f := newFixture(t)
	d0 := writeDisk(t, filepath.Join(f.in, "a.raw"), 1)
	d1 := writeDisk(t, filepath.Join(f.in, "b.raw"), 2)
	d1.ID, d1.BootOrder, d1.SHA256 = "disk1", 1, strings.ToUpper(d1.SHA256)
	d0.Identity = &plugins.FileIdentity{Dev: 2049, Ino: 77, Size: d0.Size, MtimeNS: 1, CtimeNS: 2}
	req := submitReq("migration.web[\"web-01\"]", "web-01-abcd-a1", d0, d1)
	req.Options.Fix.Enabled, req.Options.Fix.Fstab = true, "stabilize-all"
	if _, err := f.submit(req); err != nil {
		t.Fatal(err)
	}
	if _, err := f.submit(req); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(f.wf, protocol.DirQueued))
	if len(entries) != 1 || entries[0].Name() != "web-01-abcd-a1.json" {
		t.Fatalf("queue holds %v, want exactly web-01-abcd-a1.json", entries)
	}
	raw, _ := os.ReadFile(filepath.Join(f.wf, protocol.DirQueued, "web-01-abcd-a1.json"))
	var generic map[string]any
	json.Unmarshal(raw, &generic)
	disk0 := generic["disks"].([]any)[0].(map[string]any)
	if v, ok := disk0["boot_order_hint"]; !ok || v.(float64) != 0 {
		t.Errorf("boot_order_hint 0 must be written, got %v (present %v)", v, ok)
	}
	for k := range disk0 { // the daemon's schema: the file identity is a tag, never a disk field
		switch k {
		case "id", "source_format", "bytes", "local_path", "checksum", "boot_order_hint", "label", "disk_type":
		default:
			t.Errorf("disks[0] has the key %q, which the Artifact Manifest v1.0 does not define", k)
		}
	}
	for _, stage := range []string{"inspect", "fix", "convert", "validate"} {
		if _, ok := generic["pipeline"].(map[string]any)[stage]; !ok {
			t.Errorf("pipeline.%s missing: every stage must be written", stage)
		}
	}
	m, err := protocol.ParseManifest(raw, ".json")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if m.VM.Firmware != "uefi" || m.VM.MemGB != 3 || m.VM.CPU != 2 || m.VM.OSHint != "linux" {
		t.Errorf("vm = %+v", m.VM)
	}
	if m.Metadata.JobID != req.JobID || m.Metadata.Tags["address"] != req.Address {
		t.Errorf("metadata = %+v", m.Metadata)
	}
	if id, ok, err := m.Identity(m.Disks[0]); !ok || err != nil || id != protocol.FileIdentity(*d0.Identity) {
		t.Errorf("disk0's identity = %+v, %v, %v; want %+v from the export", id, ok, err, *d0.Identity)
	}
	if _, ok, _ := m.Identity(m.Disks[1]); ok {
		t.Errorf("disk1 has an identity tag, but its export recorded none: %v", m.Metadata.Tags)
	}
	if m.Output.Directory != filepath.Join(f.out, req.JobID) || m.Output.Format != "qcow2" {
		t.Errorf("output = %+v", m.Output)
	}
	wantDisks := []protocol.Disk{
		{ID: "disk0", SourceFormat: "raw", Bytes: d0.Size, LocalPath: d0.Path, Checksum: "sha256:" + d0.SHA256, BootOrderHint: 0, DiskType: "boot"},
		{ID: "disk1", SourceFormat: "raw", Bytes: d1.Size, LocalPath: d1.Path, Checksum: "sha256:" + strings.ToLower(d1.SHA256), BootOrderHint: 1, DiskType: "data"},
	}
	if diff := cmp.Diff(wantDisks, m.Disks); diff != "" {
		t.Errorf("disks (-want +got):\n%s", diff)
	}
	if !m.Pipeline.Fix.Enabled || m.Pipeline.Fix.FstabMode != "stabilize-all" || !m.Pipeline.Convert.Enabled || !m.Pipeline.Validate.CheckImageIntegrity {
		t.Errorf("pipeline = %+v", m.Pipeline)
	}

	bad := submitReq("migration.bad", "bad-a1", plugins.Disk{ID: "d", Path: "relative.vmdk", Format: "vmdk"})
	if _, err := f.submit(bad); err == nil || !plugins.IsTerminal(err) {
		t.Errorf("an invalid manifest must be refused terminally, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(f.wf, protocol.DirQueued, "bad-a1.json")); !os.IsNotExist(err) {
		t.Errorf("an invalid manifest was written")
	}
}

// TestClientAgainstWorker: Submit, run the real worker once (real
// qemu-img), and observe the job succeeded with its output sized and
// sha256'd. The export recorded the disk's file identity, and the worker,
// finding the file unchanged, took the export's sha256 without reading the
// file again.
func TestClientAgainstWorker(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatalf("qemu-img not found: install Debian's qemu-utils (.ci/setup does): %v", err)
	}
	f := newFixture(t)
	disk := writeDisk(t, filepath.Join(f.in, "a.raw"), 3)
	fi, err := os.Stat(disk.Path)
	if err != nil {
		t.Fatal(err)
	}
	disk.Identity = plugins.IdentityOf(fi)
	id := "web-5b0e7f2a0000-a1"
	if _, err := f.submit(submitReq("migration.web", id, disk)); err != nil {
		t.Fatal(err)
	}
	if got := f.observe(t, id)[id].State; got != plugins.JobQueued {
		t.Fatalf("after submit: %s, want queued", got)
	}
	w, err := worker.New(worker.Config{WorkflowDir: f.wf, InputRoots: []string{f.in}, OutputRoots: []string{f.out},
		Once: true, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	obs := f.observe(t, id)[id]
	if obs.State != plugins.JobSucceeded || len(obs.Outputs) != 1 {
		t.Fatalf("observed %+v, want succeeded with one output", obs)
	}
	out := obs.Outputs[0]
	wantPath := filepath.Join(f.out, id, "disk0.qcow2")
	_, size := sha(t, wantPath)
	// Sized, not hashed: the engine hashes in the migration's await step.
	if diff := cmp.Diff(plugins.Output{DiskID: "disk0", Path: wantPath, Format: "qcow2", Size: size}, out); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if b, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", "qcow2", disk.Path, wantPath).CombinedOutput(); err != nil {
		t.Errorf("qemu-img compare: %v\n%s", err, b)
	}
	var rep protocol.Report
	if b, err := os.ReadFile(filepath.Join(f.out, id, "report.json")); err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	if res, _ := rep.Pipeline.Stages["convert"].Result.(string); !strings.Contains(res, "sha256 is the one the export computed") {
		t.Errorf("convert result %q: the export's sha256 was not taken for the unchanged file", res)
	}
	// Submitting the finished job again is a no-op.
	if _, err := f.submit(submitReq("migration.web", id, disk)); err != nil {
		t.Fatal(err)
	}
	if e, _ := os.ReadDir(filepath.Join(f.wf, protocol.DirQueued)); len(e) != 0 {
		t.Errorf("resubmitting a finished job queued it again: %v", e)
	}
	// Each observation sizes the output anew.
	os.WriteFile(wantPath, []byte("tampered"), 0o644)
	if got := f.observe(t, id)[id].Outputs[0]; got.Size != 8 {
		t.Errorf("a changed output was not sized again: %+v", got)
	}
}
