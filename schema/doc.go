// Package schema owns the HCL language of a migration repo: it loads a
// directory of *.hcl and *.hcl.json files, evaluates variables, locals and
// functions, expands for_each, resolves references between blocks, decodes
// plugin blocks against the schemas plugins declare, and returns a typed
// Config of plain values. Every problem in what the user wrote becomes an
// hcl.Diagnostic with a source range, and all of them are reported at once.
// It also formats files (`hyperagent fmt`).
//
// Besides types, it checks what can be known before anything runs: a
// domain name the config sets must pass DomainNameProblem (the one rule
// for domain names), and no two migration instances may set the same
// domain name on the same target. A converter block may name another as
// its `fallback`, a meta-argument it resolves itself (PluginBlock.Fallback)
// and never passes to the plugin. PluginBlock.AttrRanges keeps where each
// attribute of a plugin block was written, so that errors a value causes
// at run time can be shown at its file:line.
//
// The input may be hostile (a repo from a pull request, run through
// validate), so loading is bounded: only regular files are read, each of at
// most 16 MiB (maxFileSize), a FIFO or a device is refused without
// blocking; source nesting deeper than maxNesting is refused before HCL's
// recursive parser sees it; evaluation is linear in the number of locals
// and for_each elements; values quoted in messages are clipped; and what
// file() and templatefile() read from outside the configuration directory
// is sensitive, so no message, plan or state shows it.
//
// It imports no other package of this module (except its own addrs
// subpackage): it knows nothing of the engine, the plugins or the CLI.
package schema
