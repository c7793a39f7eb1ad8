package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/hypersdk/hyperagent/reconcile/jsondoc"
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

// versionJSON is version -json (docs/schema/version.json).
type versionJSON struct {
	FormatVersion string `json:"format_version"`
	Version       string `json:"version"`
	Commit        string `json:"commit"` // "" when unknown
	Go            string `json:"go"`
	Platform      string `json:"platform"`
}

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
		return writeJSON(e, versionJSON{FormatVersion: jsondoc.FormatVersion, Version: currentVersion(),
			Commit: currentCommit(), Go: runtime.Version(), Platform: runtime.GOOS + "_" + runtime.GOARCH})
	}
	fmt.Fprintf(e.stdout, "hyperagent %s\n", currentVersion())
	if c := currentCommit(); c != "" {
		fmt.Fprintf(e.stdout, "commit %s\n", c)
	}
	fmt.Fprintf(e.stdout, "on %s_%s, %s\n", runtime.GOOS, runtime.GOARCH, runtime.Version())
	return exitOK
}
