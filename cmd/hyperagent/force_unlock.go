package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"strings"
)

const forceUnlockHelp = `Usage: hyperagent force-unlock [options] LOCK_ID

  Releases the state lock whose ID a "locked" error named. Use it only when
  the holder is stuck: a process that died released its lock already. It
  asks for "yes" on a terminal unless -force is given.

Options:
`

func runForceUnlock(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("force-unlock", flag.ContinueOnError)
	force := fs.Bool("force", false, "do not ask for confirmation")
	stateDir := fs.String("state-dir", "", "the state directory (default: the config's agent.state_dir)")
	var cf configFlags
	cf.register(fs)
	if code, done := parseFlags(fs, e, forceUnlockHelp, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "Error: force-unlock takes the lock ID")
		return exitError
	}
	ref, ok := stateFor(e, *stateDir, cf)
	if !ok {
		return exitError
	}
	store, err := ref.open()
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	defer store.Close()
	id := fs.Arg(0)
	info, ok, held, err := store.Holder(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	if !ok {
		fmt.Fprintf(e.stderr, "Error: the state in %s is not locked\n", store)
		return exitError
	}
	// A wrong ID is refused before anything is asked: it usually means
	// the lock changed hands since the error that named it.
	if info.ID != id {
		fmt.Fprintf(e.stderr, "Error: lock ID %q does not match the held lock (%s)\n", id, info)
		return exitError
	}
	if !held {
		// Its process died without unlocking; nobody holds the lock, so
		// removing the record cannot hurt anyone.
		if err := store.ForceUnlock(ctx, id); err != nil {
			fmt.Fprintf(e.stderr, "Error: %v\n", err)
			return exitError
		}
		fmt.Fprintf(e.stdout, "The lock record was stale (%s; that process no longer holds it) and was removed.\n", info)
		return exitOK
	}
	if !*force {
		if !e.stdinTTY {
			fmt.Fprintln(e.stderr, "Error: force-unlock needs confirmation: run it on a terminal, or pass -force")
			return exitError
		}
		fmt.Fprintf(e.stdout, "The lock is held: %s.\nBreaking it while that process still writes can lose its work.\n  Only 'yes' will be accepted.\n\n  Enter a value: ", info)
		line, _ := bufio.NewReader(e.stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			fmt.Fprintln(e.stderr, "\nforce-unlock cancelled.")
			return exitError
		}
	}
	if err := store.ForceUnlock(ctx, id); err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	fmt.Fprintln(e.stdout, "The state lock was released.")
	return exitOK
}
