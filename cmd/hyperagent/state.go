package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pass"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

const stateHelp = `Usage: hyperagent state SUBCOMMAND [options] [ARGS]

  Inspects or edits the state: what hyperagent recorded about each
  migration (state holds no secrets). The state is where the configuration
  in "." keeps it (its state block, else agent.state_dir), or the local
  directory -state-dir names. Options go before or after the subcommand.

Options:
`

// stateSubHelp is each state subcommand's help.
var stateSubHelp = map[string]string{
	"list": `Usage: hyperagent state list [options]

  Prints every migration address the state records.
`,
	"show": `Usage: hyperagent state show [options] ADDR

  Prints one record as JSON (state holds no secrets).
`,
	"rm": `Usage: hyperagent state rm [options] ADDR...

  Forgets records, so hyperagent no longer manages what they name; it
  touches nothing outside the state.
`,
	"mv": `Usage: hyperagent state mv [options] SRC DST

  Moves a record to another address (a migration block renamed); refused
  when DST is in the state. The artifacts keep the owner records they were
  made with (see docs/state.md).
`,
	"pull": `Usage: hyperagent state pull [options]

  Prints the whole state as JSON.
`,
	"push": `Usage: hyperagent state push [options] FILE

  Replaces the state with FILE (a state pull saved); refused when FILE is
  of another campaign (lineage) or older (serial) than the stored state,
  unless -force. The serial goes on from the stored one's.
`,
	"restore": `Usage: hyperagent state restore [options]

  Puts back the state as it was before its last write (kept as
  state.json.backup at every write; the local backend only); the state it
  replaces becomes the backup.
`,
}

// stateOptions are the options every state subcommand takes.
type stateOptions struct {
	stateDir string
	force    bool
	cf       configFlags
	lf       lockFlags
}

func (o *stateOptions) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&o.stateDir, "state-dir", "", "a local state directory (default: where the configuration keeps its state)")
	fs.BoolVar(&o.force, "force", false, "push: replace a state of another campaign, or a newer one")
	o.cf.register(fs)
	o.lf.register(fs, false)
	return fs
}

// runState is `state [options] SUBCOMMAND ...`: options before the
// subcommand, as in `terraform state -state=… list`. `state SUBCOMMAND`
// runs the subcommand's own command (stateSubcommand).
func runState(ctx context.Context, e *env, args []string) int {
	var o stateOptions
	fs := o.flags("state")
	if code, done := parseFlags(fs, e, stateHelp, args); done {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(e.stderr, "Error: state takes a subcommand: list, show, rm, mv, pull, push or restore (see hyperagent state -help)")
		return exitError
	}
	sub := fs.Arg(0)
	help, ok := stateSubHelp[sub]
	if !ok {
		fmt.Fprintf(e.stderr, "Error: unknown state subcommand %q (list, show, rm, mv, pull, push, restore)\n", sub)
		if near := reconcile.Closest(sub, slices.Sorted(maps.Keys(stateSubHelp))); len(near) > 0 {
			fmt.Fprintf(e.stderr, "\nDid you mean state %s?\n", strings.Join(near, " or state "))
		}
		return exitError
	}
	// The options may go on after the subcommand.
	if code, done := parseFlags(fs, e, help, fs.Args()[1:]); done {
		return code
	}
	return runStateSub(ctx, e, sub, fs.Args(), o)
}

// stateSubcommand is `state SUB [options] ARGS`.
func stateSubcommand(sub string) func(ctx context.Context, e *env, args []string) int {
	return func(ctx context.Context, e *env, args []string) int {
		var o stateOptions
		fs := o.flags("state " + sub)
		if code, done := parseFlags(fs, e, stateSubHelp[sub], args); done {
			return code
		}
		return runStateSub(ctx, e, sub, fs.Args(), o)
	}
}

func runStateSub(ctx context.Context, e *env, sub string, rest []string, o stateOptions) int {
	want := map[string]int{"list": 0, "show": 1, "mv": 2, "pull": 0, "push": 1, "restore": 0}
	switch n := want[sub]; {
	case sub == "rm":
		if len(rest) == 0 {
			fmt.Fprintln(e.stderr, "Error: state rm takes one or more addresses")
			return exitError
		}
	case len(rest) != n:
		fmt.Fprintf(e.stderr, "Error: state %s takes %s\n", sub, map[string]string{
			"list": "no arguments", "show": "one address", "mv": "two addresses (SRC DST)",
			"pull": "no arguments", "push": "one file", "restore": "no arguments"}[sub])
		return exitError
	}
	ref, ok := stateFor(e, o.stateDir, o.cf)
	if !ok {
		return exitError
	}
	lf := o.lf
	var err error
	switch sub {
	case "list":
		err = stateList(e, ref)
	case "show":
		err = stateShow(e, ref, rest[0])
	case "pull":
		err = statePull(e, ref)
	default:
		err = withStore(ref, func(store *reconcile.Store) error {
			switch sub {
			case "rm":
				return stateRm(ctx, e, store, rest, lf)
			case "mv":
				return stateMv(ctx, e, store, rest[0], rest[1], lf)
			case "push":
				return statePush(ctx, e, store, rest[0], o.force, lf)
			}
			return stateRestore(ctx, e, store, lf)
		})
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	return exitOK
}

// withStore opens the store for fn and closes it after.
func withStore(ref stateRef, fn func(*reconcile.Store) error) error {
	store, err := ref.open()
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(store)
}

func stateList(e *env, ref stateRef) error {
	st, err := readStateAt(ref)
	if err != nil {
		return err
	}
	for _, a := range st.Addresses() {
		fmt.Fprintln(e.stdout, a)
	}
	return nil
}

func stateShow(e *env, ref stateRef, addr string) error {
	a, err := addrs.ParseMigration(addr)
	if err != nil {
		return err
	}
	st, err := readStateAt(ref)
	if err != nil {
		return err
	}
	ms, ok := st.Migrations[a.String()]
	if !ok {
		return fmt.Errorf("%s is not in the state", a)
	}
	if writeJSON(e, ms) != exitOK {
		return fmt.Errorf("printing %s failed", a)
	}
	return nil
}

// statePull prints the state as the local backend's file holds it.
func statePull(e *env, ref stateRef) error {
	st, err := readStateAt(ref)
	if err != nil {
		return err
	}
	b, err := st.Encode()
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(b)
	return err
}

func parseAddrs(args []string) ([]addrs.Migration, error) {
	var list []addrs.Migration
	for _, s := range args {
		a, err := addrs.ParseMigration(s)
		if err != nil {
			return nil, err
		}
		list = append(list, a)
	}
	return list, nil
}

func stateRm(ctx context.Context, e *env, store *reconcile.Store, args []string, lf lockFlags) error {
	list, err := parseAddrs(args)
	if err != nil {
		return err
	}
	err = pass.Edit(ctx, store, "state rm", lf.timeout, func(st *reconcile.State) error {
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
		return err
	}
	for _, a := range list {
		fmt.Fprintf(e.stdout, "Removed %s from the state.\n", a)
	}
	return nil
}

// stateMv moves a record to the address a renamed migration block gives
// it, under the lock.
func stateMv(ctx context.Context, e *env, store *reconcile.Store, src, dst string, lf lockFlags) error {
	list, err := parseAddrs([]string{src, dst})
	if err != nil {
		return err
	}
	from, to := list[0].String(), list[1].String()
	err = pass.Edit(ctx, store, "state mv", lf.timeout, func(st *reconcile.State) error {
		return pass.Move(st, from, to, time.Now().UTC())
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Moved %s to %s.\n", from, to)
	return nil
}

// statePush replaces the state with a file's, under the lock.
func statePush(ctx context.Context, e *env, store *reconcile.Store, file string, force bool, lf lockFlags) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	pushed, err := reconcile.DecodeState(b)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	from := reconcile.VersionOf(pushed)
	var written *reconcile.State // Edit writes it, moving its serial on
	err = pass.Edit(ctx, store, "state push", lf.timeout, func(st *reconcile.State) error {
		written = st
		return pass.Push(st, pushed, force)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Pushed %s (%s) to the state in %s; it is at %s now.\n", file, from, store, reconcile.VersionOf(written))
	return nil
}

// stateRestore puts the backup back, under the lock.
func stateRestore(ctx context.Context, e *env, store *reconcile.Store, lf lockFlags) error {
	if _, err := store.LockWait(ctx, "state restore", lf.timeout, lf.waiting(e)); err != nil {
		return err
	}
	from, to, err := store.Restore()
	if uerr := store.Unlock(); err == nil {
		err = uerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Restored the state as it was at serial %d (now serial %d); the state it replaced is the backup.\n", from, to)
	return nil
}
