package vsphere

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
	"golang.org/x/sys/unix"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

func errorf(summary, format string, args ...any) plugins.Finding {
	return plugins.Finding{Severity: plugins.SeverityError, Summary: summary, Detail: fmt.Sprintf(format, args...)}
}

func warnf(summary, format string, args ...any) plugins.Finding {
	return plugins.Finding{Severity: plugins.SeverityWarning, Summary: summary, Detail: fmt.Sprintf(format, args...)}
}

// findings are the pre-flight problems of one VM for one migration.
func (s *Source) findings(vm mo.VirtualMachine, q plugins.VMQuery) []plugins.Finding {
	var out []plugins.Finding
	if vm.Config == nil {
		return append(out, errorf("VM configuration unavailable", "vSphere returned no configuration for %s (is it being created or is it inaccessible?)", q.Path))
	}
	if vm.Config.Template {
		out = append(out, errorf("VM is a template", "%s is a template; convert it to a VM to export it", q.Path))
	}
	if st := vm.Runtime.PowerState; st != types.VirtualMachinePowerStatePoweredOff && !q.PowerOff {
		out = append(out, errorf("VM is "+string(st), "%s is %s and export needs it powered off; set power_off = true in the export block or power it off", q.Path, st))
	}
	if len(vm.RootSnapshot) > 0 {
		out = append(out, warnf("VM has snapshots", "%s has %d snapshot tree(s); the export holds the current state only and the snapshots are not migrated", q.Path, len(vm.RootSnapshot)))
	}
	if vm.Config.KeyId != nil {
		out = append(out, errorf("VM is encrypted", "%s is encrypted with a vSphere key; decrypt it before export", q.Path))
	}
	switch fw := firmware(vm.Config.Firmware); fw {
	case "bios", "uefi":
	default:
		out = append(out, errorf("unsupported firmware", "%s uses firmware %q; the converter takes bios or efi", q.Path, vm.Config.Firmware))
	}
	var capacity int64
	for _, d := range disks(vm) {
		capacity += d.fact.CapacityBytes
		out = append(out, diskFindings(d, q.Path)...)
	}
	if q.ExportDir != "" && s.statfs != nil {
		out = append(out, s.spaceFindings(vm, q, capacity)...)
	}
	return out
}

func diskFindings(d vmDisk, vmPath string) []plugins.Finding {
	var out []plugins.Finding
	name := d.fact.Label
	if name == "" {
		name = d.fact.ID
	}
	var mode, sharing string
	var encrypted bool
	switch b := d.backing.(type) {
	case *types.VirtualDiskRawDiskMappingVer1BackingInfo:
		out = append(out, errorf("raw device mapping", "%s: %s is an RDM (%s mode) of LUN %s; its data is on the LUN and is not exported", vmPath, name, b.CompatibilityMode, b.LunUuid))
		mode, sharing = b.DiskMode, b.Sharing
	case *types.VirtualDiskFlatVer2BackingInfo:
		mode, sharing, encrypted = b.DiskMode, b.Sharing, b.KeyId != nil
	case *types.VirtualDiskSparseVer2BackingInfo:
		mode, encrypted = b.DiskMode, b.KeyId != nil
	case *types.VirtualDiskSeSparseBackingInfo:
		mode, encrypted = b.DiskMode, b.KeyId != nil
	}
	if strings.HasPrefix(mode, "independent") {
		out = append(out, warnf("independent disk", "%s: %s is %s; snapshots never cover it and a nonpersistent disk exports without the changes since power-on", vmPath, name, mode))
	}
	if sharing == string(types.VirtualDiskSharingSharingMultiWriter) {
		out = append(out, errorf("shared disk", "%s: %s is multi-writer shared; other VMs may write it during export", vmPath, name))
	}
	if encrypted {
		out = append(out, errorf("encrypted disk", "%s: %s is encrypted; decrypt it before export", vmPath, name))
	}
	return out
}

// spaceFindings compare the export directory's free space with what the
// export may write. The bytes allocated on the datastore (layoutEx) bound a
// streamOptimized export from above in practice; the capacity bounds it
// from above always. Less free than allocated is an error, less than the
// capacity a warning.
func (s *Source) spaceFindings(vm mo.VirtualMachine, q plugins.VMQuery, capacity int64) []plugins.Finding {
	free, err := s.statfs(q.ExportDir)
	if err != nil {
		return []plugins.Finding{warnf("free space unknown", "cannot read free space of %s: %v", q.ExportDir, err)}
	}
	var allocated int64
	if vm.LayoutEx != nil {
		for _, f := range vm.LayoutEx.File {
			if f.Type == string(types.VirtualMachineFileLayoutExFileTypeDiskExtent) {
				allocated += f.Size
			}
		}
	}
	switch {
	case allocated > 0 && int64(free) < allocated:
		return []plugins.Finding{errorf("not enough free space", "%s has %s free; the disks of %s use %s on the datastore (capacity %s)",
			q.ExportDir, fsutil.FormatBytes(int64(free)), q.Path, fsutil.FormatBytes(allocated), fsutil.FormatBytes(capacity))}
	case int64(free) < capacity:
		return []plugins.Finding{warnf("free space may not suffice", "%s has %s free; the disks of %s have a capacity of %s (the export is usually smaller)",
			q.ExportDir, fsutil.FormatBytes(int64(free)), q.Path, fsutil.FormatBytes(capacity))}
	}
	return nil
}

// freeBytes is statfs(2) of dir, or of its nearest existing ancestor when
// the export directory is yet to be created.
func freeBytes(dir string) (uint64, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	for {
		var st unix.Statfs_t
		err := unix.Statfs(d, &st)
		if err == nil {
			return st.Bavail * uint64(st.Bsize), nil
		}
		parent := filepath.Dir(d)
		if !errors.Is(err, fs.ErrNotExist) || parent == d {
			return 0, &os.PathError{Op: "statfs", Path: d, Err: err}
		}
		d = parent
	}
}
