package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hypersdk/hyperagent/reconcile"
)

// wave is a repo of four migrations over the file-backed fakes: db, and
// web["a"|"b"|"c"] after it. The VM paths come from var.prefix.
const wave = `
variable "prefix" {
  default = "web"
}
migration "db" {
  source    = source.fake.src
  converter = converter.fake.conv
  target    = target.fake.kvm
  vm        = "/DC1/vm/db"
  export { dir = "EXPORTS" }
}
migration "web" {
  for_each   = toset(["a", "b", "c"])
  source     = source.fake.src
  converter  = converter.fake.conv
  target     = target.fake.kvm
  vm         = "/DC1/vm/${var.prefix}-${each.key}"
  export { dir = "EXPORTS" }
  depends_on = [migration.db]
}
`

// setVMs writes the fake source's VM overrides (<fakes>/src-vms.json).
func setVMs(t *testing.T, dir, vms string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "fakes"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fakes", "src-vms.json"), []byte(vms), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (r cliResult) lacks(t *testing.T, s ...string) {
	t.Helper()
	for _, x := range s {
		if strings.Contains(r.stdout, x) {
			t.Errorf("stdout has %q:\n%s", x, r.stdout)
		}
	}
}

func (r cliResult) stderrHas(t *testing.T, s ...string) {
	t.Helper()
	for _, x := range s {
		if !strings.Contains(r.stderr, x) {
			t.Errorf("stderr lacks %q:\n%s", x, r.stderr)
		}
	}
}

func TestPlanSelectionAndVariables(t *testing.T) {
	dir := fakeRepo(t, 0, wave)
	ctx := context.Background()
	varFile := filepath.Join(t.TempDir(), "vars.hcl")
	if err := os.WriteFile(varFile, []byte(`prefix = "file"`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		has, lacks []string
	}{
		{"all", nil,
			[]string{"+ migration.db", `+ migration.web["c"]`, "Plan: 4 to migrate, 0 to replace, 0 to remove."}, nil},
		{"target takes dependencies", []string{"-target", `migration.web["a"]`},
			[]string{"+ migration.db", `+ migration.web["a"]`, "Plan: 2 to migrate"}, []string{`web["b"]`, `web["c"]`}},
		{"targets repeat", []string{"-target", `migration.web["a"]`, "-target=migration.web[\"b\"]"},
			[]string{`+ migration.web["b"]`, "Plan: 3 to migrate"}, []string{`web["c"]`}},
		{"exclude an instance", []string{"-exclude", `migration.web["c"]`},
			[]string{`+ migration.web["b"]`, "Plan: 3 to migrate"}, []string{`web["c"]`}},
		{"exclude a block", []string{"-exclude", "migration.web"},
			[]string{"+ migration.db", "Plan: 1 to migrate"}, []string{"migration.web"}},
		{"default variable", nil, []string{"/DC1/vm/web-a into"}, nil},
		{"-var", []string{"-var", "prefix=app"}, []string{"/DC1/vm/app-a into"}, []string{"/DC1/vm/web-a"}},
		{"-var-file", []string{"-var-file", varFile}, []string{"/DC1/vm/file-a into"}, []string{"/DC1/vm/web-a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"plan"}, tc.args...), dir)
			r := runCLI(t, ctx, "", false, args...)
			r.want(t, exitOK, tc.has...)
			r.lacks(t, tc.lacks...)
		})
	}
	runCLI(t, ctx, "", false, "plan", "-target", "migration.nope", dir).want(t, exitError)
	runCLI(t, ctx, "", false, "plan", "-target", "not an address", dir).want(t, exitError)
}

func TestPlanOutAndExitCodes(t *testing.T) {
	dir := fakeRepo(t, 0, wave)
	ctx := context.Background()
	out := t.TempDir()
	// An existing, world-readable file is replaced by a 0600 plan.
	if err := os.WriteFile(filepath.Join(out, "b.plan"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-out=" + filepath.Join(out, "a.plan")},
		{"--out", filepath.Join(out, "b.plan")},
	} {
		r := runCLI(t, ctx, "", false, append(append([]string{"plan"}, args...), dir)...)
		r.want(t, exitOK, "Saved the plan to")
	}
	var plans []*reconcile.Plan
	for _, f := range []string{"a.plan", "b.plan"} {
		fi, err := os.Stat(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(filepath.Join(out, f))
		p, err := reconcile.DecodePlan(b)
		if err != nil {
			t.Fatal(err)
		}
		plans = append(plans, p)
	}
	if plans[0].Summary != plans[1].Summary || plans[0].Summary.Migrate != 4 {
		t.Errorf("saved summaries %+v, %+v", plans[0].Summary, plans[1].Summary)
	}
	// The human view of a saved plan and of a fresh one are the same text,
	// but for artifact names: against no state yet, each plan picks the
	// campaign lineage they are bound to.
	fresh := runCLI(t, ctx, "", false, "plan", dir)
	shown := runCLI(t, ctx, "", false, "show", filepath.Join(out, "a.plan"))
	stems := regexp.MustCompile(`-[0-9a-f]{12}\b`)
	if stems.ReplaceAllString(fresh.stdout, "-HASH") != stems.ReplaceAllString(shown.stdout, "-HASH") {
		t.Errorf("show FILE differs from plan:\n%s\n---\n%s", shown.stdout, fresh.stdout)
	}
	checkSchema(t, "plan.json", runCLI(t, ctx, "", false, "show", "-json", filepath.Join(out, "a.plan")).stdout)

	runCLI(t, ctx, "", false, "plan", "-detailed-exitcode", dir).want(t, exitChanges)
	r := runCLI(t, ctx, "", false, "plan", "-detailed-exitcode", "-json", dir)
	r.want(t, exitChanges, `"changes":{"operation":"plan","migrate":4,`)
	uiLines(t, r.stdout)
	runCLI(t, ctx, "", false, "apply", "-auto-approve", dir).want(t, exitOK, "Apply complete: 4 migrated")
	runCLI(t, ctx, "", false, "plan", "-detailed-exitcode", dir).want(t, exitOK, "No changes.")
	setVMs(t, dir, `{"/DC1/vm/web-b": {"missing": true, "fingerprint": "v1"}}`)
	runCLI(t, ctx, "", false, "plan", "-detailed-exitcode", "-replace", `migration.web["b"]`, dir).want(t, exitError)
	if err := os.WriteFile(filepath.Join(dir, "broken.hcl"), []byte("migration {"), 0o644); err != nil {
		t.Fatal(err)
	}
	runCLI(t, ctx, "", false, "plan", "-detailed-exitcode", dir).want(t, exitError)
}

func TestReplaceAndRefresh(t *testing.T) {
	dir := fakeRepo(t, 0, wave)
	ctx := context.Background()
	runCLI(t, ctx, "", false, "apply", "-auto-approve", dir).want(t, exitOK, "Apply complete: 4 migrated")

	r := runCLI(t, ctx, "", false, "plan", "-replace", `migration.web["a"]`, "-replace", `migration.web["b"]`, dir)
	r.want(t, exitOK, `-/+ migration.web["a"]`, `-/+ migration.web["b"]`, "replacement requested with -replace",
		"Plan: 0 to migrate, 2 to replace, 0 to remove.")
	r.lacks(t, `migration.web["c"]`)
	runCLI(t, ctx, "", false, "plan", "-replace", "migration.web", dir).want(t, exitOK, "Plan: 0 to migrate, 3 to replace")

	// The VM changes: a refreshing plan sees it, a plan from state alone
	// does not.
	setVMs(t, dir, `{"/DC1/vm/web-c": {"fingerprint": "v2"}}`)
	runCLI(t, ctx, "", false, "plan", dir).want(t, exitOK, `-/+ migration.web["c"]`, "fingerprint v1 → v2")
	stale := filepath.Join(t.TempDir(), "stale.plan")
	runCLI(t, ctx, "", false, "plan", "-refresh=false", "-out", stale, dir).want(t, exitOK)
	runCLI(t, ctx, "", false, "show", "-json", stale).want(t, exitOK, `"refresh": false`)
	runCLI(t, ctx, "", false, "plan", "-refresh=false", dir).want(t, exitOK, "No changes.")
	// -replace through apply redoes the export.
	runCLI(t, ctx, "", false, "apply", "-auto-approve", "-replace", `migration.web["a"]`, "-target", `migration.web["a"]`, dir).
		want(t, exitOK, `migration.web["a"]: export done`, "Apply complete: 1 migrated")
}

// moved after `plan -out`, makes `apply FILE` refuse and say which.
// `-`: its export files are pruned and its record forgotten; the source
// VM and its domain are kept. prevent_destroy refuses it.
// (the fake's token) but no output, log line, saved plan or state file.
// TestStateDirFromConfig: state commands find agent.state_dir through the
// config in the working directory, and refuse to guess when the variable
// it uses is not set, naming it.
func TestStateDirFromConfig(t *testing.T) {
	dir := fakeRepo(t, 0, twoMigrations+`
variable "where" {}
agent {
  state_dir = var.where
}
`)
	ctx := context.Background()
	runCLI(t, ctx, "", false, "apply", "-auto-approve", "-var", "where=custom-state", dir).want(t, exitOK, "2 migrated")
	t.Chdir(dir)
	for _, args := range [][]string{{"state", "list"}, {"show"}, {"force-unlock", "-force", "x"}} {
		r := runCLI(t, ctx, "", false, args...)
		r.want(t, exitError)
		r.stderrHas(t, "The state's location needs a variable", "HYPERAGENT_VAR_where", "depends on variables that are not set")
	}
	runCLI(t, ctx, "", false, "state", "-var", "where=custom-state", "list").want(t, exitOK, `migration.web["b"]`)
	runCLI(t, ctx, "", false, "state", "-state-dir", "custom-state", "list").want(t, exitOK, `migration.web["a"]`)
	// With no config at all, the default directory is used.
	empty := t.TempDir()
	t.Chdir(empty)
	runCLI(t, ctx, "", false, "state", "list").want(t, exitOK)
	runCLI(t, ctx, "", false, "show").want(t, exitOK, "The state is empty")
	runCLI(t, ctx, "", false, "state", "show", "migration.web").want(t, exitError)
	if _, err := os.Stat(filepath.Join(empty, ".hyperagent")); !os.IsNotExist(err) {
		t.Errorf("reading the state created its directory: %v", err)
	}
}

// TestStateRestore: state restore puts back the state before the last
// write; the command names the serials.
func TestStateRestore(t *testing.T) {
	dir := fakeRepo(t, 0, twoMigrations)
	ctx := context.Background()
	sd := filepath.Join(dir, ".hyperagent")
	runCLI(t, ctx, "", false, "apply", "-auto-approve", dir).want(t, exitOK)
	runCLI(t, ctx, "", false, "state", "-state-dir", sd, "rm", `migration.web["b"]`).want(t, exitOK)
	runCLI(t, ctx, "", false, "state", "-state-dir", sd, "restore").want(t, exitOK, "Restored the state as it was at serial")
	runCLI(t, ctx, "", false, "state", "-state-dir", sd, "list").want(t, exitOK, `migration.web["b"]`)
}

// TestTargetNamingNothing: -target, -exclude or -replace naming no
// migration is an error that suggests the closest; targeting in effect is
// said.
func TestTargetNamingNothing(t *testing.T) {
	dir := fakeRepo(t, 0, twoMigrations)
	ctx := context.Background()
	r := runCLI(t, ctx, "", false, "plan", "-target", `migration.wbe["a"]`, dir)
	r.want(t, exitError)
	r.stderrHas(t, `-target=migration.wbe["a"] names no migration; did you mean migration.web["a"]`)
	r = runCLI(t, ctx, "", false, "apply", "-auto-approve", "-replace", "migration.nope", dir)
	r.want(t, exitError)
	r.stderrHas(t, "-replace=migration.nope names no migration")
	r = runCLI(t, ctx, "", false, "plan", "-target", `migration.web["a"]`, dir)
	r.want(t, exitOK, `+ migration.web["a"]`)
	r.stderrHas(t, "Warning: Targeting is in effect")
}
