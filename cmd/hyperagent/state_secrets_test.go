package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/reconcile/pgstate/pgtest"
)

// runCLIEnv is runCLI with an environment.
func runCLIEnv(t *testing.T, environ []string, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, environ: environ,
		log: hclog.NewNullLogger(), registry: newFakeRegistry()}
	code := run(t.Context(), args, e)
	return cliResult{out.String(), errb.String(), code}
}

// TestStateCommandsNeedOnlyTheStatesVariables: with the state in
// PostgreSQL and its connection string from a variable, show and the
// state commands need that variable (or HYPERAGENT_PG_CONN_STR) and none
// of the others, a sensitive one included; without it they say which
// variable and the ways to give it. The connection string is never
// printed.
func TestStateCommandsNeedOnlyTheStatesVariables(t *testing.T) {
	cs := pgtest.ConnStr(t, os.Getenv)
	dir := fakeRepo(t, 0, twoMigrations)
	addHCL(t, dir, pgStateHCL(pgtest.Workspace(t, cs))+"variable \"token\" {\n  type      = string\n  sensitive = true\n}\n")
	t.Chdir(dir)
	check := func(r cliResult, code int, stdoutHas ...string) cliResult {
		t.Helper()
		r.want(t, code, stdoutHas...)
		if strings.Contains(r.stdout+r.stderr, cs) {
			t.Fatalf("the connection string was printed:\n%s%s", r.stdout, r.stderr)
		}
		return r
	}
	check(runCLIEnv(t, nil, "apply", "-auto-approve", "-var", "pg="+cs, "-var", "token=tok-1"), exitOK, "Apply complete: 2 migrated")

	r := check(runCLIEnv(t, nil, "state", "list"), exitError)
	stderr := strings.Join(strings.Fields(r.stderr), " ")
	for _, want := range []string{
		"The state's location needs a variable", "state.conn_str decides where the state is",
		`uses variable "pg", which is not set`, "-var 'pg=…' (or a -var-file, or HYPERAGENT_VAR_pg)",
		"or set the connection string itself in HYPERAGENT_PG_CONN_STR",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "token") {
		t.Errorf("stderr asks for the variable the state does not need:\n%s", r.stderr)
	}

	check(runCLIEnv(t, nil, "state", "list", "-var", "pg="+cs), exitOK, `migration.web["a"]`, `migration.web["b"]`)
	withEnv := []string{"HYPERAGENT_PG_CONN_STR=" + cs}
	check(runCLIEnv(t, withEnv, "show"), exitOK, "domain:    web-a")
	check(runCLIEnv(t, withEnv, "state", "show", `migration.web["b"]`), exitOK, `"name": "web-b"`)
	check(runCLIEnv(t, withEnv, "state", "rm", `migration.web["b"]`), exitOK, `Removed migration.web["b"] from the state.`)
	r = check(runCLIEnv(t, []string{"HYPERAGENT_VAR_pg=" + cs}, "state", "list"), exitOK, `migration.web["a"]`)
	if strings.Contains(r.stdout, `web["b"]`) {
		t.Errorf("state rm left the record:\n%s", r.stdout)
	}
}
