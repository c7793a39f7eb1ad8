package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/cli"
	"github.com/hashicorp/go-hclog"
	"github.com/posener/complete"
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
	stderrTTY bool
	noColor   bool
	environ   []string
	log       hclog.Logger
	registry  *plugins.Registry
	// redact takes the loaded config's secrets out of everything written
	// to stdout and stderr, logs included: the process's one net.
	redact *reconcile.Redactor
	// describing is set while a command is asked for its help and flags
	// (describe): parseFlags records them here and the command returns.
	describing *usage
}

func newProcessEnv() *env {
	return &env{
		stdin:     os.Stdin,
		stdout:    os.Stdout,
		stderr:    os.Stderr,
		stdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
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

// color says whether what goes to stdout may use colour and bold: only
// on a terminal, and not with -no-color or NO_COLOR.
func (e *env) color() bool { return e.stdoutTTY && e.colorAllowed() }

// colorStderr is color for stderr (diagnostics), which may be a
// terminal when stdout is not, or the other way round.
func (e *env) colorStderr() bool { return e.stderrTTY && e.colorAllowed() }

func (e *env) colorAllowed() bool { return !e.noColor && e.getenv("NO_COLOR") == "" }

// completing says the shell asks for completions (posener/complete's
// protocol): the arguments are then the shell's, not a command line.
func (e *env) completing() bool { return e.getenv("COMP_LINE") != "" }

// run takes the global options, sets up logging, and hands the command
// line to hashicorp/cli, which finds the command (nested ones such as
// "state list" included), prints help for -h, -help and help COMMAND, and
// answers shell completion.
func run(ctx context.Context, args []string, e *env) int {
	g, rest, err := globalOptions(args)
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	e.noColor = e.noColor || g.noColor
	if e.redact == nil {
		e.redact = reconcile.NewRedactor(nil)
	}
	e.stdout, e.stderr = e.redact.Writer(e.stdout), e.redact.Writer(e.stderr)
	level, err := logLevel(e)
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	if e.log == nil {
		e.log = newLogger(e, level)
	}
	if g.chdir != "" {
		if err := os.Chdir(g.chdir); err != nil {
			fmt.Fprintf(e.stderr, "Error: -chdir: %v\n", err)
			return exitError
		}
	}
	rest = rewriteHelpAndVersion(rest)
	if len(rest) == 0 && !e.completing() {
		printUsage(e.stderr, commands())
		return exitError
	}
	c := newCLI(ctx, e, rest)
	if sub := c.Subcommand(); sub != "" && !e.completing() {
		if _, ok := c.Commands[sub]; !ok {
			unknownCommand(e, sub)
			return exitError
		}
	}
	code, err := c.Run()
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	return code
}

// newCLI is the hashicorp/cli runner of args, with every command, hidden
// ones included, bound to ctx and e.
func newCLI(ctx context.Context, e *env, args []string) *cli.CLI {
	all := map[string]cli.CommandFactory{}
	for name, cmd := range allCommands() {
		all[name] = func() (cli.Command, error) { return &cliCommand{name: name, cmd: cmd, ctx: ctx, e: e}, nil }
	}
	hidden := make([]string, 0, len(hiddenCommands()))
	for name := range hiddenCommands() {
		hidden = append(hidden, name)
	}
	return &cli.CLI{
		Name:                  "hyperagent",
		Args:                  args,
		Commands:              all,
		HiddenCommands:        hidden,
		HelpFunc:              func(map[string]cli.CommandFactory) string { return usageText(commands()) },
		HelpWriter:            e.stdout,
		ErrorWriter:           e.stderr,
		Autocomplete:          true,
		AutocompleteInstall:   "install-autocomplete",
		AutocompleteUninstall: "uninstall-autocomplete",
		AutocompleteGlobalFlags: complete.Flags{
			"-chdir": complete.PredictDirs("*"), "-no-color": complete.PredictNothing,
		},
	}
}

// globals are the options that come before the command.
type globals struct {
	chdir   string
	noColor bool
}

// globalOptions takes -chdir=DIR (or -chdir DIR) and -no-color off the
// front of args, with one or two dashes, as Terraform does: they apply to
// every command. What follows is the command line.
func globalOptions(args []string) (globals, []string, error) {
	var g globals
	for len(args) > 0 {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(args[0], "-"), "-"), "=")
		if !strings.HasPrefix(args[0], "-") {
			break
		}
		switch name {
		case "chdir":
			if !hasValue {
				if len(args) < 2 {
					return g, nil, fmt.Errorf("-chdir needs a directory: -chdir=DIR")
				}
				value, args = args[1], args[1:]
			}
			g.chdir = value
		case "no-color":
			if hasValue {
				return g, nil, fmt.Errorf("-no-color takes no value")
			}
			g.noColor = true
		default:
			return g, args, nil
		}
		args = args[1:]
	}
	return g, args, nil
}

// rewriteHelpAndVersion turns `help [COMMAND...]` into `[COMMAND...] -help`
// and a leading -v, -version or --version into the version command, so
// that both print what the command itself prints.
func rewriteHelpAndVersion(args []string) []string {
	if len(args) == 0 {
		return args
	}
	switch args[0] {
	case "help":
		return append(slices.Clone(args[1:]), "-help")
	case "-v", "-version", "--version":
		return append([]string{"version"}, args[1:]...)
	}
	return args
}

// unknownCommand says so and names the closest commands, as git does.
func unknownCommand(e *env, name string) {
	fmt.Fprintf(e.stderr, "Error: unknown command %q\n", name)
	if near := reconcile.Closest(name, topLevel(commands())); len(near) > 0 {
		fmt.Fprintf(e.stderr, "\nDid you mean %s?\n", strings.Join(near, " or "))
	}
	fmt.Fprintln(e.stderr)
	printUsage(e.stderr, commands())
}
