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
// req.Dir and writes its OVF descriptor and a sha256 manifest. A transient
// failure (a refused or reset connection, a call vSphere did not answer, a
// cut or stalled download that its own retries could not finish) starts
// the export over on a new lease, with capped exponential backoff. On a
// failure that remains, or a cancellation, the lease is aborted, every file
// this export wrote is deleted (the directory and what others put there,
// such as the engine's owner file, stay), and a VM that hyperagent powered
// off is powered on again when Settings.RestorePower is set.
func (s *Source) Export(ctx context.Context, req plugins.ExportRequest) (plugins.ExportResponse, error) {
	res, err := s.export(ctx, req)
	if err != nil {
		return plugins.ExportResponse{}, err
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
	if err := plugins.ForgetExportRecord(dir); err != nil {
		return plugins.ExportResult{}, err
	}
	var (
		c          *conn
		ref        moref
		name       string
		asked      bool // hyperagent asked vSphere to power the VM off
		poweredOff bool // and it is off
		res        plugins.ExportResult
	)
	err = s.retry(ctx, "export", func() error {
		var err error
		if c, err = s.client(ctx); err != nil {
			return err
		}
		o, err := s.observeForExport(ctx, req, dir)
		if err != nil {
			return err
		}
		ref, name = o.ref, o.Facts.Name
		if o.vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
			asked = true
			if err := s.powerOff(ctx, c.c, ref, name, req.Settings.ShutdownTimeout); err != nil {
				return err
			}
			poweredOff = true
			// The fingerprint and facts recorded are those of what was exported.
			if o, err = s.observeForExport(ctx, req, dir); err != nil {
				return err
			}
			if o.ref != ref {
				return plugins.Terminal(fmt.Errorf("%s names another VM after power-off", req.VM))
			}
		} else if asked { // an earlier attempt's power-off
			poweredOff = true
		}
		res, err = s.download(ctx, c, o, req, dir)
		return err
	})
	if err != nil {
		if poweredOff && req.Settings.RestorePower {
			err = errors.Join(err, s.restorePower(ctx, c.c, ref, name))
		}
		return plugins.ExportResult{}, err
	}
	res.PoweredOff = poweredOff
	// The record comes last: its presence says the export is whole.
	return plugins.WriteExportRecord(dir, res)
}

// AdoptExport implements plugins.ExportAdopter: an export this source
// completed into req.Dir (its record written last, every file it lists
// still whole) whose result never reached state, because the process was
// killed in between. The engine adopts it only when it is of the VM as
// the plan saw it (the fingerprint), and never exports it again.
func (s *Source) AdoptExport(ctx context.Context, req plugins.ExportRequest) (plugins.ExportResult, bool, error) {
	dir, err := filepath.Abs(req.Dir)
	if err != nil {
		return plugins.ExportResult{}, false, err
	}
	return plugins.ReadExportRecord(dir)
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

// download runs the lease: wait for it, keep it alive while the files
// stream, check them against the lease's manifest, write the descriptor and
// manifest, complete it. Any failure aborts the lease and deletes what was
// written. Downloads may resume within this lease, never across leases
// (see the package documentation).
func (s *Source) download(ctx context.Context, c *conn, o observed, req plugins.ExportRequest, dir string) (plugins.ExportResult, error) {
	vm := object.NewVirtualMachine(c.c, o.ref)
	start := time.Now()
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
	info, err := s.waitLease(ctx, c.c, lease)
	if err != nil {
		return fail(fmt.Errorf("wait for export lease: %w", err))
	}
	s.log.Debug("export lease ready", "vm", o.Facts.Name, "after", time.Since(start))
	items, err := planItems(info, disks(o.vm))
	if err != nil {
		return fail(err)
	}
	// Without renewals a real vCenter drops the lease after its timeout
	// (about 5 minutes), mid-download.
	k := keepLease(ctx, lease, info, leaseRenewEvery, s.log)
	files, err := s.fetchAll(ctx, c.sc, items, dir, req, w, k)
	k.close()
	s.log.Debug("export files downloaded", "vm", o.Facts.Name, "files", len(items), "bytes", k.done.Load(), "after", time.Since(start))
	if err == nil {
		err = s.checkManifest(ctx, lease, items, files)
	}
	if err != nil {
		// A download whose retries are spent is not retried on a new
		// lease (transient says no): that would only repeat them.
		return fail(err)
	}
	res := plugins.ExportResult{Dir: dir, Facts: o.Facts, Fingerprint: o.Fingerprint, ExportedAt: time.Now().UTC()}
	cdp := types.OvfCreateDescriptorParams{Name: o.Facts.Name}
	var all []plugins.File
	for i, it := range items {
		f := files[i].File
		cdp.OvfFiles = append(cdp.OvfFiles, types.OvfFile{DeviceId: it.fi.DeviceId, Path: it.name, Size: f.Size})
		all = append(all, f)
		if it.disk != nil {
			d := it.disk.fact
			res.Disks = append(res.Disks, plugins.Disk{ID: d.ID, Path: f.Path, Format: "vmdk", Size: f.Size, SHA256: f.SHA256,
				BootOrder: d.BootOrder, Label: d.Label, CapacityBytes: d.CapacityBytes, Identity: files[i].identity})
		}
	}
	sortDisks(res.Disks)
	meta, err := s.writeDescriptor(ctx, c, vm, cdp, dir, all, w)
	if err != nil {
		return fail(err)
	}
	res.Files = append(all, meta...)
	if err := lease.Complete(ctx); err != nil {
		return fail(fmt.Errorf("complete export lease: %w", err))
	}
	s.log.Debug("export lease complete", "vm", o.Facts.Name, "after", time.Since(start))
	return res, nil
}

// checkManifest compares each file's size with the one vSphere's manifest
// gives for what it sent (vCenter lists downloads; vcsim does not). A file
// that took more than one GET is not compared: what the server counts
// across requests is not documented. A manifest that cannot be read is
// logged, not fatal: the files were checked as they arrived.
func (s *Source) checkManifest(ctx context.Context, lease *nfc.Lease, items []leaseItem, files []fetched) error {
	entries, err := lease.GetManifest(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn("read the export lease's manifest", "error", err)
		return nil
	}
	sent := map[string]int64{}
	for _, e := range entries {
		sent[e.Key] = e.Size
	}
	for i, it := range items {
		n, ok := sent[it.fi.DeviceId]
		if !ok || n <= 0 || files[i].requests > 1 {
			continue
		}
		if n != files[i].Size {
			return retryable(fmt.Errorf("%s: vSphere sent %d bytes, %d arrived", it.name, n, files[i].Size))
		}
	}
	return nil
}

// abort tells vSphere the export failed, on its own deadline since ctx may
// be the reason: a short one once the export was cancelled.
func (s *Source) abort(ctx context.Context, lease *nfc.Lease, cause error) {
	d := s.timing.call
	if ctx.Err() != nil {
		d = s.timing.cleanup
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
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
