package libvirt

import (
	"context"

	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// Type is the block type: target "libvirt" "NAME".
const Type = "libvirt"

// Debian's ovmf package paths (4 MiB variable store).
const (
	defaultUEFILoader       = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	defaultUEFIVars         = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	defaultUEFISecureLoader = "/usr/share/OVMF/OVMF_CODE_4M.ms.fd"
	defaultUEFISecureVars   = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
	defaultNVRAMDir         = "/var/lib/libvirt/qemu/nvram"
)

// BlockSchema is what `target "libvirt"` accepts.
var BlockSchema = schema.BlockSchema{
	Attributes: []schema.AttributeSchema{
		{Name: "uri", Type: cty.String, Default: cty.StringVal("qemu:///system")},
		{Name: "socket", Type: cty.String, Path: true, Description: "the daemon's unix socket; default: detected (libvirt-sock, then the modular driver daemon's)"},
		{Name: "storage_dir", Type: cty.String, Path: true, Description: "where converted disks are moved"},
		{Name: "storage_pool", Type: cty.String, Description: "a libvirt dir storage pool instead of storage_dir"},
		{Name: "network_map", Type: cty.Map(cty.String), Description: `source network name to libvirt network ("default"), or to a host bridge ("bridge:br0")`},
		{Name: "machine", Type: cty.String, Default: cty.StringVal("q35")},
		{Name: "cpu_mode", Type: cty.String, Default: cty.StringVal("host-passthrough")},
		{Name: "start", Type: cty.Bool, Default: cty.False, Description: "start domains after defining them"},
		{Name: "max_parallel", Type: cty.Number, Default: cty.NumberIntVal(0)},
		{Name: "uefi_loader", Type: cty.String, Default: cty.StringVal(defaultUEFILoader)},
		{Name: "uefi_vars", Type: cty.String, Default: cty.StringVal(defaultUEFIVars), Description: "NVRAM template"},
		{Name: "uefi_secure_loader", Type: cty.String, Default: cty.StringVal(defaultUEFISecureLoader)},
		{Name: "uefi_secure_vars", Type: cty.String, Default: cty.StringVal(defaultUEFISecureVars)},
		{Name: "nvram_dir", Type: cty.String, Default: cty.StringVal(defaultNVRAMDir)},
	},
}

// Config is the decoded `target "libvirt"` block.
type Config struct {
	URI              string            `cty:"uri"`
	Socket           string            `cty:"socket"`
	StorageDir       string            `cty:"storage_dir"`
	StoragePool      string            `cty:"storage_pool"`
	NetworkMap       map[string]string `cty:"network_map"`
	Machine          string            `cty:"machine"`
	CPUMode          string            `cty:"cpu_mode"`
	Start            bool              `cty:"start"`
	MaxParallel      int               `cty:"max_parallel"`
	UEFILoader       string            `cty:"uefi_loader"`
	UEFIVars         string            `cty:"uefi_vars"`
	UEFISecureLoader string            `cty:"uefi_secure_loader"`
	UEFISecureVars   string            `cty:"uefi_secure_vars"`
	NVRAMDir         string            `cty:"nvram_dir"`
}

// Factory registers the libvirt target.
func Factory() plugins.Factory {
	return plugins.Factory{Kind: addrs.KindTarget, Type: Type, Schema: BlockSchema, New: newTarget}
}

func newTarget(ctx context.Context, req plugins.NewRequest) (any, error) {
	var cfg Config
	if err := plugins.DecodeConfig(req.Config, &cfg); err != nil {
		return nil, plugins.Terminal(err)
	}
	t, err := New(cfg, req.Logger)
	if err != nil {
		return nil, err
	}
	return t, nil
}
