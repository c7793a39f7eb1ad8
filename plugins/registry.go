package plugins

import (
	"context"
	"fmt"
	"sort"

	"github.com/hashicorp/go-hclog"
	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/schema"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

// NewRequest is what a factory gets to build one plugin instance.
type NewRequest struct {
	Addr   addrs.Plugin
	Config cty.Value // PluginBlock.Config: plain, known, unmarked
	Logger hclog.Logger
}

// Factory builds instances of one plugin type.
type Factory struct {
	Kind   addrs.Kind
	Type   string
	Schema schema.BlockSchema
	// New returns a Source, Converter or Target according to Kind. It must
	// not contact anything: connections are made on first use, so that
	// validate and fmt never need the network.
	New func(ctx context.Context, req NewRequest) (any, error)
}

// Registry maps a block's kind and type to its factory.
type Registry struct {
	factories map[addrs.Kind]map[string]Factory
}

// NewRegistry returns a registry holding the given factories.
func NewRegistry(fs ...Factory) *Registry {
	r := &Registry{factories: map[addrs.Kind]map[string]Factory{}}
	for _, f := range fs {
		r.Register(f)
	}
	return r
}

// Register adds f; registering a kind and type twice panics (a programming
// error).
func (r *Registry) Register(f Factory) {
	if r.factories[f.Kind] == nil {
		r.factories[f.Kind] = map[string]Factory{}
	}
	if _, dup := r.factories[f.Kind][f.Type]; dup {
		panic(fmt.Sprintf("plugin %s %q registered twice", f.Kind, f.Type))
	}
	r.factories[f.Kind][f.Type] = f
}

// Lookup finds the factory for a kind and type.
func (r *Registry) Lookup(kind addrs.Kind, typ string) (Factory, bool) {
	f, ok := r.factories[kind][typ]
	return f, ok
}

// Types lists the registered types of a kind, sorted.
func (r *Registry) Types(kind addrs.Kind) []string {
	var out []string
	for t := range r.factories[kind] {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Schemas returns the block schemas, for schema.LoadOptions.Plugins.
func (r *Registry) Schemas() schema.PluginSchemas {
	out := schema.PluginSchemas{}
	for k, m := range r.factories {
		out[k] = map[string]schema.BlockSchema{}
		for t, f := range m {
			out[k][t] = f.Schema
		}
	}
	return out
}
