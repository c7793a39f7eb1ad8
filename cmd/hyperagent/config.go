package main

import (
	"flag"

	"github.com/hashicorp/hcl/v2"

	"github.com/hypersdk/hyperagent/schema"
)

// configFlags are the flags every command that reads the config accepts.
type configFlags struct {
	vars     []string // -var NAME=VALUE, repeatable
	varFiles []string // -var-file FILE, repeatable
	// saved holds the variable values of the saved plan apply runs.
	saved *schema.SavedVariables
}

// register adds -var and -var-file to fs.
func (cf *configFlags) register(fs *flag.FlagSet) {
	fs.Var(stringsFlag(&cf.vars), "var", "set a variable: -var '`NAME=VALUE`' (repeatable)")
	fs.Var(stringsFlag(&cf.varFiles), "var-file", "set variables from an .hcl or .json `FILE` (repeatable)")
}

// loadConfig loads the migration repo in dir with the builtin plugins'
// schemas and the given variables.
func loadConfig(e *env, dir string, cf configFlags) (*schema.Config, schema.Files, hcl.Diagnostics) {
	return schema.Load(cf.options(e, dir))
}

func (cf configFlags) options(e *env, dir string) schema.LoadOptions {
	return schema.LoadOptions{
		Dir:      dir,
		Vars:     cf.vars,
		VarFiles: cf.varFiles,
		Env:      e.environ,
		Plugins:  e.registry.Schemas(),
		Saved:    cf.saved,
	}
}

// writeDiagnostics prints diagnostics for people on stderr, with source
// snippets.
func writeDiagnostics(e *env, files schema.Files, diags hcl.Diagnostics) {
	wr := hcl.NewDiagnosticTextWriter(e.stderr, files, 78, e.colorStderr())
	_ = wr.WriteDiagnostics(diags)
}
