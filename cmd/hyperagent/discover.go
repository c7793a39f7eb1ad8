package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/schema"
)

const discoverHelp = `Usage: hyperagent discover [options] [DIR]

  Lists the VMs of a source of the repo in DIR (default: the current
  directory), with their facts and pre-flight findings, and writes
  migration blocks for them: one for_each map per folder, or per -match
  pattern when given, each key naming the migration instance and its
  libvirt domain. VMs an existing migration names already are skipped.
  The blocks use the repo's converter and target blocks; name them when
  the repo declares several.

  The source's settings must be known (its password: -var, -var-file or
  HYPERAGENT_VAR_<name>); other variables may be left unset. The source
  is read in a number of round trips that does not grow with the VMs.

  Without -out the blocks go to stdout and the listing to stderr; with
  -out the listing goes to stdout and the file is written atomically,
  never over an existing file unless -force.

Options:
`

// discoverFlags are discover's options.
type discoverFlags struct {
	source, converter, target string
	folder                    string
	match                     []string
	out                       string
	force                     bool
	exportDir                 string
	powerOff                  bool
	cf                        configFlags
}

func runDiscover(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("discover", flag.ContinueOnError)
	var df discoverFlags
	fs.StringVar(&df.source, "source", "", "the source to list, as source.TYPE.NAME (needed when the repo declares several)")
	fs.StringVar(&df.converter, "converter", "", "the converter the new migrations use, as converter.TYPE.NAME (needed when several)")
	fs.StringVar(&df.target, "target", "", "the target the new migrations use, as target.TYPE.NAME (needed when several)")
	fs.StringVar(&df.folder, "folder", "", "list only VMs under this folder: an inventory path (/DC1/vm/prod, or prod under the datacenter), or a directory of a files source")
	fs.Var(stringsFlag(&df.match), "match", "list only VMs whose name matches this glob (repeatable: one block per pattern)")
	fs.StringVar(&df.out, "out", "", "write the blocks to FILE instead of stdout")
	fs.BoolVar(&df.force, "force", false, "with -out, replace an existing file")
	fs.StringVar(&df.exportDir, "export-dir", "", "the export block's dir (default: the one dir the repo's migrations export to)")
	fs.BoolVar(&df.powerOff, "power-off", false, "write power_off = true: the export powers each VM off (the findings assume so)")
	df.cf.register(fs)
	if code, done := parseFlags(fs, e, discoverHelp, args); done {
		return code
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(e.stderr, "Error: discover takes at most one directory")
		return exitError
	}
	if err := plugins.CheckMatch(df.match); err != nil {
		fmt.Fprintf(e.stderr, "Error: -match: %v\n", err)
		return exitError
	}
	dir := "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	if df.out != "" && !df.force {
		// Checked before the source is contacted, and again before writing.
		if err := refuseExisting(df.out); err != nil {
			fmt.Fprintf(e.stderr, "Error: %v\n", err)
			return exitError
		}
	}
	d, ok := openDiscovery(ctx, e, dir, df)
	if !ok {
		return exitError
	}
	res, err := d.run(ctx, e)
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	return writeDiscovery(e, d, res, df)
}

// writeDiscovery prints the listing and writes the blocks where asked.
func writeDiscovery(e *env, d *discovery, res *discoverResult, df discoverFlags) int {
	listing, blocks := e.stdout, e.stdout
	if df.out == "" {
		listing = e.stderr
	}
	renderDiscovery(listing, d, res)
	if len(res.groups) == 0 {
		fmt.Fprintln(listing, "\nNo new VMs: nothing to write.")
		return exitOK
	}
	src, err := res.hcl(d)
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	if df.out == "" {
		if _, err := blocks.Write(src); err != nil {
			fmt.Fprintf(e.stderr, "Error: %v\n", err)
			return exitError
		}
		return exitOK
	}
	if !df.force {
		if err := refuseExisting(df.out); err != nil {
			fmt.Fprintf(e.stderr, "Error: %v\n", err)
			return exitError
		}
	}
	if err := fsutil.WriteFileAtomic(df.out, src, 0o644); err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	fmt.Fprintf(listing, "\nWrote %d migration block(s) for %d VM(s) to %s. Review it, then run hyperagent validate and hyperagent plan.\n",
		len(res.groups), res.count(), df.out)
	return exitOK
}

// refuseExisting says why path must not be written without -force.
func refuseExisting(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return fmt.Errorf("%s exists; discover never replaces a file unless told to (-force)", path)
	case !errors.Is(err, os.ErrNotExist):
		return err
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return fmt.Errorf("-out %s: its directory does not exist", path)
	}
	return nil
}

// discoverSynopsis is discover's line in the command table.
const discoverSynopsis = "List a source's VMs and write migration blocks for them"

// closeQuietly closes what holds connections, logging a failure.
func closeQuietly(e *env, what string, p any) {
	if c, ok := p.(io.Closer); ok {
		if err := c.Close(); err != nil {
			e.log.Warn("closing", "plugin", what, "error", err)
		}
	}
}

// loadForDiscovery loads the repo without requiring variable values, as
// validate does (discover, graph), and writes its diagnostics.
func loadForDiscovery(e *env, dir string, cf configFlags) (*schema.Config, schema.Files, bool) {
	o := cf.options(e, dir)
	o.UnsetUnknown = true
	cfg, files, diags := schema.Load(o)
	writeDiagnostics(e, files, diags)
	return cfg, files, !diags.HasErrors()
}
