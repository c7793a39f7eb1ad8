package hyper2kvm

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// Type is the block type: converter "hyper2kvm" "NAME".
const Type = "hyper2kvm"

// BlockSchema is what `converter "hyper2kvm"` accepts (docs/protocol.md).
var BlockSchema = schema.BlockSchema{
	Attributes: []schema.AttributeSchema{
		{Name: "workflow_dir", Type: cty.String, Path: true, Required: true, Description: "the daemon's manifest-workflow directory"},
		{Name: "output_dir", Type: cty.String, Path: true, Required: true, Description: "each job's output.directory is <output_dir>/<job id>"},
		{Name: "unit", Type: cty.String, Description: "systemd unit of the daemon, for health over D-Bus"},
		{Name: "timeout", Type: cty.String, Default: cty.StringVal("2h"), Description: "a job queued or processing longer is stalled"},
		{Name: "max_in_flight", Type: cty.Number, Default: cty.NumberIntVal(0), Description: "jobs submitted and not finished; 0 = no limit"},
	},
}

// Factory registers the hyper2kvm converter.
func Factory() plugins.Factory {
	return plugins.Factory{Kind: addrs.KindConverter, Type: Type, Schema: BlockSchema, New: newConverter}
}
