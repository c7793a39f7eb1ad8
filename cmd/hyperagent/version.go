package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise
// the module version from the build info is used.
var version = ""

func currentVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func runVersion(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	asJSON := fs.Bool("json", false, "print as JSON")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "Usage: hyperagent version [-json]")
		fmt.Fprintln(e.stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitError
	}
	if *asJSON {
		b, _ := json.MarshalIndent(map[string]string{
			"format_version": "1",
			"version":        currentVersion(),
			"go":             runtime.Version(),
			"platform":       runtime.GOOS + "_" + runtime.GOARCH,
		}, "", "  ")
		fmt.Fprintln(e.stdout, string(b))
		return exitOK
	}
	fmt.Fprintf(e.stdout, "hyperagent %s\non %s_%s, %s\n", currentVersion(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	return exitOK
}
