package main

import (
	"context"
	"flag"
	"fmt"
)

const completionHelp = `Usage: hyperagent completion bash|zsh

  Prints the script that makes the shell complete hyperagent's commands
  and flags, for packages: bash's goes in
  /usr/share/bash-completion/completions/hyperagent, zsh's in a directory
  of $fpath as _hyperagent (Debian: /usr/share/zsh/vendor-completions).
  Both have hyperagent complete its own command line, as
  hyperagent -install-autocomplete sets up in a user's ~/.bashrc and
  ~/.zshrc.
`

// completionScripts are the scripts, by shell. hyperagent answers with
// posener/complete's protocol: the line so far in COMP_LINE, the cursor
// in COMP_POINT, one candidate a line on stdout.
var completionScripts = map[string]string{
	"bash": `# bash completion for hyperagent (hyperagent completion bash): bash runs
# hyperagent with COMP_LINE and COMP_POINT set, and it prints the candidates.
complete -C hyperagent hyperagent
`,
	"zsh": `#compdef hyperagent
# zsh completion for hyperagent (hyperagent completion zsh): the command
# typed is run with COMP_LINE and COMP_POINT set, and prints the candidates.
local line="${(j: :)words[1,CURRENT]}"
local -a candidates
candidates=(${(f)"$(COMP_LINE="$line" COMP_POINT=${#line} ${words[1]} 2>/dev/null)"})
compadd -- "${candidates[@]}"
`,
}

func runCompletion(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("completion", flag.ContinueOnError)
	if code, done := parseFlags(fs, e, completionHelp, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "Error: completion takes the shell: bash or zsh")
		return exitError
	}
	script, ok := completionScripts[fs.Arg(0)]
	if !ok {
		fmt.Fprintf(e.stderr, "Error: no completion for %q: bash or zsh\n", fs.Arg(0))
		return exitError
	}
	fmt.Fprint(e.stdout, script)
	return exitOK
}
