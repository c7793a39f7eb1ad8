package reconcile

import (
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
)

// TestRecordImport: an imported migration is planned as a defined one —
// nothing to do while the VM, the domain and the settings are as they
// were, the usual changes when they move — and is refused when state has
// it already.
func TestRecordImport(t *testing.T) {
	h := newHarness(t, "", "web")
	m := h.migration("web")
	a := m.Addr.String()
	vm := plugins.VMObservation{Found: true, Fingerprint: "fp-1",
		Facts: plugins.VMFacts{Name: "web", CPUs: 2, MemoryMiB: 2048, Disks: []plugins.DiskFact{{ID: "disk-0", CapacityBytes: 1 << 30}}}}
	imp := plugins.ImportDomainResponse{
		Domain:  plugins.DefinedDomain{Name: "web-by-hand", UUID: "u-1", Digest: "sha256:d1", Disks: []plugins.File{{Path: "/img/web.qcow2", Size: 5, SHA256: "ab"}}},
		Outputs: []plugins.Output{{DiskID: "disk-0", Path: "/img/web.qcow2", Format: "qcow2", Size: 5, SHA256: "ab"}},
	}
	st := NewState()
	if err := RecordImport(st, m, vm, imp, time.Now()); err == nil {
		t.Fatal("recorded into a state without a lineage")
	}
	st.Lineage = testLineage
	mustDo(t, RecordImport(st, m, vm, imp, time.Now()))
	if err := RecordImport(st, m, vm, imp, time.Now()); err == nil {
		t.Fatal("recorded twice")
	}
	if got := DomainName(m, st.Migrations[a], vm); got != "web-by-hand" {
		t.Errorf("domain name %q", got)
	}
	diff := func(vm plugins.VMObservation, dom plugins.DomainObservation) Change {
		obs := newObserved()
		obs.Refreshed = true
		obs.VMs[a], obs.Domains[a] = vm, dom
		return *Diff(DiffRequest{Config: h.cfg, State: st, Observed: obs}).Change(a)
	}
	same := plugins.DomainObservation{Exists: true, UUID: "u-1", Digest: "sha256:d1", Ours: true}
	if c := diff(vm, same); c.Action != ActionNoOp || c.Phase != PhaseDefined {
		t.Errorf("as imported: %s (%s)", c.Action, c.Reason)
	}
	moved := vm
	moved.Fingerprint = "fp-2"
	if c := diff(moved, same); c.Action != ActionReplace || c.Steps[0].Kind != StepExport {
		t.Errorf("VM changed: %s %+v", c.Action, c.Steps)
	}
	// A lost disk: there is no export to convert again, so the VM is
	// exported again (statArtifacts finds the output gone as well).
	gone := same
	gone.MissingDisks = []string{"/img/web.qcow2"}
	obs := newObserved()
	obs.Refreshed = true
	obs.VMs[a], obs.Domains[a] = vm, gone
	obs.MissingOutputs[a] = []string{"/img/web.qcow2"}
	if c := Diff(DiffRequest{Config: h.cfg, State: st, Observed: obs}).Change(a); c.Action != ActionReplace || c.Steps[0].Kind != StepExport {
		t.Errorf("disk gone: %s %+v (%s)", c.Action, c.Steps, c.Reason)
	}
	// Only the domain gone, its disk still there: defined again from it.
	if c := diff(vm, plugins.DomainObservation{}); c.Action != ActionReplace || c.Steps[0].Kind != StepDefine {
		t.Errorf("domain gone: %s %+v (%s)", c.Action, c.Steps, c.Reason)
	}
	ms := st.Migrations[a]
	if ms.Export == nil || len(ms.Export.Files) != 0 || ms.Export.Dir != ExportDir(m.Export.Dir, testLineage, a) || ms.Job != nil {
		t.Errorf("the record claims work that was not done: %+v", ms)
	}
}

// TestRecordImportBesideAMovedRecord: an address a moved record's
// artifacts still use (state mv web → site, then a new "web" imported)
// gets an identity of its own, as a new migration of that name would:
// its export directory is not the moved record's, and the identity is
// the one the domain was imported under (IdentityFor).
func TestRecordImportBesideAMovedRecord(t *testing.T) {
	h := newHarness(t, "", "web")
	m := h.migration("web")
	a := m.Addr.String()
	st := NewState()
	st.Lineage = testLineage
	st.Migrations["migration.site"] = &MigrationState{Address: "migration.site", Origin: a,
		Export: &plugins.ExportResult{Dir: ExportDir(m.Export.Dir, testLineage, a)}}
	id := IdentityFor(st, a)
	if id == a {
		t.Fatalf("identity %q: the moved record's artifacts use it", id)
	}
	vm := plugins.VMObservation{Found: true, Fingerprint: "fp-1", Facts: plugins.VMFacts{Name: "web"}}
	imp := plugins.ImportDomainResponse{Domain: plugins.DefinedDomain{Name: "web-by-hand", UUID: "u-1"},
		Outputs: []plugins.Output{{DiskID: "disk-0", Path: "/img/web.qcow2", Format: "qcow2"}}}
	mustDo(t, RecordImport(st, m, vm, imp, time.Now()))
	ms := st.Migrations[a]
	if ms.Identity() != id || ms.Export.Dir != ExportDir(m.Export.Dir, testLineage, id) ||
		ms.Export.Dir == st.Migrations["migration.site"].Export.Dir {
		t.Errorf("identity %q, export dir %s; want %q and its own dir", ms.Identity(), ms.Export.Dir, id)
	}
}
