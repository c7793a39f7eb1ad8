package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/hypersdk/hyperagent/reconcile/jsondoc"
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

// versionJSON is version -json (docs/schema/version.json).
type versionJSON struct {
	FormatVersion string `json:"format_version"`
	Version       string `json:"version"`
	Go            string `json:"go"`
	Platform      string `json:"platform"`
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
		return writeJSON(e, versionJSON{FormatVersion: jsondoc.FormatVersion, Version: currentVersion(),
			Go: runtime.Version(), Platform: runtime.GOOS + "_" + runtime.GOARCH})
	}
	fmt.Fprintf(e.stdout, "hyperagent %s\non %s_%s, %s\n", currentVersion(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	return exitOK
}
