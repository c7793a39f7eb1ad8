package vsphere

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vmware/govmomi/nfc"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/ovf"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

// Export powers the VM off if asked, exports it over an NFC lease into
// req.Dir and writes its OVF descriptor and a sha256 manifest. On any
// failure or cancellation the lease is aborted, every file this export
// wrote is deleted (there is no HTTP Range resume: a retry starts over),
// and a VM that hyperagent powered off is powered on again when
// Settings.RestorePower is set.
func (s *Source) Export(ctx context.Context, req plugins.ExportRequest) (plugins.ExportResponse, error) {
	res, err := s.export(ctx, req)
	if err != nil {
		return plugins.ExportResponse{}, fmt.Errorf("export %s: %w", req.Address, err)
	}
	return plugins.ExportResponse{Export: res}, nil
}

func (s *Source) export(ctx context.Context, req plugins.ExportRequest) (plugins.ExportResult, error) {
	dir, err := filepath.Abs(req.Dir)
	if err != nil {
		return plugins.ExportResult{}, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return plugins.ExportResult{}, err
	}
	o, err := s.observeForExport(ctx, req, dir)
	if err != nil {
		return plugins.ExportResult{}, err
	}
	c, err := s.client(ctx)
	if err != nil {
		return plugins.ExportResult{}, err
	}
	ref, name := o.ref, o.Facts.Name
	poweredOff := false
	if o.vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
		if err := s.powerOff(ctx, c.c, ref, name, req.Settings.ShutdownTimeout); err != nil {
			return plugins.ExportResult{}, err
		}
		poweredOff = true
		// The fingerprint and facts recorded are those of what was exported.
		o, err = s.observeForExport(ctx, req, dir)
		if err == nil && o.ref != ref {
			err = fmt.Errorf("%s names another VM after power-off", req.VM)
		}
	}
	var res plugins.ExportResult
	if err == nil {
		res, err = s.download(ctx, c, o, req, dir)
	}
	if err != nil {
		if poweredOff && req.Settings.RestorePower {
			err = errors.Join(err, s.restorePower(ctx, c.c, ref, name))
		}
		return plugins.ExportResult{}, err
	}
	res.PoweredOff = poweredOff
	return res, nil
}

// observeForExport observes the one VM and refuses it when a finding is an
// error (other than powered-on, which power_off handles).
func (s *Source) observeForExport(ctx context.Context, req plugins.ExportRequest, dir string) (observed, error) {
	q := plugins.VMQuery{Address: req.Address, Path: req.VM, PowerOff: req.Settings.PowerOff, ExportDir: dir}
	obs, err := s.observe(ctx, []plugins.VMQuery{q})
	if err != nil {
		return observed{}, err
	}
	o := obs[req.Address]
	var msgs []string
	for _, f := range o.Findings {
		if f.Severity == plugins.SeverityError {
			msgs = append(msgs, f.Summary+": "+f.Detail)
		}
	}
	if len(msgs) > 0 {
		return o, plugins.Terminal(fmt.Errorf("%w: %s", errFindings, strings.Join(msgs, "; ")))
	}
	return o, nil
}

// download runs the lease: wait for it, keep it alive with the updater
// while the files stream, write the descriptor and manifest, complete it.
func (s *Source) download(ctx context.Context, c *conn, o observed, req plugins.ExportRequest, dir string) (plugins.ExportResult, error) {
	vm := object.NewVirtualMachine(c.c, o.ref)
	lease, err := vm.Export(ctx)
	if err != nil {
		return plugins.ExportResult{}, fmt.Errorf("start export: %w", err)
	}
	w := &written{}
	fail := func(err error) (plugins.ExportResult, error) {
		s.abort(ctx, lease, err)
		if rerr := w.removeAll(); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove partial export: %w", rerr))
		}
		return plugins.ExportResult{}, err
	}
	info, err := lease.Wait(ctx, nil)
	if err != nil {
		if ctx.Err() != nil { // lease.Wait hides a cancellation as "unexpected nfc lease state"
			err = ctx.Err()
		}
		return fail(fmt.Errorf("wait for export lease: %w", err))
	}
	vmDisks := disks(o.vm)
	items, err := planItems(info, vmDisks)
	if err != nil {
		return fail(err)
	}
	// Without renewals a real vCenter drops the lease after its timeout
	// (about 5 minutes), mid-download.
	k := keepLease(ctx, lease, info, leaseRenewEvery, s.log)
	files, err := s.fetchAll(ctx, c.sc, items, dir, req, w, k)
	k.close()
	if err != nil {
		return fail(err)
	}
	res := plugins.ExportResult{Dir: dir, Facts: o.Facts, Fingerprint: o.Fingerprint, ExportedAt: time.Now().UTC()}
	cdp := types.OvfCreateDescriptorParams{Name: o.Facts.Name}
	for i, it := range items {
		f := files[i]
		cdp.OvfFiles = append(cdp.OvfFiles, types.OvfFile{DeviceId: it.fi.DeviceId, Path: it.name, Size: f.Size})
		res.Files = append(res.Files, f)
		if it.disk != nil {
			d := it.disk.fact
			res.Disks = append(res.Disks, plugins.Disk{ID: d.ID, Path: f.Path, Format: "vmdk", Size: f.Size, SHA256: f.SHA256,
				BootOrder: d.BootOrder, Label: d.Label, CapacityBytes: d.CapacityBytes})
		}
	}
	sortDisks(res.Disks)
	meta, err := s.writeDescriptor(ctx, c, vm, cdp, dir, res.Files, w)
	if err != nil {
		return fail(err)
	}
	res.Files = append(res.Files, meta...)
	if err := lease.Complete(ctx); err != nil {
		return fail(fmt.Errorf("complete export lease: %w", err))
	}
	return res, nil
}

// abort tells vSphere the export failed, on its own deadline since ctx may
// be the reason.
func (s *Source) abort(ctx context.Context, lease *nfc.Lease, cause error) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	fault := &types.LocalizedMethodFault{Fault: &types.SystemError{Reason: cause.Error()}, LocalizedMessage: cause.Error()}
	if err := lease.Abort(actx, fault); err != nil {
		s.log.Warn("abort export lease", "lease", lease.Reference().Value, "error", err)
	}
}

// writeDescriptor asks vSphere for the OVF descriptor naming the files
// written, then writes it and a manifest of every file's sha256.
func (s *Source) writeDescriptor(ctx context.Context, c *conn, vm *object.VirtualMachine, cdp types.OvfCreateDescriptorParams,
	dir string, files []plugins.File, w *written) ([]plugins.File, error) {
	desc, err := ovf.NewManager(c.c).CreateDescriptor(ctx, vm, cdp)
	if err != nil {
		return nil, fmt.Errorf("create OVF descriptor: %w", err)
	}
	if len(desc.Error) > 0 {
		return nil, fmt.Errorf("create OVF descriptor: %s", desc.Error[0].LocalizedMessage)
	}
	base := safeName(cdp.Name)
	ovfFile, err := writeAtomic(dir, base+".ovf", []byte(desc.OvfDescriptor), w)
	if err != nil {
		return nil, fmt.Errorf("write OVF descriptor: %w", err)
	}
	var mf strings.Builder
	for _, f := range append(files, ovfFile) {
		fmt.Fprintf(&mf, "SHA256(%s)= %s\n", filepath.Base(f.Path), f.SHA256)
	}
	mfFile, err := writeAtomic(dir, base+".mf", []byte(mf.String()), w)
	if err != nil {
		return nil, fmt.Errorf("write manifest: %w", err)
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("sync %s: %w", dir, err)
	}
	return []plugins.File{ovfFile, mfFile}, nil
}

func sortDisks(ds []plugins.Disk) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && ds[j].BootOrder < ds[j-1].BootOrder; j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}
