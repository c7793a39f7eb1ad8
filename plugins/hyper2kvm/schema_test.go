package hyper2kvm

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/docs"
	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
	"github.com/hypersdk/hyperagent/plugins/worker"
)

// The protocol's files, as the two sides write them, are valid against
// the schemas published for other implementers (docs/schema): the
// manifests Submit queues, and the worker's report (beside the manifest
// and in the output directory) and error sidecar, written by the real
// worker with real qemu-img.
func TestProtocolFilesMatchTheSchemas(t *testing.T) {
	f := newFixture(t)
	good := writeDisk(t, filepath.Join(f.in, "a.raw"), 1)
	second := writeDisk(t, filepath.Join(f.in, "b.raw"), 2)
	second.ID, second.BootOrder = "disk1", 1
	bad := writeDisk(t, filepath.Join(f.in, "c.raw"), 3)
	bad.SHA256 = "0000000000000000000000000000000000000000000000000000000000000000" // the worker's check fails
	noNICs := submitReq("migration.db", "db-5b0e7f2a0000-a1", bad)
	noNICs.Export.Facts.NICs = nil
	fixed := submitReq(`migration.web["web-01"]`, "web__web-01-5b0e7f2a0000-a1", good, second)
	fixed.Options.Fix.Enabled, fixed.Options.Fix.Fstab, fixed.Options.Compress = true, "stabilize-all", true
	plain := submitReq("migration.app", "app-5b0e7f2a0000-a1", good)
	for _, req := range []plugins.SubmitRequest{fixed, plain, noNICs} {
		if _, err := f.submit(req); err != nil {
			t.Fatal(err)
		}
		checkFile(t, "manifest.json", filepath.Join(f.wf, protocol.DirQueued, req.JobID+".json"))
	}
	// The worker refuses fix without -skip-guest-fixes: run it with it,
	// so that this job succeeds with its stages reported skipped.
	w, err := worker.New(worker.Config{WorkflowDir: f.wf, InputRoots: []string{f.in}, OutputRoots: []string{f.out},
		Once: true, SkipGuestFixes: true, Logger: hclog.NewNullLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	reports, _ := filepath.Glob(filepath.Join(f.wf, protocol.DirProcessed, "*", "*"+protocol.ReportSuffix))
	errs, _ := filepath.Glob(filepath.Join(f.wf, protocol.DirFailed, "*", "*"+protocol.ErrorSuffix))
	copies, _ := filepath.Glob(filepath.Join(f.out, "*", "report.json"))
	if len(reports) != 2 || len(errs) != 1 || len(copies) != 2 {
		t.Fatalf("reports %v, error sidecars %v, report copies %v; want 2, 1, 2", reports, errs, copies)
	}
	for _, p := range append(reports, copies...) {
		checkFile(t, "report.json", p)
	}
	checkFile(t, "error-sidecar.json", errs[0])
	// What the observer makes of them: both succeeded, the bad one
	// failed, so the schemas describe files that mean what they say.
	obs := f.observe(t, fixed.JobID, plain.JobID, noNICs.JobID)
	if obs[fixed.JobID].State != plugins.JobSucceeded || obs[plain.JobID].State != plugins.JobSucceeded || obs[noNICs.JobID].State != plugins.JobFailed {
		t.Errorf("observed %+v", obs)
	}
}

func checkFile(t *testing.T, ref, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := docs.Validate(ref, b); err != nil {
		t.Errorf("%s: %v\n%s", path, err, b)
	}
}
