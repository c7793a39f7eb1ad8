package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version and commit are set at build time (build/deb.sh):
//
//	go build -ldflags "-X main.version=1.2.3 -X main.commit=$(git rev-parse HEAD)"
//
// Unset, the version is the module's from the build info, and the commit
// the VCS revision Go stamped, if any.
var (
	version = ""
	commit  = ""
)

// currentCommit is the source revision the binary was built from, or "".
func currentCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}

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
			"commit":         currentCommit(),
			"go":             runtime.Version(),
			"platform":       runtime.GOOS + "_" + runtime.GOARCH,
		}, "", "  ")
		fmt.Fprintln(e.stdout, string(b))
		return exitOK
	}
	fmt.Fprintf(e.stdout, "hyperagent %s\n", currentVersion())
	if c := currentCommit(); c != "" {
		fmt.Fprintf(e.stdout, "commit %s\n", c)
	}
	fmt.Fprintf(e.stdout, "on %s_%s, %s\n", runtime.GOOS, runtime.GOARCH, runtime.Version())
	return exitOK
}
