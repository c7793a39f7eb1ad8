//go:build !demo

package main

import (
	"context"
	"flag"
	"fmt"
)

// The demo embeds a vCenter simulator, which would double the binary, so
// only a build with -tags demo has it.

const demoSynopsis = "Run the whole pipeline against a built-in vCenter simulator (needs -tags demo)"

const demoHelp = `Usage: hyperagent demo [options]

  Runs the whole pipeline against a built-in vCenter simulator. This
  binary was built without it: run go run -tags demo ./cmd/hyperagent demo.
`

func runDemo(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	if code, done := parseFlags(fs, e, demoHelp, args); done {
		return code
	}
	fmt.Fprintln(e.stderr, "Error: this binary was built without the demo; run: go run -tags demo ./cmd/hyperagent demo")
	return exitError
}
