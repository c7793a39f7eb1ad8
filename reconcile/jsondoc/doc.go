// Package jsondoc renders the engine's values as the documents
// hyperagent's -json views and the agent's API publish (docs/output.md,
// schemas in docs/schema): the plan (show -json PLANFILE, GET /v1/plan)
// and the state (show -json). They are distinct from the saved plan and
// state files, whose integer format_version versions hyperagent's own
// storage: a document carries the string FormatVersion, lists are [] and
// never null, and every property is always present unless the schema
// says it is optional.
//
// It reads reconcile's values and never changes them.
package jsondoc
