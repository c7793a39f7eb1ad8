package main

import (
	"context"
	"os"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/plugintest"
)

// fakesEnv makes this test binary run as the hyperagent CLI with the fake
// plugins (source/converter/target "fake", file-backed) registered next to
// the builtin ones. Tests that need the real process — signals, exit codes,
// the working directory — re-exec the test binary with it set, and scripts
// set it with `env` before `exec hyperagent`. It exists only in the test
// binary; the shipped one never registers fakes.
const fakesEnv = "HYPERAGENT_TEST_FAKES"

// init runs before TestMain, so the CLI's flags and signals are the
// process's own, as in the shipped binary.
func init() {
	if os.Getenv(fakesEnv) != "1" {
		return
	}
	e := newProcessEnv()
	e.registry = newFakeRegistry()
	os.Exit(run(context.Background(), os.Args[1:], e))
}

// newFakeRegistry is the builtin registry plus the fakes.
func newFakeRegistry() *plugins.Registry {
	r := builtinRegistry()
	for _, f := range plugintest.Factories() {
		r.Register(f)
	}
	return r
}
