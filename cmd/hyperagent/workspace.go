package main

import (
	"context"
	"flag"
	"fmt"
	"slices"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/schema"
)

const workspaceHelp = `Usage: hyperagent workspace list [options]

  Works with the campaigns (workspaces) of the state's backend. The
  configuration's state block names its own (workspace = "…"); there is
  no select: the configuration is what says which campaign a repo is.
`

const workspaceListHelp = `Usage: hyperagent workspace list [options]

  Lists the campaigns the state's backend holds a state for, one per
  line, the configuration's own marked "*" (and said to have no state yet
  when it has none). A PostgreSQL database holds one per workspace; a
  local state directory holds one, "default".

Options:
`

// runWorkspace is `workspace`: it only names its subcommand.
func runWorkspace(_ context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("workspace", flag.ContinueOnError)
	if code, done := parseFlags(fs, e, workspaceHelp, args); done {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(e.stderr, "Error: workspace takes a subcommand: list (see hyperagent workspace -help)")
	} else {
		fmt.Fprintf(e.stderr, "Error: unknown workspace subcommand %q (list)\n", fs.Arg(0))
	}
	return exitError
}

// runWorkspaceList is `workspace list`: Backend.Workspaces, the current
// one marked.
func runWorkspaceList(ctx context.Context, e *env, args []string) int {
	var stateDir string
	var cf configFlags
	fs := flag.NewFlagSet("workspace list", flag.ContinueOnError)
	fs.StringVar(&stateDir, "state-dir", "", "a local state directory (default: where the configuration keeps its state)")
	cf.register(fs)
	if code, done := parseFlags(fs, e, workspaceListHelp, args); done {
		return code
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(e.stderr, "Error: workspace list takes no arguments")
		return exitError
	}
	ref, ok := stateFor(e, stateDir, cf)
	if !ok {
		return exitError
	}
	current := reconcile.DefaultWorkspace
	if ref.dir == "" && ref.cfg != nil && ref.cfg.State.Backend == schema.BackendPG && ref.cfg.State.Workspace != "" {
		current = ref.cfg.State.Workspace
	}
	err := withStore(ref, func(store *reconcile.Store) error {
		all, err := store.Workspaces(ctx)
		if err != nil {
			return err
		}
		for _, w := range all {
			mark := "  "
			if w == current {
				mark = "* "
			}
			fmt.Fprintln(e.stdout, mark+w)
		}
		if !slices.Contains(all, current) {
			fmt.Fprintf(e.stdout, "* %s (no state written yet)\n", current)
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %s\n", e.redact.String(err.Error()))
		return exitError
	}
	return exitOK
}
