package libvirt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/google/uuid"
	"libvirt.org/go/libvirtxml"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
)

// diskIDRe is the converter's disk id and formatRe its image format: both
// become part of a file name.
var (
	diskIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	formatRe = regexp.MustCompile(`^[a-z0-9]+$`)
)

// Define implements plugins.Target. The order matters for safety: the name
// is checked for a foreign domain before any disk moves, and the domain is
// defined only once its disks are in place.
func (t *Target) Define(ctx context.Context, req plugins.DefineRequest) (plugins.DefineResponse, error) {
	name := req.Name
	if problem := schema.DomainNameProblem(name); problem != "" {
		return plugins.DefineResponse{}, plugins.Terminal(errors.New(problem))
	}
	log := t.log.With("address", req.Address, "domain", name)

	existing, found, err := t.lookupDomain(ctx, name)
	if err != nil {
		return plugins.DefineResponse{}, err
	}
	owner := plugins.Owner{Campaign: req.Campaign, Address: req.Address}
	if found && !owner.Adopts(existing.ManagedBy, existing.UUID, req.UUID) {
		return plugins.DefineResponse{}, plugins.Terminal(errors.New(foreignDetail(name, existing.ManagedBy)))
	}

	nics, err := t.placeNICs(req)
	if err != nil {
		return plugins.DefineResponse{}, plugins.Terminal(err)
	}
	dir, pool, err := t.storageDir(ctx)
	if err != nil {
		return plugins.DefineResponse{}, err
	}
	outs := append([]plugins.Output(nil), req.Outputs...)
	sort.SliceStable(outs, func(i, j int) bool { return outs[i].BootOrder < outs[j].BootOrder })
	var disks []placedDisk
	var files []plugins.File
	for _, o := range outs {
		if !diskIDRe.MatchString(o.DiskID) {
			return plugins.DefineResponse{}, plugins.Terminal(fmt.Errorf("disk id %q must match %s", o.DiskID, diskIDRe))
		}
		if !formatRe.MatchString(o.Format) {
			return plugins.DefineResponse{}, plugins.Terminal(fmt.Errorf("disk %s: format %q must match %s", o.DiskID, o.Format, formatRe))
		}
		dst := filepath.Join(dir, name+"-"+o.DiskID+"."+o.Format)
		f, err := placeDisk(ctx, o.Path, dst, strings.TrimPrefix(o.SHA256, "sha256:"))
		if err != nil {
			return plugins.DefineResponse{}, fmt.Errorf("disk %s: %w", o.DiskID, err)
		}
		log.Info("disk in place", "disk", o.DiskID, "path", dst, "size", f.Size)
		disks = append(disks, placedDisk{Path: dst, Format: o.Format})
		files = append(files, f)
	}

	// A new domain gets a UUID of ours: should a domain of the same name
	// appear after the check above, libvirt refuses a definition whose
	// UUID differs from the existing one's, so it is never overwritten.
	id := existing.UUID
	if !found {
		id = uuid.NewString()
	}
	spec, err := t.spec(ctx, req, name, id, disks, nics)
	if err != nil {
		return plugins.DefineResponse{}, err
	}
	dom, err := buildDomain(spec)
	if err != nil {
		return plugins.DefineResponse{}, plugins.Terminal(err)
	}
	doc, err := dom.Marshal()
	if err != nil {
		return plugins.DefineResponse{}, plugins.Terminal(fmt.Errorf("domain %s: marshal XML: %w", name, err))
	}
	var obs observed
	err = t.conn.do(ctx, func(l *golibvirt.Libvirt) error {
		d, err := l.DomainDefineXMLFlags(doc, golibvirt.DomainDefineValidate)
		if err != nil {
			return fmt.Errorf("define domain %s: %w", name, err)
		}
		if pool != nil {
			if err := l.StoragePoolRefresh(*pool, 0); err != nil {
				log.Warn("storage pool refresh failed", "pool", pool.Name, "error", err)
			}
		}
		if req.Domain.Start || t.cfg.Start {
			if err := startIfStopped(l, d); err != nil {
				return err
			}
		}
		obs, err = readBack(l, d)
		return err
	})
	if err != nil {
		return plugins.DefineResponse{}, err
	}
	log.Info("domain defined", "uuid", obs.UUID, "digest", obs.Digest)
	return plugins.DefineResponse{Domain: plugins.DefinedDomain{
		Name: name, UUID: obs.UUID, Digest: obs.Digest, Disks: files,
	}}, nil
}

// readBack reads a domain's persistent definition after a change, for
// its digest and owner as observation will see them.
func readBack(l *golibvirt.Libvirt, d golibvirt.Domain) (observed, error) {
	x, err := l.DomainGetXMLDesc(d, golibvirt.DomainXMLInactive)
	if err != nil {
		return observed{}, fmt.Errorf("read back domain %s: %w", d.Name, err)
	}
	return observeXML(x)
}

func foreignDetail(name string, managedBy plugins.Owner) string {
	if managedBy.Address == "" {
		return fmt.Sprintf("a domain named %q exists that hyperagent did not define; it is never overwritten (rename it, or set domain { name = ... })", name)
	}
	return fmt.Sprintf("a domain named %q exists that hyperagent defined for %s; it is never overwritten (rename it, or set domain { name = ... })", name, managedBy)
}

func startIfStopped(l *golibvirt.Libvirt, d golibvirt.Domain) error {
	active, err := l.DomainIsActive(d)
	if err != nil {
		return fmt.Errorf("state of domain %s: %w", d.Name, err)
	}
	if active == 1 {
		return nil
	}
	if err := l.DomainCreate(d); err != nil {
		return fmt.Errorf("start domain %s: %w", d.Name, err)
	}
	return nil
}

// placeNICs maps every source NIC to its libvirt network or bridge.
func (t *Target) placeNICs(req plugins.DefineRequest) ([]placedNIC, error) {
	var out []placedNIC
	for _, n := range req.Facts.NICs {
		ref, ok := t.networkFor(req.Domain.Network, n.Network)
		if !ok {
			return nil, fmt.Errorf("NIC %s (%s) is on network %q, which network_map does not map", n.ID, n.MAC, n.Network)
		}
		out = append(out, placedNIC{MAC: n.MAC, Net: ref})
	}
	return out, nil
}

// spec resolves sizes, firmware and the domain type for buildDomain.
func (t *Target) spec(ctx context.Context, req plugins.DefineRequest, name, id string, disks []placedDisk, nics []placedNIC) (domainSpec, error) {
	typ, err := t.domainType(ctx)
	if err != nil {
		return domainSpec{}, err
	}
	s := domainSpec{
		Name: name, UUID: id, Type: typ, Owner: plugins.Owner{Campaign: req.Campaign, Address: req.Address},
		MemoryMiB: req.Facts.MemoryMiB, VCPUs: req.Facts.CPUs,
		UEFI: req.Facts.Firmware == "uefi", Secure: req.Facts.Firmware == "uefi" && req.Facts.SecureBoot,
		Machine: t.cfg.Machine, CPUMode: t.cfg.CPUMode,
		Disks: disks, NICs: nics,
		Firmware: firmwarePaths{
			Loader: t.cfg.UEFILoader, Vars: t.cfg.UEFIVars,
			SecureLoader: t.cfg.UEFISecureLoader, SecureVars: t.cfg.UEFISecureVars,
			NVRAMDir: t.cfg.NVRAMDir,
		},
	}
	if req.Domain.MemoryMiB > 0 {
		s.MemoryMiB = req.Domain.MemoryMiB
	}
	if req.Domain.VCPUs > 0 {
		s.VCPUs = req.Domain.VCPUs
	}
	if s.MemoryMiB <= 0 || s.VCPUs <= 0 {
		return domainSpec{}, plugins.Terminal(fmt.Errorf("memory and vcpus are unknown for %s: set them in the domain block", name))
	}
	return s, nil
}

// domainType picks the best virtualisation type the connection offers for
// x86_64 hvm guests: kvm, then qemu (TCG), then whatever it has (the test
// driver offers only "test").
func (t *Target) domainType(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.virtType != "" {
		return t.virtType, nil
	}
	typ, err := t.readDomainType(ctx)
	if err == nil {
		t.virtType = typ
	}
	return typ, err
}

func (t *Target) readDomainType(ctx context.Context) (string, error) {
	var caps libvirtxml.Caps
	err := t.conn.do(ctx, func(l *golibvirt.Libvirt) error {
		x, err := l.ConnectGetCapabilities()
		if err != nil {
			return fmt.Errorf("read capabilities: %w", err)
		}
		caps = libvirtxml.Caps{} // Unmarshal appends to what a lost attempt left
		return caps.Unmarshal(x)
	})
	if err != nil {
		return "", err
	}
	offered := map[string]bool{}
	var first string
	for _, g := range caps.Guests {
		if g.OSType != "hvm" {
			continue
		}
		for _, d := range g.Arch.Domains {
			if first == "" {
				first = d.Type
			}
			if g.Arch.Name == "x86_64" {
				offered[d.Type] = true
			}
		}
	}
	for _, want := range []string{"kvm", "qemu"} {
		if offered[want] {
			return want, nil
		}
	}
	if first == "" {
		return "", plugins.Terminal(fmt.Errorf("libvirt %s offers no hvm guests", t.cfg.URI))
	}
	return first, nil
}
