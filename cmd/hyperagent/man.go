package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
)

const manHelp = `Usage: hyperagent man DIR

  Writes the man pages, for packages: hyperagent.1, and
  hyperagent-COMMAND.1 for every command (hyperagent-state-list.1 for a
  nested one), made from the same help text and flags as COMMAND -help.
`

func runMan(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("man", flag.ContinueOnError)
	if code, done := parseFlags(fs, e, manHelp, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "Error: man takes the directory to write the pages into")
		return exitError
	}
	pages, err := manPages(ctx, commands())
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	dir := fs.Arg(0)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	for _, name := range slices.Sorted(maps.Keys(pages)) {
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, name), []byte(pages[name]), 0o644); err != nil {
			fmt.Fprintf(e.stderr, "Error: %v\n", err)
			return exitError
		}
	}
	fmt.Fprintf(e.stdout, "Wrote %d man pages to %s.\n", len(pages), dir)
	return exitOK
}

// manPages renders hyperagent.1 and one page per command of cmds, by
// file name.
func manPages(ctx context.Context, cmds map[string]command) (map[string]string, error) {
	pages := map[string]string{"hyperagent.1": mainManPage(cmds)}
	for name, cmd := range cmds {
		u, err := describe(ctx, name, cmd)
		if err != nil {
			return nil, err
		}
		pages[manName(name)+".1"] = commandManPage(name, cmd, u, cmds)
	}
	return pages, nil
}

// manName is a command's page name: hyperagent-state-list for
// "state list".
func manName(cmd string) string { return "hyperagent-" + strings.ReplaceAll(cmd, " ", "-") }

func commandManPage(name string, cmd command, u usage, cmds map[string]command) string {
	var r roff
	r.header(manName(name))
	r.section("NAME")
	r.line(manName(name) + " - " + cmd.synopsis)
	synopsis, body := splitUsage(u.text)
	r.section("SYNOPSIS")
	r.raw(".nf")
	for _, l := range synopsis {
		r.line(l)
	}
	r.raw(".fi")
	if len(body) > 0 {
		r.section("DESCRIPTION")
		r.paragraphs(body)
	}
	if hasFlags(u.flags) {
		r.section("OPTIONS")
		u.flags.VisitAll(func(f *flag.Flag) {
			typ, text := flag.UnquoteUsage(f)
			r.raw(".TP")
			r.raw(`\fB` + escape("-"+f.Name) + `\fR` + map[bool]string{true: "", false: ` \fI` + escape(typ) + `\fR`}[typ == ""])
			if d := f.DefValue; d != "" && d != "0" && d != "false" && d != "0s" {
				text += " (default: " + d + ")"
			}
			r.line(text)
		})
	}
	var subs []string
	for n := range cmds {
		if strings.HasPrefix(n, name+" ") {
			subs = append(subs, n)
		}
	}
	sort.Strings(subs)
	if len(subs) > 0 {
		r.section("COMMANDS")
		for _, n := range subs {
			r.raw(".TP")
			r.raw(`\fB` + escape(manName(n)) + `\fR(1)`)
			r.line(cmds[n].synopsis)
		}
	}
	r.section("SEE ALSO")
	r.raw(`\fBhyperagent\fR(1)`)
	return r.String()
}

func mainManPage(cmds map[string]command) string {
	var r roff
	r.header("hyperagent")
	r.section("NAME")
	r.line("hyperagent - make moving VMs from VMware vSphere to KVM declarative")
	r.section("SYNOPSIS")
	r.line("hyperagent [-chdir=DIR] [-no-color] COMMAND [ARGS]")
	r.section("DESCRIPTION")
	r.paragraphs([]string{
		"hyperagent reads a migration repo, HCL files that say which VMs move from vSphere to KVM and how, " +
			"and, as Terraform does, plans the steps left (plan) and runs them (apply): the vSphere export, " +
			"the conversion through a hyper2kvm watch directory, and the libvirt domain. " +
			"As a service (agent) it reconciles the repo continuously.",
		"Each command's own page, and hyperagent COMMAND -help, say what it takes.",
	})
	r.section("COMMANDS")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r.raw(".TP")
		r.raw(`\fB` + escape(manName(n)) + `\fR(1)`)
		r.line(cmds[n].synopsis)
	}
	r.section("GLOBAL OPTIONS")
	for _, o := range globalOptionDocs {
		r.raw(".TP")
		r.raw(`\fB` + escape(o[0]) + `\fR`)
		r.line(o[1])
	}
	r.section("ENVIRONMENT")
	for _, v := range [][2]string{
		{"HYPERAGENT_LOG", "the log level on stderr: one of " + strings.Join(logLevels, ", ") +
			" (default: warn; info for the agent); any other value is an error"},
		{"HYPERAGENT_LOG_JSON", "when set, log records are JSON"},
		{"HYPERAGENT_VAR_name", "the value of the configuration's variable name"},
		{"NO_COLOR", "when set and not empty, no colour or bold, as -no-color"},
	} {
		r.raw(".TP")
		r.raw(`\fB` + escape(v[0]) + `\fR`)
		r.line(v[1])
	}
	r.section("EXIT STATUS")
	r.line("0 success; 1 an error; 2 changes pending, with plan -detailed-exitcode; " +
		"3 files need formatting, with fmt -check; 130 interrupted.")
	return r.String()
}

// splitUsage cuts help text into its usage lines, "Usage: " taken off,
// and the paragraphs after them, up to an "Options:" line.
func splitUsage(text string) (synopsis, paragraphs []string) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	i := 0
	for ; i < len(lines) && strings.TrimSpace(lines[i]) != ""; i++ {
		synopsis = append(synopsis, strings.TrimSpace(strings.TrimPrefix(lines[i], "Usage:")))
	}
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			paragraphs = append(paragraphs, strings.Join(cur, "\n"))
		}
		cur = nil
	}
	for _, l := range lines[i:] {
		switch strings.TrimSpace(l) {
		case "Options:":
			flush()
			return synopsis, paragraphs
		case "":
			flush()
		default:
			cur = append(cur, l)
		}
	}
	flush()
	return synopsis, paragraphs
}
