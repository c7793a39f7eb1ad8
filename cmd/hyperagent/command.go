package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/hashicorp/cli"
	"github.com/hashicorp/go-hclog"
	"github.com/posener/complete"

	"github.com/hypersdk/hyperagent/reconcile"
)

// cliCommand is a command as hashicorp/cli runs it, bound to the
// process's context and env.
type cliCommand struct {
	name string
	cmd  command
	ctx  context.Context
	e    *env
}

var (
	_ cli.Command             = (*cliCommand)(nil)
	_ cli.CommandAutocomplete = (*cliCommand)(nil)
)

func (c *cliCommand) Synopsis() string { return c.cmd.synopsis }

func (c *cliCommand) Run(args []string) int { return c.cmd.run(c.ctx, c.e, args) }

// Help is the command's help text followed by its options, as its run
// declares them.
func (c *cliCommand) Help() string {
	u, err := describe(c.ctx, c.name, c.cmd)
	if err != nil {
		return "Error: " + err.Error()
	}
	return u.help()
}

// AutocompleteFlags completes the command's own flags; those whose value
// is a path complete files.
func (c *cliCommand) AutocompleteFlags() complete.Flags {
	u, err := describe(c.ctx, c.name, c.cmd)
	if err != nil {
		return nil
	}
	out := complete.Flags{}
	u.flags.VisitAll(func(f *flag.Flag) {
		switch {
		case isBoolFlag(f):
			out["-"+f.Name] = complete.PredictNothing
		case pathFlags[f.Name]:
			out["-"+f.Name] = complete.PredictFiles("*")
		default:
			out["-"+f.Name] = complete.PredictAnything
		}
	})
	return out
}

// AutocompleteArgs completes files for a command whose usage line takes a
// directory, file or path, and nothing otherwise.
func (c *cliCommand) AutocompleteArgs() complete.Predictor {
	u, err := describe(c.ctx, c.name, c.cmd)
	if err != nil {
		return complete.PredictNothing
	}
	line, _, _ := strings.Cut(u.text, "\n")
	for _, w := range []string{"DIR", "FILE", "PATH"} {
		if strings.Contains(line, w) {
			return complete.PredictFiles("*")
		}
	}
	return complete.PredictNothing
}

// pathFlags are the flags whose value names a file or directory.
var pathFlags = map[string]bool{
	"out": true, "var-file": true, "state-dir": true, "config": true, "dir": true, "token-file": true,
	"workflow-dir": true, "input-root": true, "output-root": true,
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// usage is what a command hands parseFlags: its help text and its flags.
type usage struct {
	text  string
	flags *flag.FlagSet
}

// help is the help text, then the options with their defaults.
func (u usage) help() string {
	text := strings.TrimRight(u.text, " \n")
	text = strings.TrimRight(strings.TrimSuffix(text, "Options:"), " \n")
	var b strings.Builder
	b.WriteString(text + "\n")
	if u.flags != nil && hasFlags(u.flags) {
		b.WriteString("\nOptions:\n\n")
		out := u.flags.Output()
		u.flags.SetOutput(&b)
		u.flags.PrintDefaults()
		u.flags.SetOutput(out)
	}
	return b.String()
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// describe asks cmd for its help text and flags: it runs cmd in an env in
// which parseFlags, the first thing every command calls, records them and
// has the command return before it does anything.
func describe(ctx context.Context, name string, cmd command) (usage, error) {
	var u usage
	e := &env{
		stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
		log: hclog.NewNullLogger(), redact: reconcile.NewRedactor(nil), describing: &u,
	}
	cmd.run(ctx, e, nil)
	if u.flags == nil {
		return u, fmt.Errorf("command %q did not declare its flags (its run must call parseFlags first)", name)
	}
	return u, nil
}

// parseFlags parses a command's arguments. Every command calls it before
// anything else, with its help text; done reports -h, an error, or that
// the command is only being described (describe). It adds -no-color,
// which every command takes.
func parseFlags(fs *flag.FlagSet, e *env, help string, args []string) (code int, done bool) {
	if fs.Lookup("no-color") == nil {
		fs.BoolVar(&e.noColor, "no-color", e.noColor, "no colour or bold in the output (also: a non-empty NO_COLOR)")
	}
	u := usage{text: help, flags: fs}
	if e.describing != nil {
		*e.describing = u
		return exitOK, true
	}
	fs.SetOutput(e.stderr)
	fs.Usage = func() { fmt.Fprint(e.stderr, u.help()) }
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK, true
		}
		return exitError, true
	}
	return 0, false
}

// globalOptionDocs are the options before the command, for the usage
// text and hyperagent(1).
var globalOptionDocs = [][2]string{
	{"-chdir=DIR", "switch to DIR before doing anything else"},
	{"-no-color", "no colour or bold in the output (every command takes it too)"},
	{"-version", "print the version, as the version command"},
	{"-help", "print this; COMMAND -help, or help COMMAND, prints a command's"},
	{"-install-autocomplete", "set up completion in ~/.bashrc and ~/.zshrc (-uninstall-autocomplete undoes it)"},
}

// usageText lists the top-level commands of cmds and the global options.
func usageText(cmds map[string]command) string {
	var b strings.Builder
	b.WriteString("Usage: hyperagent [-chdir=DIR] [-no-color] COMMAND [ARGS]\n\nCommands:\n")
	for _, n := range topLevel(cmds) {
		fmt.Fprintf(&b, "  %-14s %s\n", n, cmds[n].synopsis)
	}
	b.WriteString("\nGlobal options (before the command):\n")
	for _, o := range globalOptionDocs {
		fmt.Fprintf(&b, "  %-22s %s\n", o[0], o[1])
	}
	return b.String()
}

func printUsage(w io.Writer, cmds map[string]command) { fmt.Fprint(w, usageText(cmds)) }

// topLevel is the sorted names of cmds that are not nested.
func topLevel(cmds map[string]command) []string {
	var names []string
	for n := range cmds {
		if !strings.Contains(n, " ") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
