package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/rogpeppe/go-internal/diff"

	"github.com/hypersdk/hyperagent/plugins/fsutil"
	"github.com/hypersdk/hyperagent/schema"
)

// exitFmtCheck is what fmt -check returns when files need formatting, as
// Terraform does.
const exitFmtCheck = 3

const fmtHelp = `Usage: hyperagent fmt [options] [PATH...]

  Rewrites *.hcl files in the canonical style. PATH is a file or a
  directory (default: the current directory); "-" formats stdin to stdout.
  JSON files (*.hcl.json) are left alone.

Options:
`

type fmtOptions struct {
	list, write, diff, check, recursive bool
}

func runFmt(ctx context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("fmt", flag.ContinueOnError)
	var o fmtOptions
	fs.BoolVar(&o.list, "list", true, "list the files whose formatting changed")
	fs.BoolVar(&o.write, "write", true, "rewrite the files (false with -check)")
	fs.BoolVar(&o.diff, "diff", false, "print a unified diff of the changes")
	fs.BoolVar(&o.check, "check", false, "change nothing; exit 3 if any file needs formatting")
	fs.BoolVar(&o.recursive, "recursive", false, "also format subdirectories")
	if code, done := parseFlags(fs, e, fmtHelp, args); done {
		return code
	}
	if o.check {
		o.write = false
	}
	paths := fs.Args()
	if len(paths) == 0 {
		paths = []string{"."}
	}
	if len(paths) == 1 && paths[0] == "-" {
		return fmtStdin(e, o)
	}
	files, err := fmtTargets(paths, o.recursive)
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: %v\n", err)
		return exitError
	}
	var diags hcl.Diagnostics
	parsed := schema.Files{}
	changed := 0
	for _, name := range files {
		c, ds, err := fmtFile(e, name, o, parsed)
		if err != nil {
			fmt.Fprintf(e.stderr, "Error: %v\n", err)
			return exitError
		}
		diags = append(diags, ds...)
		if c {
			changed++
		}
	}
	if diags.HasErrors() {
		writeDiagnostics(e, parsed, diags)
		return exitError
	}
	if o.check && changed > 0 {
		return exitFmtCheck
	}
	return exitOK
}

// fmtTargets expands the paths into the files to format, sorted.
// Directories contribute their *.hcl files; hidden directories (state,
// .git) are never entered.
func fmtTargets(paths []string, recursive bool) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && (!recursive || strings.HasPrefix(d.Name(), ".")) {
					return filepath.SkipDir
				}
				return nil
			}
			if strings.HasSuffix(d.Name(), ".hcl") && !strings.HasPrefix(d.Name(), ".") && d.Type().IsRegular() {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// fmtFile formats one file and reports whether it changed.
func fmtFile(e *env, name string, o fmtOptions, parsed schema.Files) (bool, hcl.Diagnostics, error) {
	src, err := schema.ReadFile(name)
	if err != nil {
		return false, nil, err
	}
	out, diags := schema.Format(name, src)
	if diags.HasErrors() {
		parsed[name] = &hcl.File{Bytes: src}
		return false, diags, nil
	}
	if bytes.Equal(src, out) {
		return false, diags, nil
	}
	if o.list {
		fmt.Fprintln(e.stdout, name)
	}
	if o.diff {
		e.stdout.Write(diff.Diff("a/"+filepath.ToSlash(name), src, "b/"+filepath.ToSlash(name), out))
	}
	if o.write {
		fi, err := os.Stat(name)
		if err != nil {
			return true, diags, err
		}
		if err := fsutil.WriteFileAtomic(name, out, fi.Mode().Perm()); err != nil {
			return true, diags, err
		}
	}
	return true, diags, nil
}

func fmtStdin(e *env, o fmtOptions) int {
	src, err := io.ReadAll(e.stdin)
	if err != nil {
		fmt.Fprintf(e.stderr, "Error: reading stdin: %v\n", err)
		return exitError
	}
	out, diags := schema.Format("<stdin>", src)
	if diags.HasErrors() {
		writeDiagnostics(e, schema.Files{"<stdin>": {Bytes: src}}, diags)
		return exitError
	}
	switch {
	case o.diff:
		e.stdout.Write(diff.Diff("a/<stdin>", src, "b/<stdin>", out))
	case !o.check:
		e.stdout.Write(out)
	}
	if o.check && !bytes.Equal(src, out) {
		return exitFmtCheck
	}
	return exitOK
}
