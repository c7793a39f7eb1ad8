package reconcile

import (
	"fmt"
	"sort"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
)

// RecordImport records m as defined by a domain that existed before
// hyperagent adopted it (`hyperagent import`), as the steps would have
// recorded it, so that the plan sees a defined migration and plans
// nothing. The caller holds the lock, has set st.Lineage (the campaign
// the domain's metadata names), and writes st.
//
// What was never done is recorded as such: the export names the VM as
// observed at import (facts, fingerprint) and no files, in the directory
// an export would have used, so removing the migration prunes nothing;
// there is no job; the converted disks are the domain's own disks. A
// later change of the VM (its fingerprint), the export or domain
// settings, or a domain or disk that goes missing is planned as for any
// migration. The record's identity is NewRecord's: the domain must have
// been imported under it (IdentityFor), as its owner.
func RecordImport(st *State, m *schema.Migration, vm plugins.VMObservation, imp plugins.ImportDomainResponse, now time.Time) error {
	a := m.Addr.String()
	switch {
	case st.Lineage == "":
		return fmt.Errorf("import %s: the state has no campaign lineage", a)
	case st.Migrations[a] != nil:
		return fmt.Errorf("%s is in the state already", a)
	case !vm.Found:
		return fmt.Errorf("import %s: VM %q was not observed", a, m.VM)
	case len(imp.Outputs) == 0 || imp.Domain.Name == "":
		return fmt.Errorf("import %s: no domain or disks to record", a)
	}
	ms := NewRecord(st, a, now)
	ms.Source, ms.Converter, ms.Target, ms.VM = m.Source.String(), m.Converter.String(), m.Target.String(), m.VM
	ms.ConfigDigest, ms.Digests, ms.PreventDestroy = m.Digest, Digests(m), m.PreventDestroy
	ms.Fingerprint = vm.Fingerprint
	ms.Export = &plugins.ExportResult{
		Dir: ExportDir(m.Export.Dir, st.Lineage, ms.Identity()), Files: []plugins.File{}, Disks: []plugins.Disk{},
		Facts: vm.Facts, Fingerprint: vm.Fingerprint, ExportedAt: now,
	}
	ms.Outputs = append([]plugins.Output{}, imp.Outputs...)
	ms.Domain = &imp.Domain
	st.Migrations[a] = ms
	return nil
}

// WantDisks are the disks m would define for a VM with these facts: each
// of its disks, in boot order, converted to m's format at its capacity.
func WantDisks(m *schema.Migration, facts plugins.VMFacts) []plugins.WantDisk {
	disks := append([]plugins.DiskFact(nil), facts.Disks...)
	sort.SliceStable(disks, func(i, j int) bool { return disks[i].BootOrder < disks[j].BootOrder })
	out := make([]plugins.WantDisk, 0, len(disks))
	for _, d := range disks {
		out = append(out, plugins.WantDisk{ID: d.ID, Format: m.Convert.Format, CapacityBytes: d.CapacityBytes})
	}
	return out
}
