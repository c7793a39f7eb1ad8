package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/hypersdk/hyperagent/reconcile"
)

// imageInfo is the part of `qemu-img info --output=json` the summary uses.
type imageInfo struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
	ActualSize  int64  `json:"actual-size"`
}

func qemuImgInfo(ctx context.Context, file string) (imageInfo, error) {
	var info imageInfo
	out, err := exec.CommandContext(ctx, "qemu-img", "info", "--output=json", file).Output()
	if err != nil {
		return info, fmt.Errorf("qemu-img info %s: %w", file, err)
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return info, fmt.Errorf("qemu-img info %s: %w", file, err)
	}
	return info, nil
}

// devSummary reports what the apply left, read from the state and checked
// against reality: every VM has a migration record with a domain, the
// domain exists on the test driver, and its disks are qcow2 images holding
// the guest bytes seeded into the simulator. Any gap is an error: the
// campaign did not converge.
func devSummary(ctx context.Context, e *env, l devLayout, lv *golibvirt.Libvirt, vms []devVM) error {
	store, err := reconcile.OpenStore(l.StateDir)
	if err != nil {
		return err
	}
	defer store.Close()
	st, err := store.Load()
	if err != nil {
		return err
	}
	byVM := map[string]*reconcile.MigrationState{}
	for _, ms := range st.Migrations {
		byVM[ms.VM] = ms
	}
	// Printed only when everything checks out: the agent's mode calls this
	// until it does.
	lines := []string{fmt.Sprintf("Summary (from the state, checked on %s and with qemu-img):", devURI)}
	var problems []error
	var total int64
	for _, vm := range vms {
		ms := byVM[vm.Path]
		switch {
		case ms == nil:
			problems = append(problems, fmt.Errorf("%s: no migration in the state", vm.Path))
			continue
		case ms.Domain == nil:
			problems = append(problems, fmt.Errorf("%s: not defined", ms.Address))
			continue
		}
		if _, err := lv.DomainLookupByName(ms.Domain.Name); err != nil {
			problems = append(problems, fmt.Errorf("%s: domain %s is not on %s: %w", ms.Address, ms.Domain.Name, devURI, err))
			continue
		}
		// The NFC export brought back exactly the VMDK vSphere served.
		if ms.Export == nil || len(ms.Export.Disks) != 1 || ms.Export.Disks[0].SHA256 != vm.SHA256 {
			problems = append(problems, fmt.Errorf("%s: the export does not record the served VMDK (sha256 %s): %+v", ms.Address, vm.SHA256, ms.Export))
			continue
		}
		lines = append(lines, fmt.Sprintf("  %-24s domain %s (uuid %s); export matched the served VMDK's sha256", ms.Address, ms.Domain.Name, ms.Domain.UUID))
		for _, d := range ms.Domain.Disks {
			info, err := qemuImgInfo(ctx, d.Path)
			if err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", ms.Address, err))
				continue
			}
			if info.Format != "qcow2" || info.VirtualSize != vm.Size {
				problems = append(problems, fmt.Errorf("%s: %s is %s of %d bytes, want qcow2 of %d",
					ms.Address, d.Path, info.Format, info.VirtualSize, vm.Size))
				continue
			}
			// The guest sees exactly the bytes seeded into vSphere.
			if out, err := exec.CommandContext(ctx, "qemu-img", "compare", "-q", "-f", "raw", "-F", "qcow2", vm.SeedRaw, d.Path).CombinedOutput(); err != nil {
				problems = append(problems, fmt.Errorf("%s: %s differs from the disk seeded into %s: %v %s", ms.Address, d.Path, vm.Path, err, out))
				continue
			}
			total += d.Size
			lines = append(lines, fmt.Sprintf("  %-24s   disk %s: qcow2, %d bytes (%.1f MiB), virtual size %d MiB, same guest bytes as the seeded disk",
				"", d.Path, d.Size, float64(d.Size)/(1<<20), info.VirtualSize>>20))
		}
	}
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("not converged:\n%w", err)
	}
	for _, line := range lines {
		say(e, "%s", line)
	}
	say(e, "%d domains defined, %d qcow2 bytes (%.1f MiB) in %s.", len(vms), total, float64(total)/(1<<20), l.Images)
	return nil
}
