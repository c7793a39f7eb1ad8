// Package schema owns the HCL language of a migration repo: it loads a
// directory of *.hcl and *.hcl.json files, evaluates variables, locals and
// functions, expands for_each, resolves references between blocks, decodes
// plugin blocks against the schemas plugins declare, and returns a typed
// Config of plain values. Every problem in what the user wrote becomes an
// hcl.Diagnostic with a source range, and all of them are reported at once.
// It also formats files (`hyperagent fmt`).
//
// It imports no other package of this module (except its own addrs
// subpackage): it knows nothing of the engine, the plugins or the CLI.
package schema
