package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/hashicorp/hcl/v2"

	"github.com/hypersdk/hyperagent/reconcile/jsondoc"
	"github.com/hypersdk/hyperagent/schema"
)

const validateHelp = `Usage: hyperagent validate [options] [DIR]

  Checks the configuration in DIR (default: the current directory): syntax,
  types, references, variables and plugin blocks. It contacts nothing, and
  needs no variable values: a required variable that is not set is taken as
  unknown, and what depends on its value is not checked.

Options:
`

// validateJSON is the -json view, shaped like Terraform's validate -json.
type validateJSON struct {
	FormatVersion string           `json:"format_version"`
	Valid         bool             `json:"valid"`
	ErrorCount    int              `json:"error_count"`
	WarningCount  int              `json:"warning_count"`
	Diagnostics   []jsonDiagnostic `json:"diagnostics"`
}

func runValidate(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the result as JSON on stdout")
	var cf configFlags
	cf.register(fs)
	if code, done := parseFlags(fs, e, validateHelp, args); done {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(e.stderr, "Error: validate takes at most one directory")
		return exitError
	}
	dir := "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	// Variables nobody set are unknown, not missing: a pull request is
	// validated without the vCenter password.
	o := cf.options(e, dir)
	o.UnsetUnknown = true
	_, files, diags := schema.Load(o)
	if *asJSON {
		return viewValidateJSON(e, files, diags)
	}
	writeDiagnostics(e, files, diags)
	if diags.HasErrors() {
		return exitError
	}
	fmt.Fprintln(e.stdout, "Success! The configuration is valid.")
	return exitOK
}

func viewValidateJSON(e *env, files schema.Files, diags hcl.Diagnostics) int {
	out := validateJSON{
		FormatVersion: jsondoc.FormatVersion,
		Valid:         !diags.HasErrors(),
		Diagnostics:   jsonDiagnostics(files, diags),
	}
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			out.ErrorCount++
		} else {
			out.WarningCount++
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: encoding the result: %v\n", err)
		return exitError
	}
	fmt.Fprintln(e.stdout, string(b))
	if !out.Valid {
		return exitError
	}
	return exitOK
}
