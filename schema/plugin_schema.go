package schema

import (
	"github.com/zclconf/go-cty/cty"

	"github.com/hypersdk/hyperagent/schema/addrs"
)

// BlockSchema is what a plugin declares its block accepts. The schema layer
// decodes the user's block against it, reports every mismatch as a
// diagnostic, and hands the plugin a plain cty object (PluginBlock.Config).
type BlockSchema struct {
	Attributes []AttributeSchema
	Blocks     []NestedBlockSchema
}

// AttributeSchema declares one argument.
type AttributeSchema struct {
	Name        string
	Type        cty.Type // values are converted to it; a mismatch is a diagnostic
	Required    bool
	Sensitive   bool      // redacted from plan, state, logs and output
	Default     cty.Value // used when unset; cty.NilVal means null
	Description string
	// Path marks a string naming a file or directory on this machine: a
	// relative value is resolved against the config directory, so a plan
	// means the same files wherever hyperagent runs from.
	Path bool
}

// Nesting says how often a nested block may appear.
type Nesting int

const (
	NestingSingle Nesting = iota // at most once; an object (null when absent)
	NestingList                  // any number; a list of objects
)

// NestedBlockSchema declares a nested block such as `fix {}`.
type NestedBlockSchema struct {
	Name    string
	Nesting Nesting
	Block   BlockSchema
}

// PluginSchemas maps a plugin kind and type to its block schema. The CLI
// builds it from the plugin registry; the schema layer only reads it.
type PluginSchemas map[addrs.Kind]map[string]BlockSchema
