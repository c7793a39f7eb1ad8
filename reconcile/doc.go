// Package reconcile is the engine. It builds the observed state of every
// migration from the plugins (batched per plugin instance), diffs it with
// the desired Config and the recorded State into a Plan (pure data), and
// applies a Plan by walking its step graph within the declared limits. It
// owns the state format, its lock and its atomic writes.
//
// It sees plugins only through the interfaces of package plugins, and never
// imports the agent or the CLI.
package reconcile
