package main

import "context"

// command is one subcommand: its one-line synopsis, for the command list,
// and its run. Its help text and flags are what run hands parseFlags,
// which it calls before doing anything else: that is how `help COMMAND`,
// `COMMAND -h`, the man pages and shell completion learn them
// (describe), from the one source that also parses them.
type command struct {
	synopsis string
	run      func(ctx context.Context, e *env, args []string) int
}

// commands is the table of subcommands, each in its own file. To add one,
// add its line here; a nested command ("state list") is its words joined
// by a space, and its parent is a command of its own.
func commands() map[string]command {
	return map[string]command{
		"version":        {"Show the version", runVersion},
		"validate":       {"Check the configuration for errors", runValidate},
		"fmt":            {"Rewrite configuration files in the canonical style", runFmt},
		"init":           {"Scaffold a migration repo in an empty directory", runInit},
		"plan":           {"Show the steps left to reach the configuration", runPlan},
		"apply":          {"Run the steps of a plan", runApply},
		"show":           {"Show a saved plan or the state", runShow},
		"state":          {"Inspect or edit the state (list, show, rm, mv, pull, push, restore)", runState},
		"state list":     {"List the migrations the state records", stateSubcommand("list")},
		"state show":     {"Show one migration's state record", stateSubcommand("show")},
		"state rm":       {"Forget migrations, touching nothing outside the state", stateSubcommand("rm")},
		"state mv":       {"Move a record to another address", stateSubcommand("mv")},
		"state pull":     {"Print the whole state as JSON", stateSubcommand("pull")},
		"state push":     {"Replace the state with a file's", stateSubcommand("push")},
		"state restore":  {"Put back the state as it was before its last write", stateSubcommand("restore")},
		"force-unlock":   {"Release a stuck state lock", runForceUnlock},
		"workspace":      {"Work with the campaigns of the state's backend (list)", runWorkspace},
		"workspace list": {"List the campaigns the state's backend holds", runWorkspaceList},
		"worker":         {"Run the built-in converter on a workflow directory", runWorker},
		"agent":          {"Reconcile continuously, as a service (also: agent suspend, resume)", runAgent},
		"agent suspend":  {"Hold migrations, or the campaign, until resume", suspendCommand("suspend")},
		"agent resume":   {"Let suspended migrations run again", suspendCommand("resume")},
		"status":         {"Show what the running agent is doing (or, without one, what the state records)", runStatus},
		"dev":            {devSynopsis, runDev},
		"discover":       {discoverSynopsis, runDiscover},
		"graph":          {graphSynopsis, runGraph},
		"import":         {importSynopsis, runImport},
	}
}

// hiddenCommands make what packages ship: they are runnable, and left
// out of the command list and of completion.
func hiddenCommands() map[string]command {
	return map[string]command{
		"completion": {"Print the bash or zsh completion script", runCompletion},
		"man":        {"Write a man page per command into a directory", runMan},
	}
}

// allCommands is commands and hiddenCommands.
func allCommands() map[string]command {
	all := commands()
	for name, c := range hiddenCommands() {
		all[name] = c
	}
	return all
}
