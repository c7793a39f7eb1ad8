package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"
)

// ManifestVersion is the only Artifact Manifest version there is.
const ManifestVersion = "1.0"

// Manifest is an Artifact Manifest v1.0 (docs/protocol.md, section 5). Every field a
// daemon reads is written without omitempty: a missing pipeline stage counts
// as disabled, and a missing boot_order_hint makes the daemon guess.
type Manifest struct {
	ManifestVersion string   `json:"manifest_version" yaml:"manifest_version"`
	Source          Source   `json:"source" yaml:"source"`
	VM              VM       `json:"vm" yaml:"vm"`
	Disks           []Disk   `json:"disks" yaml:"disks"`
	NICs            []NIC    `json:"nics" yaml:"nics"`
	Metadata        Metadata `json:"metadata" yaml:"metadata"`
	Pipeline        Pipeline `json:"pipeline" yaml:"pipeline"`
	Output          Output   `json:"output" yaml:"output"`
	Options         Options  `json:"options" yaml:"options"`
}

// Source is informational: where the VM came from.
type Source struct {
	Provider        string `json:"provider" yaml:"provider"`
	VMID            string `json:"vm_id" yaml:"vm_id"`
	VMName          string `json:"vm_name" yaml:"vm_name"`
	Datacenter      string `json:"datacenter" yaml:"datacenter"`
	ExportMethod    string `json:"export_method" yaml:"export_method"`
	ExportTimestamp string `json:"export_timestamp" yaml:"export_timestamp"`
}

// VM is informational hardware the daemon may use for fixes.
type VM struct {
	CPU        int    `json:"cpu" yaml:"cpu"`
	MemGB      int    `json:"mem_gb" yaml:"mem_gb"`
	Firmware   string `json:"firmware" yaml:"firmware"` // bios | uefi | unknown
	SecureBoot bool   `json:"secureboot" yaml:"secureboot"`
	OSHint     string `json:"os_hint" yaml:"os_hint"` // linux | windows | unknown
}

// Disk is one input disk. Checksum is optional, as for the daemon
// (hypersdk omits it with --manifest-checksum=false): an empty one is left
// out of the JSON, because the daemon checks the format of any checksum key
// that is present.
type Disk struct {
	ID            string `json:"id" yaml:"id"`
	SourceFormat  string `json:"source_format" yaml:"source_format"`
	Bytes         int64  `json:"bytes" yaml:"bytes"`
	LocalPath     string `json:"local_path" yaml:"local_path"`
	Checksum      string `json:"checksum,omitempty" yaml:"checksum,omitempty"` // sha256:<64 lower-case hex>
	BootOrderHint int    `json:"boot_order_hint" yaml:"boot_order_hint"`
	Label         string `json:"label" yaml:"label"`
	DiskType      string `json:"disk_type" yaml:"disk_type"` // boot | data | unknown
}

// NIC is passed through.
type NIC struct {
	ID      string `json:"id" yaml:"id"`
	MAC     string `json:"mac" yaml:"mac"`
	Network string `json:"network" yaml:"network"`
}

// Metadata identifies the job; hyperagent puts the migration address in
// Tags["address"].
type Metadata struct {
	JobID     string            `json:"job_id" yaml:"job_id"`
	CreatedAt string            `json:"created_at" yaml:"created_at"`
	Tags      map[string]string `json:"tags" yaml:"tags"`
}

// Pipeline holds every stage; each is always written.
type Pipeline struct {
	Inspect  InspectStage  `json:"inspect" yaml:"inspect"`
	Fix      FixStage      `json:"fix" yaml:"fix"`
	Convert  ConvertStage  `json:"convert" yaml:"convert"`
	Validate ValidateStage `json:"validate" yaml:"validate"`
}

type InspectStage struct {
	Enabled bool `json:"enabled" yaml:"enabled"`
}

type FixStage struct {
	Enabled           bool   `json:"enabled" yaml:"enabled"`
	FstabMode         string `json:"fstab_mode" yaml:"fstab_mode"`
	UpdateGrub        bool   `json:"update_grub" yaml:"update_grub"`
	RegenInitramfs    bool   `json:"regen_initramfs" yaml:"regen_initramfs"`
	RemoveVMwareTools bool   `json:"remove_vmware_tools" yaml:"remove_vmware_tools"`
	Backup            bool   `json:"backup" yaml:"backup"`
}

type ConvertStage struct {
	Enabled       bool `json:"enabled" yaml:"enabled"`
	Compress      bool `json:"compress" yaml:"compress"`
	CompressLevel int  `json:"compress_level" yaml:"compress_level"` // 1–9, 0 = default
}

type ValidateStage struct {
	Enabled             bool `json:"enabled" yaml:"enabled"`
	CheckImageIntegrity bool `json:"check_image_integrity" yaml:"check_image_integrity"`
}

// Output says where converted disks go: <Directory>/<disk.id>.<Format>.
type Output struct {
	Directory string `json:"directory" yaml:"directory"`
	Format    string `json:"format" yaml:"format"` // qcow2 | raw | vdi
}

type Options struct {
	Report ReportOption `json:"report" yaml:"report"`
}

// ReportOption: Path is relative to Output.Directory (default report.json).
type ReportOption struct {
	Enabled bool   `json:"enabled" yaml:"enabled"`
	Path    string `json:"path" yaml:"path"`
}

// ReportPath is the report's path relative to the output directory.
func (m *Manifest) ReportPath() string {
	if m.Options.Report.Path == "" {
		return "report.json"
	}
	return m.Options.Report.Path
}

// OutputPath is where disk d's converted image goes.
func (m *Manifest) OutputPath(d Disk) string {
	return m.Output.Directory + "/" + d.ID + "." + m.Output.Format
}

// ParseManifest decodes a job file by its suffix (.json, .yaml, .yml). It
// only decodes; call Validate for the rules.
func ParseManifest(data []byte, ext string) (*Manifest, error) {
	var m Manifest
	switch ext {
	case ".json":
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("manifest is not valid JSON: %w", err)
		}
		if dec.More() {
			return nil, fmt.Errorf("manifest is not valid JSON: data after the object")
		}
	case ".yaml", ".yml":
		if err := yaml.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("manifest is not valid YAML: %w", err)
		}
	default:
		return nil, fmt.Errorf("manifest suffix %q: want .json, .yaml or .yml", ext)
	}
	return &m, nil
}

// Marshal renders the manifest as the JSON a submitter writes.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
