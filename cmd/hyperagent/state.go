package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pass"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

const stateHelp = `Usage: hyperagent state list | show ADDR | rm ADDR... | restore [options]

  list     prints every migration address the state records
  show     prints one record as JSON (state holds no secrets)
  rm       forgets records, so hyperagent no longer manages what they name;
           it touches nothing outside the state
  restore  puts back the state as it was before its last write (kept as
           state.json.backup at every write); the state it replaces
           becomes the backup

Options:
`

func runState(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("state", flag.ContinueOnError)
	stateDir := fs.String("state-dir", "", "the state directory (default: the config's agent.state_dir)")
	var cf configFlags
	cf.register(fs)
	var lf lockFlags
	lf.register(fs, false)
	if code, done := parseFlags(fs, e, stateHelp, args); done {
		return code
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitError
	}
	// Options go before or after the subcommand, as in
	// `terraform state list -state=…`.
	sub := fs.Arg(0)
	if code, done := parseFlags(fs, e, stateHelp, fs.Args()[1:]); done {
		return code
	}
	rest := fs.Args()
	dir, ok := stateDirFor(e, *stateDir, cf)
	if !ok {
		return exitError
	}
	switch sub {
	case "list":
		return stateList(e, dir)
	case "show":
		if len(rest) != 1 {
			fmt.Fprintln(e.stderr, "Error: state show takes one address")
			return exitError
		}
		return stateShow(e, dir, rest[0])
	case "rm":
		if len(rest) == 0 {
			fmt.Fprintln(e.stderr, "Error: state rm takes one or more addresses")
			return exitError
		}
		store, err := reconcile.OpenStore(dir)
		if err != nil {
			fmt.Fprintf(e.stderr, "Error: %v\n", err)
			return exitError
		}
		return stateRm(ctx, e, store, rest, lf)
	case "restore":
		if len(rest) != 0 {
			fmt.Fprintln(e.stderr, "Error: state restore takes no arguments")
			return exitError
		}
		return stateRestore(ctx, e, dir, lf)
	}
	fmt.Fprintf(e.stderr, "Error: unknown state subcommand %q (list, show, rm, restore)\n", sub)
	return exitError
}

func stateList(e *env, dir string) int {
	st, err := readState(dir)
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	for _, a := range st.Addresses() {
		fmt.Fprintln(e.stdout, a)
	}
	return exitOK
}

func stateShow(e *env, dir string, addr string) int {
	a, err := addrs.ParseMigration(addr)
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	st, err := readState(dir)
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	ms, ok := st.Migrations[a.String()]
	if !ok {
		fmt.Fprintf(e.stderr, "Error: %s is not in the state\n", a)
		return exitError
	}
	return writeJSON(e, ms)
}

func stateRm(ctx context.Context, e *env, store *reconcile.Store, args []string, lf lockFlags) int {
	var list []addrs.Migration
	for _, s := range args {
		a, err := addrs.ParseMigration(s)
		if err != nil {
			fmt.Fprintf(e.stderr, "Error: %v\n", err)
			return exitError
		}
		list = append(list, a)
	}
	err := pass.Edit(ctx, store, "state rm", lf.timeout, func(st *reconcile.State) error {
		for _, a := range list {
			if _, ok := st.Migrations[a.String()]; !ok {
				return fmt.Errorf("%s is not in the state; nothing was removed", a)
			}
		}
		for _, a := range list {
			delete(st.Migrations, a.String())
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	for _, a := range list {
		fmt.Fprintf(e.stdout, "Removed %s from the state.\n", a)
	}
	return exitOK
}

// stateRestore puts the backup back, under the lock.
func stateRestore(ctx context.Context, e *env, dir string, lf lockFlags) int {
	store, err := reconcile.OpenStore(dir)
	if err == nil {
		_, err = store.LockWait(ctx, "state restore", lf.timeout, lf.waiting(e))
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	from, to, err := store.Restore()
	if uerr := store.Unlock(); err == nil {
		err = uerr
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	fmt.Fprintf(e.stdout, "Restored the state as it was at serial %d (now serial %d); the state it replaced is the backup.\n", from, to)
	return exitOK
}
