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

const versionHelp = `Usage: hyperagent version [-json]

  Prints hyperagent's version, and the platform and Go release it was
  built for.
`

func runVersion(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print as JSON")
	if code, done := parseFlags(fs, e, versionHelp, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "Error: version takes no arguments\n")
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
