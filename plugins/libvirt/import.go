package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/diskimage"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/schema"
)

var _ plugins.DomainImporter = (*Target)(nil)

// ImportDomain implements plugins.DomainImporter. Every check runs before
// anything is written: the name, the domain's existence and persistence,
// its owner, and its disks (count, each file's format read from its
// header, not its name, and virtual size). Then each disk is hashed, the
// owner is written into the domain's persistent definition (libvirt's
// metadata, as Define writes it) and the definition is read back for its
// digest, as Define does.
func (t *Target) ImportDomain(ctx context.Context, req plugins.ImportDomainRequest) (plugins.ImportDomainResponse, error) {
	var out plugins.ImportDomainResponse
	name := req.Name
	if problem := schema.DomainNameProblem(name); problem != "" {
		return out, plugins.Terminal(errors.New(problem))
	}
	owner := plugins.Owner{Campaign: req.Campaign, Address: req.Address}
	if owner.Campaign == "" || owner.Address == "" {
		return out, plugins.Terminal(fmt.Errorf("import %s: the owner is incomplete (%+v)", name, owner))
	}
	var dom golibvirt.Domain
	var doc string
	err := t.conn.do(ctx, func(l *golibvirt.Libvirt) error {
		var err error
		if dom, err = l.DomainLookupByName(name); err != nil {
			return err
		}
		persistent, err := l.DomainIsPersistent(dom)
		if err != nil {
			return fmt.Errorf("domain %s: %w", name, err)
		}
		if persistent != 1 {
			return plugins.Terminal(fmt.Errorf("domain %q is transient (not defined, only running); define it (virsh define) before importing it", name))
		}
		doc, err = l.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
		return err
	})
	if isLibvirtError(err, golibvirt.ErrNoDomain) {
		return out, plugins.Terminal(fmt.Errorf("no domain named %q on %s", name, t.cfg.URI))
	}
	if err != nil {
		return out, fmt.Errorf("look up domain %s: %w", name, err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(doc); err != nil {
		return out, fmt.Errorf("domain %s: parse XML: %w", name, err)
	}
	if found := managedBy(&d); found.Address != "" && found != owner {
		return out, plugins.Terminal(fmt.Errorf("domain %q belongs to %s; it is never adopted by another migration", name, found))
	}
	paths, err := checkImportDisks(&d, req.Disks)
	if err != nil {
		return out, plugins.Terminal(fmt.Errorf("domain %q is not what %s would define: %w", name, req.Address, err))
	}
	for i, p := range paths {
		f, err := verifyFile(ctx, p, "")
		if err != nil {
			return out, err
		}
		out.Domain.Disks = append(out.Domain.Disks, f)
		w := req.Disks[i]
		out.Outputs = append(out.Outputs, plugins.Output{DiskID: w.ID, Path: p, Format: w.Format, Size: f.Size, SHA256: f.SHA256, BootOrder: i})
	}
	var obs observed
	err = t.conn.do(ctx, func(l *golibvirt.Libvirt) error {
		if err := l.DomainSetMetadata(dom, int32(golibvirt.DomainMetadataElement), []string{metadataElement(owner)},
			[]string{"hyperagent"}, []string{MetadataNS}, golibvirt.DomainAffectConfig); err != nil {
			return fmt.Errorf("record the owner in domain %s: %w", name, err)
		}
		var err error
		obs, err = readBack(l, dom)
		return err
	})
	if err != nil {
		return out, err
	}
	if obs.ManagedBy != owner {
		return out, fmt.Errorf("domain %s: the owner read back is %q, not %q", name, obs.ManagedBy, owner)
	}
	t.log.Info("domain imported", "address", req.Address, "domain", name, "uuid", obs.UUID, "digest", obs.Digest)
	out.Domain.Name, out.Domain.UUID, out.Domain.Digest = name, obs.UUID, obs.Digest
	return out, nil
}

// checkImportDisks returns the files of the domain's disks, in device
// order, when they are what want describes; otherwise every difference.
// CD-ROMs and floppies are not disks of the VM.
func checkImportDisks(d *libvirtxml.Domain, want []plugins.WantDisk) ([]string, error) {
	var disks []libvirtxml.DomainDisk
	if d.Devices != nil {
		for _, disk := range d.Devices.Disks {
			if disk.Device == "" || disk.Device == "disk" {
				disks = append(disks, disk)
			}
		}
	}
	if len(disks) != len(want) {
		return nil, fmt.Errorf("it has %d disk(s); the VM has %d", len(disks), len(want))
	}
	var paths []string
	var errs []error
	for i, disk := range disks {
		w := want[i]
		if disk.Source == nil || disk.Source.File == nil || disk.Source.File.File == "" {
			errs = append(errs, fmt.Errorf("disk %d (the VM's %s) is not a file", i+1, w.ID))
			continue
		}
		p := disk.Source.File.File
		paths = append(paths, p)
		if err := checkImportDisk(p, disk.Driver, w); err != nil {
			errs = append(errs, fmt.Errorf("disk %d (the VM's %s): %w", i+1, w.ID, err))
		}
	}
	return paths, errors.Join(errs...)
}

// checkImportDisk compares one disk file with what the migration would
// make of the VM's disk.
func checkImportDisk(p string, drv *libvirtxml.DomainDiskDriver, w plugins.WantDisk) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", p)
	}
	format, capacity, err := diskimage.Probe(p)
	if err != nil {
		return err
	}
	switch {
	case format != w.Format:
		return fmt.Errorf("%s is %s; the migration converts to %s", p, format, w.Format)
	case drv != nil && drv.Type != "" && drv.Type != format:
		return fmt.Errorf("%s is %s, but the domain reads it as %s", p, format, drv.Type)
	case capacity != w.CapacityBytes:
		return fmt.Errorf("%s has a virtual size of %s (%d bytes); the VM's disk has %s (%d bytes)",
			p, fsutil.FormatBytes(capacity), capacity, fsutil.FormatBytes(w.CapacityBytes), w.CapacityBytes)
	}
	return nil
}
