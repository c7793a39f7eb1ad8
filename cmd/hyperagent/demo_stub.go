//go:build !demo

package main

import (
	"context"
	"fmt"
)

// The demo embeds a vCenter simulator, which would double the binary, so
// only a build with -tags demo has it.

const demoSynopsis = "Run the whole pipeline against a built-in vCenter simulator (needs -tags demo)"

func runDemo(ctx context.Context, e *env, args []string) int {
	fmt.Fprintln(e.stderr, "Error: this binary was built without the demo; run: go run -tags demo ./cmd/hyperagent demo")
	return exitError
}
