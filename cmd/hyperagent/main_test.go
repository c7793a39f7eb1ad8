package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/hypersdk/hyperagent/docs"
)

// TestMain lets testscript run this test binary as the real `hyperagent`
// command inside scripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"hyperagent": func() {
			os.Exit(run(context.Background(), os.Args[1:], newProcessEnv()))
		},
	})
}

// TestScripts runs every testdata/script/*.txtar. UPDATE=1 rewrites the
// golden sections that cmp compares against.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		UpdateScripts:       os.Getenv("UPDATE") != "",
		Setup: func(env *testscript.Env) error {
			// Scripts must not see the developer's settings.
			env.Setenv("HYPERAGENT_LOG", "")
			env.Setenv("NO_COLOR", "1")
			// The example repos, for scripts that run on them.
			examples, err := filepath.Abs(filepath.Join("..", "..", "examples"))
			if err != nil {
				return err
			}
			env.Setenv("EXAMPLES", examples)
			// A libvirt domain name no other run uses, for scripts that
			// define domains on the shared qemu:///system.
			env.Setenv("E2E_DOMAIN", fmt.Sprintf("hyperagent-e2e-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6))
			// Such a script lists them in $WORK/undefine-at-exit, pass or
			// fail, so no run leaves domains behind.
			work := env.WorkDir
			env.Defer(func() { undefineListed(filepath.Join(work, "undefine-at-exit")) })
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"status":     cmdStatus,
			"vcsim":      cmdVcsim,
			"jsonschema": cmdJSONSchema,
		},
	})
}

// cmdStatus is `status N PROGRAM [ARGS...]`: it runs the program like exec
// (stdout and stderr can be checked afterwards) and requires exit code N,
// for the codes that mean something: 2 (changes pending), 3 (fmt -check).
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N program [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("status: %q is not an exit code", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("status: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// cmdJSONSchema is `jsonschema SCHEMA FILE`: FILE (stdout, stderr, or a
// file of the script's) must be valid against SCHEMA of docs/schema (a
// file, or "api.json#/$defs/status"); for ui.json, every line of it.
// With !, it must not be.
func cmdJSONSchema(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: jsonschema SCHEMA stdout|stderr|FILE")
	}
	data := ts.ReadFile(args[1]) // stdout and stderr are the last command's
	var err error
	if strings.HasPrefix(args[0], "ui.json") {
		var n int
		if n, err = docs.ValidateLines(args[0], []byte(data)); err == nil && n == 0 {
			err = fmt.Errorf("no lines")
		}
	} else {
		err = docs.Validate(args[0], []byte(data))
	}
	switch {
	case neg && err == nil:
		ts.Fatalf("%s is valid against %s", args[1], args[0])
	case !neg && err != nil:
		ts.Fatalf("%s: %v", args[1], err)
	}
}

// undefineListed undefines the qemu:///system domains named in file, if it
// exists. Errors are ignored: a domain may never have been defined.
func undefineListed(file string) {
	b, err := os.ReadFile(file)
	if err != nil {
		return
	}
	for _, name := range strings.Fields(string(b)) {
		_ = exec.Command("virsh", "-c", "qemu:///system", "undefine", "--nvram", name).Run()
	}
}
