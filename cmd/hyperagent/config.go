package main

import (
	"github.com/hashicorp/hcl/v2"

	"github.com/hypersdk/hyperagent/schema"
)

// configFlags are the flags every command that reads the config accepts.
type configFlags struct {
	vars     []string // -var NAME=VALUE, repeatable
	varFiles []string // -var-file FILE, repeatable
}

// loadConfig loads the migration repo in dir with the builtin plugins'
// schemas and the given variables.
func loadConfig(e *env, dir string, cf configFlags) (*schema.Config, schema.Files, hcl.Diagnostics) {
	return schema.Load(schema.LoadOptions{
		Dir:      dir,
		Vars:     cf.vars,
		VarFiles: cf.varFiles,
		Env:      e.environ,
		Plugins:  e.registry.Schemas(),
	})
}

// writeDiagnostics prints diagnostics for people on stderr, with source
// snippets.
func writeDiagnostics(e *env, files schema.Files, diags hcl.Diagnostics) {
	wr := hcl.NewDiagnosticTextWriter(e.stderr, files, 78, false)
	_ = wr.WriteDiagnostics(diags)
}
