package main

import (
	"context"
	"fmt"
)

func runShow(ctx context.Context, e *env, args []string) int {
	fmt.Fprintln(e.stderr, "Error: this command is not implemented yet")
	return exitError
}
