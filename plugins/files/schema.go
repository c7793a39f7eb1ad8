package files

import (
	"context"

	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// Type is the block type: source "files" "NAME".
const Type = "files"

// BlockSchema is what `source "files"` accepts. A migration's vm names an OVF
// directory or file, an OVA, or a bare disk image, relative to dir.
var BlockSchema = schema.BlockSchema{
	Attributes: []schema.AttributeSchema{
		{Name: "dir", Type: cty.String, Path: true, Required: true, Description: "directory holding the pre-exported VMs"},
		{Name: "max_parallel_exports", Type: cty.Number, Default: cty.NumberIntVal(4)},
		{Name: "hash_cache", Type: cty.String, Path: true, Description: "file remembering disk sha256s by path, size and mtime across runs; default: in memory only"},
	},
}

// Config is the decoded `source "files"` block.
type Config struct {
	Dir                string `cty:"dir"`
	MaxParallelExports int    `cty:"max_parallel_exports"`
	HashCache          string `cty:"hash_cache"`
}

// Factory registers the files source.
func Factory() plugins.Factory {
	return plugins.Factory{Kind: addrs.KindSource, Type: Type, Schema: BlockSchema, New: newSource}
}

func newSource(ctx context.Context, req plugins.NewRequest) (any, error) {
	var cfg Config
	if err := plugins.DecodeConfig(req.Config, &cfg); err != nil {
		return nil, plugins.Terminal(err)
	}
	s, err := New(cfg, req.Logger)
	if err != nil {
		return nil, err
	}
	return s, nil
}
