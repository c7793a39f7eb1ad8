package vsphere

import (
	"context"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// Type is the block type: source "vsphere" "NAME".
const Type = "vsphere"

// BlockSchema is what `source "vsphere"` accepts. Connection settings left
// unset fall back to govc's environment (GOVC_URL, GOVC_USERNAME,
// GOVC_PASSWORD, GOVC_INSECURE, GOVC_THUMBPRINT).
var BlockSchema = schema.BlockSchema{
	Attributes: []schema.AttributeSchema{
		{Name: "url", Type: cty.String, Description: "vCenter or ESXi SDK URL, e.g. https://vcenter.example.com/sdk"},
		{Name: "username", Type: cty.String},
		{Name: "password", Type: cty.String, Sensitive: true},
		{Name: "datacenter", Type: cty.String, Description: "datacenter used for relative inventory paths"},
		{Name: "thumbprint", Type: cty.String, Description: "SHA-1 thumbprint of the server certificate to pin"},
		{Name: "ca_file", Type: cty.String, Path: true, Description: "PEM file of CAs to trust"},
		{Name: "insecure", Type: cty.Bool, Default: cty.False, Description: "skip certificate verification"},
		{Name: "max_parallel_exports", Type: cty.Number, Default: cty.NumberIntVal(4)},
		{Name: "max_parallel_disks", Type: cty.Number, Default: cty.NumberIntVal(2), Description: "disks downloaded at once per export"},
	},
}

// Factory registers the vsphere source.
func Factory() plugins.Factory {
	return plugins.Factory{Kind: addrs.KindSource, Type: Type, Schema: BlockSchema, New: newSource}
}

func newSource(ctx context.Context, req plugins.NewRequest) (any, error) {
	var cfg config
	if err := plugins.DecodeConfig(req.Config, &cfg); err != nil {
		return nil, err
	}
	set, err := cfg.resolve(os.Getenv)
	if err != nil {
		return nil, plugins.Terminal(err)
	}
	log := req.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Source{set: set, log: log, keepAlive: 5 * time.Minute, timing: defaultTiming(), statfs: freeBytes}, nil
}
