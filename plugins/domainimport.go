package plugins

import "context"

// DomainImporter is the optional ability of a target to adopt a domain
// that exists already (migrated by hand or by another tool) as one
// migration's, for `hyperagent import`. The engine records the result as
// if Define had made it.
type DomainImporter interface {
	// ImportDomain checks that the domain exists, that nobody else's
	// metadata claims it, and that its disks are what the migration would
	// produce (ImportDomainRequest.Disks: as many, in order, of that
	// format and virtual size); then it records the owner in the domain,
	// as Define does, so that observation finds it the migration's. A
	// domain that fails a check is left untouched and the error, terminal,
	// says why. Importing again for the same owner is accepted.
	ImportDomain(ctx context.Context, req ImportDomainRequest) (ImportDomainResponse, error)
}

// ImportDomainRequest names the domain and what the migration would make.
type ImportDomainRequest struct {
	Address  string
	Campaign string // the state's lineage
	Name     string
	// Disks are the converted disks the migration would define, in boot
	// order: the VM's disks in the converter's output format.
	Disks []WantDisk
}

// WantDisk is one disk a migration would produce.
type WantDisk struct {
	ID            string // the VM disk's id (DiskFact.ID)
	Format        string // qcow2 | raw
	CapacityBytes int64  // the virtual size; the source disk's capacity
}

// ImportDomainResponse is the adopted domain as Define would have
// returned it, and its disks as the converted disks they stand for.
type ImportDomainResponse struct {
	Domain  DefinedDomain
	Outputs []Output
}
