package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/term"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/reconcile"
)

// Exit codes, as Terraform's.
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2 // with -detailed-exitcode: changes are pending
)

// env is everything a command may touch of the outside world. Commands
// write results to stdout through their view, diagnostics and logs to
// stderr, and never call os.Exit.
type env struct {
	stdin     io.Reader
	stdout    io.Writer
	stderr    io.Writer
	stdinTTY  bool
	stdoutTTY bool
	noColor   bool
	environ   []string
	log       hclog.Logger
	registry  *plugins.Registry
	// redact takes the loaded config's secrets out of everything written
	// to stdout and stderr, logs included: the process's one net.
	redact *reconcile.Redactor
}

func newProcessEnv() *env {
	return &env{
		stdin:     os.Stdin,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		stdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		environ:   os.Environ(),
		registry:  builtinRegistry(),
	}
}

// getenv looks a variable up in e.environ.
func (e *env) getenv(name string) string {
	for _, kv := range e.environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// color says whether human output may use colour and bold.
func (e *env) color() bool { return e.stdoutTTY && !e.noColor && e.getenv("NO_COLOR") == "" }

// command is one subcommand.
type command struct {
	synopsis string
	run      func(ctx context.Context, e *env, args []string) int
}

// run parses the global flags, sets up logging, and dispatches.
func run(ctx context.Context, args []string, e *env) int {
	fs := flag.NewFlagSet("hyperagent", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	chdir := fs.String("chdir", "", "switch to DIR before doing anything else")
	noColor := fs.Bool("no-color", false, "disable colour and bold in output")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() { usage(e.stderr) }
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitError
	}
	e.noColor = e.noColor || *noColor
	if e.redact == nil {
		e.redact = reconcile.NewRedactor(nil)
	}
	e.stdout, e.stderr = e.redact.Writer(e.stdout), e.redact.Writer(e.stderr)
	if e.log == nil {
		e.log = newLogger(e)
	}
	if *chdir != "" {
		if err := os.Chdir(*chdir); err != nil {
			fmt.Fprintf(e.stderr, "Error: -chdir: %v\n", err)
			return exitError
		}
	}
	rest := fs.Args()
	if *showVersion {
		rest = []string{"version"}
	}
	if len(rest) == 0 {
		usage(e.stderr)
		return exitError
	}
	name := rest[0]
	if name == "help" || name == "-h" || name == "--help" {
		if len(rest) > 1 && name == "help" {
			return help(ctx, e, rest[1])
		}
		usage(e.stdout)
		return exitOK
	}
	cmd, ok := commands()[name]
	if !ok {
		unknownCommand(e, name)
		return exitError
	}
	return cmd.run(ctx, e, rest[1:])
}

// help prints one command's usage on stdout, as "COMMAND -h" does on
// stderr.
func help(ctx context.Context, e *env, name string) int {
	cmd, ok := commands()[name]
	if !ok {
		unknownCommand(e, name)
		return exitError
	}
	he := *e
	he.stderr = e.stdout
	return cmd.run(ctx, &he, []string{"-h"})
}

// unknownCommand says so and names the closest commands, as git does.
func unknownCommand(e *env, name string) {
	fmt.Fprintf(e.stderr, "Error: unknown command %q\n", name)
	names := make([]string, 0, len(commands()))
	for n := range commands() {
		names = append(names, n)
	}
	if near := reconcile.Closest(name, names); len(near) > 0 {
		fmt.Fprintf(e.stderr, "\nDid you mean %s?\n", strings.Join(near, " or "))
	}
	fmt.Fprintln(e.stderr)
	usage(e.stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: hyperagent [-chdir=DIR] [-no-color] COMMAND [ARGS]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, cmds[n].synopsis)
	}
}

// newLogger logs to stderr at the level HYPERAGENT_LOG names (default:
// warn), as JSON when HYPERAGENT_LOG_JSON is set.
func newLogger(e *env) hclog.Logger {
	level := hclog.Warn
	if s := e.getenv("HYPERAGENT_LOG"); s != "" {
		level = hclog.LevelFromString(s)
		if level == hclog.NoLevel {
			level = hclog.Warn
		}
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "hyperagent",
		Level:      level,
		Output:     e.stderr,
		JSONFormat: e.getenv("HYPERAGENT_LOG_JSON") != "",
		Color:      hclog.ColorOff,
	})
}
