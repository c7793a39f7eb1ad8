package main

// commands is the table of subcommands. Each lives in its own file.
func commands() map[string]command {
	return map[string]command{
		"version":      {"Show the version", runVersion},
		"validate":     {"Check the configuration for errors", runValidate},
		"fmt":          {"Rewrite configuration files in the canonical style", runFmt},
		"init":         {"Scaffold a migration repo in an empty directory", runInit},
		"plan":         {"Show the steps left to reach the configuration", runPlan},
		"apply":        {"Run the steps of a plan", runApply},
		"show":         {"Show a saved plan or the state", runShow},
		"state":        {"Inspect or edit the state (list, show, rm, mv, pull, push, restore)", runState},
		"force-unlock": {"Release a stuck state lock", runForceUnlock},
		"worker":       {"Run the built-in converter on a workflow directory", runWorker},
		"agent":        {"Reconcile continuously, as a service (also: agent suspend, resume)", runAgent},
		"status":       {"Show what the running agent is doing (or, without one, what the state records)", runStatus},
		"dev":          {devSynopsis, runDev},
	}
}
