// Package pass owns one reconcile pass, as Terraform's local backend owns
// an operation: take the state lock (waiting up to a timeout), load the
// state, observe and plan (or check a saved plan for staleness), redact
// what will be shown, then apply or only record what state keeps, and
// release the lock. `hyperagent plan` and `apply` run one pass; the agent
// runs one per trigger. Callers parse their arguments, pick their views and
// call Run; they never sequence the engine themselves.
//
// A Workspace is a configuration opened for passes: its plugin instances,
// its state store and its Redactor, the one place secrets are taken out of
// everything a pass returns.
//
// It may import reconcile, plugins and schema; never the agent or the CLI.
package pass
