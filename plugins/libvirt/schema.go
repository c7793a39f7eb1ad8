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

// BlockSchema is what `target "libvirt"` accepts.
var BlockSchema = schema.BlockSchema{
	Attributes: []schema.AttributeSchema{
		{Name: "uri", Type: cty.String, Default: cty.StringVal("qemu:///system")},
		{Name: "storage_dir", Type: cty.String, Description: "where converted disks are moved"},
		{Name: "storage_pool", Type: cty.String, Description: "a libvirt storage pool instead of storage_dir"},
		{Name: "network_map", Type: cty.Map(cty.String), Description: "source network name to libvirt network"},
		{Name: "machine", Type: cty.String, Default: cty.StringVal("q35")},
		{Name: "cpu_mode", Type: cty.String, Default: cty.StringVal("host-passthrough")},
		{Name: "start", Type: cty.Bool, Default: cty.False, Description: "start domains after defining them"},
		{Name: "max_parallel", Type: cty.Number, Default: cty.NumberIntVal(0)},
	},
}

// Factory registers the libvirt target.
func Factory() plugins.Factory {
	return plugins.Factory{Kind: addrs.KindTarget, Type: Type, Schema: BlockSchema, New: newTarget}
}

func newTarget(ctx context.Context, req plugins.NewRequest) (any, error) {
	return nil, plugins.NotImplemented("target \"libvirt\"")
}
