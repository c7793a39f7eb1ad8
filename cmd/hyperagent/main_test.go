package main

import (
	"context"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
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
			return nil
		},
	})
}
