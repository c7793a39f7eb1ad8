package protocol

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

var checksumRe = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Validate checks every rule of docs/protocol.md, section 5, and returns all violations
// joined, or nil. It is what the submitter runs before writing and what the
// worker runs after claiming.
func (m *Manifest) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if m.ManifestVersion != ManifestVersion {
		bad("manifest_version is %q, want %q", m.ManifestVersion, ManifestVersion)
	}
	if ts := m.Source.ExportTimestamp; ts != "" {
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			bad("source.export_timestamp %q is not RFC 3339", ts)
		}
	}
	if m.VM.CPU < 1 {
		bad("vm.cpu is %d, want ≥ 1", m.VM.CPU)
	}
	if m.VM.MemGB < 1 {
		bad("vm.mem_gb is %d, want ≥ 1", m.VM.MemGB)
	}
	oneOf(bad, "vm.firmware", m.VM.Firmware, "bios", "uefi", "unknown")
	oneOf(bad, "vm.os_hint", m.VM.OSHint, "linux", "windows", "unknown")
	if len(m.Disks) == 0 {
		bad("disks is empty: a job needs at least one disk")
	}
	seen := map[string]bool{}
	for i, d := range m.Disks {
		at := fmt.Sprintf("disks[%d]", i)
		if !ValidJobID(d.ID) {
			bad("%s.id %q must match [A-Za-z0-9_-]+", at, d.ID)
		} else if seen[d.ID] {
			bad("%s.id %q is not unique", at, d.ID)
		}
		seen[d.ID] = true
		oneOf(bad, at+".source_format", d.SourceFormat, "vmdk", "qcow2", "raw", "vhd", "vhdx", "vdi")
		if d.Bytes < 0 {
			bad("%s.bytes is %d, want ≥ 0", at, d.Bytes)
		}
		if !filepath.IsAbs(d.LocalPath) {
			bad("%s.local_path %q is not an absolute path", at, d.LocalPath)
		}
		// Optional, as for the hyper2kvm daemon (hypersdk omits it with
		// --manifest-checksum=false); when present it must be well formed.
		if d.Checksum != "" && !checksumRe.MatchString(d.Checksum) {
			bad("%s.checksum %q is not sha256:<64 lower-case hex>", at, d.Checksum)
		}
		if d.BootOrderHint < 0 {
			bad("%s.boot_order_hint is %d, want ≥ 0", at, d.BootOrderHint)
		}
		if d.DiskType != "" {
			oneOf(bad, at+".disk_type", d.DiskType, "boot", "data", "unknown")
		}
	}
	m.validateIdentities(bad)
	if c := m.Pipeline.Convert; c.CompressLevel != 0 && (c.CompressLevel < 1 || c.CompressLevel > 9) {
		bad("pipeline.convert.compress_level is %d, want 1–9", c.CompressLevel)
	}
	if dir := m.Output.Directory; !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		bad("output.directory %q must be a clean absolute path", dir)
	}
	oneOf(bad, "output.format", m.Output.Format, "qcow2", "raw", "vdi")
	if p := m.ReportPath(); filepath.IsAbs(p) || !filepath.IsLocal(p) {
		bad("options.report.path %q must be relative and stay inside output.directory", p)
	}
	return errors.Join(errs...)
}

func oneOf(bad func(string, ...any), field, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	bad("%s is %q, want one of %s", field, v, strings.Join(allowed, ", "))
}
