package hyper2kvm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/plugins/hyper2kvm/protocol"
	"github.com/hypersdk/hyperagent/schema"
)

// Submit queues one job. The manifest is validated, written to
// to_be_processed/.<J>.json.tmp (a dot-file daemons ignore), fsynced, renamed
// to <J>.json and the directory fsynced, so a daemon never reads it half
// written. A job with that id anywhere in the workflow directory (including
// clash-renamed in processing/) is returned as is, never queued twice.
func (c *Converter) Submit(ctx context.Context, req plugins.SubmitRequest) (plugins.SubmitResponse, error) {
	if !protocol.ValidJobID(req.JobID) {
		return plugins.SubmitResponse{}, plugins.Terminal(fmt.Errorf("job id %q must match [A-Za-z0-9_-]+", req.JobID))
	}
	sc, err := c.scan(ctx)
	if err != nil {
		return plugins.SubmitResponse{}, err
	}
	if f := sc.find(req.JobID); f != nil {
		if why := c.foreign(f, req.Provenance()); why != "" {
			return plugins.SubmitResponse{}, plugins.Terminal(fmt.Errorf("job %s exists in %s and is not this migration's (%s); it is left alone",
				req.JobID, c.cfg.WorkflowDir, why))
		}
		c.log.Debug("job already submitted", "job", req.JobID, "where", f.path)
		return plugins.SubmitResponse{JobID: req.JobID}, nil
	}
	m := c.buildManifest(req)
	if err := m.Validate(); err != nil {
		return plugins.SubmitResponse{}, plugins.Terminal(fmt.Errorf("manifest: %w", err))
	}
	data, err := m.Marshal()
	if err != nil {
		return plugins.SubmitResponse{}, err
	}
	if err := c.writeJob(req.JobID, data); err != nil {
		return plugins.SubmitResponse{}, fmt.Errorf("queue job %s in %s: %w", req.JobID, c.cfg.WorkflowDir, err)
	}
	c.log.Info("job submitted", "address", req.Address, "job", req.JobID)
	return plugins.SubmitResponse{JobID: req.JobID}, nil
}

func (c *Converter) writeJob(id string, data []byte) error {
	q := c.dir(protocol.DirQueued)
	if err := os.MkdirAll(q, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(q, "."+id+".json.tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(q, id+".json")); err != nil {
		os.Remove(tmp)
		return err
	}
	return fsutil.SyncDir(q)
}

// buildManifest maps an export and the migration's convert settings onto
// an Artifact Manifest v1.0, writing every stage explicitly.
func (c *Converter) buildManifest(req plugins.SubmitRequest) *protocol.Manifest {
	ex, opt, facts := req.Export, req.Options, req.Export.Facts
	m := &protocol.Manifest{
		ManifestVersion: protocol.ManifestVersion,
		Source: protocol.Source{
			Provider:     provider(facts),
			VMID:         facts.UUID,
			VMName:       facts.Name,
			ExportMethod: "hyperagent",
		},
		VM: protocol.VM{
			CPU:        max(1, facts.CPUs),
			MemGB:      int(max(1, (facts.MemoryMiB+1023)/1024)),
			Firmware:   firmware(facts.Firmware),
			SecureBoot: facts.SecureBoot,
			OSHint:     osHint(facts.OSFamily),
		},
		Disks: []protocol.Disk{},
		NICs:  []protocol.NIC{},
		Metadata: protocol.Metadata{
			JobID:     req.JobID,
			CreatedAt: c.now().UTC().Format(time.RFC3339),
			Tags:      provenanceTags(req.Provenance()),
		},
		Pipeline: pipeline(opt),
		Output:   protocol.Output{Directory: filepath.Join(c.cfg.OutputDir, req.JobID), Format: outputFormat(opt.Format)},
		Options:  protocol.Options{Report: protocol.ReportOption{Enabled: true, Path: "report.json"}},
	}
	if !ex.ExportedAt.IsZero() {
		m.Source.ExportTimestamp = ex.ExportedAt.UTC().Format(time.RFC3339)
	}
	boot := -1
	for i, d := range ex.Disks {
		if boot < 0 || d.BootOrder < ex.Disks[boot].BootOrder {
			boot = i
		}
	}
	for i, d := range ex.Disks {
		typ := "data"
		if i == boot {
			typ = "boot"
		}
		m.Disks = append(m.Disks, protocol.Disk{
			ID: d.ID, SourceFormat: d.Format, Bytes: d.Size, LocalPath: d.Path,
			Checksum: "sha256:" + strings.ToLower(d.SHA256), BootOrderHint: d.BootOrder,
			Label: d.Label, DiskType: typ,
		})
		// Where the source hashed the bytes it wrote, hyperagent's worker may
		// take the checksum as the file's while the file is still that one.
		if d.Identity != nil {
			m.SetIdentity(d.ID, protocol.FileIdentity(*d.Identity))
		}
	}
	for _, n := range facts.NICs {
		m.NICs = append(m.NICs, protocol.NIC{ID: n.ID, MAC: n.MAC, Network: n.Network})
	}
	return m
}

func pipeline(o schema.ConvertSettings) protocol.Pipeline {
	return protocol.Pipeline{
		Inspect: protocol.InspectStage{Enabled: o.Inspect},
		Fix: protocol.FixStage{
			Enabled: o.Fix.Enabled, FstabMode: o.Fix.Fstab, UpdateGrub: o.Fix.Grub,
			RegenInitramfs: o.Fix.Initramfs, RemoveVMwareTools: o.Fix.RemoveVMwareTools, Backup: o.Fix.Backup,
		},
		Convert:  protocol.ConvertStage{Enabled: true, Compress: o.Compress, CompressLevel: o.CompressLevel},
		Validate: protocol.ValidateStage{Enabled: o.Validate, CheckImageIntegrity: o.Validate},
	}
}

func provider(f plugins.VMFacts) string {
	if f.UUID != "" {
		return "vsphere"
	}
	return "files"
}

// firmware maps vSphere's names; "efi" is "uefi" in a manifest.
func firmware(s string) string {
	switch strings.ToLower(s) {
	case "efi", "uefi":
		return "uefi"
	case "bios":
		return "bios"
	}
	return "unknown"
}

func osHint(s string) string {
	switch s {
	case "linux", "windows":
		return s
	}
	return "unknown"
}

func outputFormat(s string) string {
	if s == "" {
		return "qcow2"
	}
	return s
}
