package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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
	r := runCLI(t, ctx, "", false, "plan", "-target", "migration.nope", dir)
	r.want(t, exitOK, "No changes.")
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
	// The human view of a saved plan and of a fresh one are the same text.
	fresh := runCLI(t, ctx, "", false, "plan", dir)
	shown := runCLI(t, ctx, "", false, "show", filepath.Join(out, "a.plan"))
	if fresh.stdout != shown.stdout {
		t.Errorf("show FILE differs from plan:\n%s\n---\n%s", shown.stdout, fresh.stdout)
	}
	var j map[string]any
	if err := json.Unmarshal([]byte(runCLI(t, ctx, "", false, "show", "-json", filepath.Join(out, "a.plan")).stdout), &j); err != nil {
		t.Errorf("show -json FILE: %v", err)
	}

	runCLI(t, ctx, "", false, "plan", "-detailed-exitcode", dir).want(t, exitChanges)
	runCLI(t, ctx, "", false, "plan", "-detailed-exitcode", "-json", dir).want(t, exitChanges, `"migrate": 4`)
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
	r = runCLI(t, ctx, "", false, "plan", "-refresh=false", "-json", dir)
	r.want(t, exitOK, `"refresh": false`)
	runCLI(t, ctx, "", false, "plan", "-refresh=false", dir).want(t, exitOK, "No changes.")
	// -replace through apply redoes the export.
	runCLI(t, ctx, "", false, "apply", "-auto-approve", "-replace", `migration.web["a"]`, "-target", `migration.web["a"]`, dir).
		want(t, exitOK, `migration.web["a"]: export done`, "Apply complete: 1 migrated")
}

// TestStaleSavedPlanNamesWhatMoved: each input a saved plan is bound to,
// moved after `plan -out`, makes `apply FILE` refuse and say which.
func TestStaleSavedPlanNamesWhatMoved(t *testing.T) {
	tests := []struct {
		name string
		move func(t *testing.T, dir string)
		want string
	}{
		{"config digest", func(t *testing.T, dir string) {
			rewrite(t, dir, "rounds = 1", "rounds = 2")
		}, "the configuration changed (digest "},
		{"state serial", func(t *testing.T, dir string) {
			runCLI(t, context.Background(), "", false, "state", "-state-dir", filepath.Join(dir, ".hyperagent"), "rm", "migration.db").want(t, exitOK)
		}, "the state was written since (serial "},
		{"state lineage", func(t *testing.T, dir string) {
			store, err := reconcile.OpenStore(filepath.Join(dir, ".hyperagent"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := store.Lock("test"); err != nil {
				t.Fatal(err)
			}
			defer store.Unlock()
			st, err := store.Load()
			if err != nil {
				t.Fatal(err)
			}
			st.Lineage = "another-lineage"
			st.Serial--
			if err := store.Write(st); err != nil {
				t.Fatal(err)
			}
		}, `the state is a different one (lineage "`},
		{"VM fingerprint", func(t *testing.T, dir string) {
			setVMs(t, dir, `{"/DC1/vm/web-b": {"fingerprint": "v7"}}`)
		}, `the source VM of migration.web["b"] changed (fingerprint v1 → v7)`},
		{"VM gone", func(t *testing.T, dir string) {
			setVMs(t, dir, `{"/DC1/vm/web-a": {"missing": true}}`)
		}, `the source VM of migration.web["a"] (/DC1/vm/web-a) is gone`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := fakeRepo(t, 0, wave)
			ctx := context.Background()
			// A state with a lineage to be bound to: db applied first.
			runCLI(t, ctx, "", false, "apply", "-auto-approve", "-target", "migration.db", dir).want(t, exitOK, "1 migrated")
			planFile := filepath.Join(t.TempDir(), "p.plan")
			runCLI(t, ctx, "", false, "plan", "-out", planFile, dir).want(t, exitOK, "Plan: 3 to migrate")
			tc.move(t, dir)
			r := runCLI(t, ctx, "", false, "apply", planFile)
			r.want(t, exitError)
			r.stderrHas(t, "the saved plan is stale", tc.want)
			r = runCLI(t, ctx, "", false, "apply", "-target", "migration.db", planFile)
			r.want(t, exitError)
			r.stderrHas(t, "cannot be used with a saved plan")
			r.lacks(t, "export start")
		})
	}
}

func TestApplySummaryFailedAndSkipped(t *testing.T) {
	dir := fakeRepo(t, 0, wave)
	setVMs(t, dir, `{"/DC1/vm/db": {"fail_export": "datastore unreachable"}}`)
	r := runCLI(t, context.Background(), "", false, "apply", "-auto-approve", "-parallelism=1", dir)
	r.want(t, exitError, "Apply finished with problems: 0 migrated, 0 removed, 1 failed, 0 interrupted, 3 skipped, 0 not started.",
		"Failed:\n  migration.db (step export): export migration.db: export /DC1/vm/db: datastore unreachable",
		"Skipped:\n  migration.web[\"a\"]: dependency migration.db failed")
	store, _ := reconcile.OpenStore(filepath.Join(dir, ".hyperagent"))
	st, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if ms := st.Migrations["migration.db"]; ms == nil || ms.LastError == nil || ms.LastError.Step != reconcile.StepExport {
		t.Errorf("state does not record the failure: %+v", ms)
	}
	// Fixed, the next apply completes and plans nothing after.
	setVMs(t, dir, `{}`)
	runCLI(t, context.Background(), "", false, "plan", dir).want(t, exitOK, "the last export failed (export migration.db")
	runCLI(t, context.Background(), "", false, "apply", "-auto-approve", dir).want(t, exitOK, "Apply complete: 4 migrated")
}

// TestRemovedMigration: a migration taken out of the config is planned
// `-`: its export files are pruned and its record forgotten; the source
// VM and its domain are kept. prevent_destroy refuses it.
func TestRemovedMigration(t *testing.T) {
	dir := fakeRepo(t, 0, twoMigrations)
	ctx := context.Background()
	runCLI(t, ctx, "", false, "apply", "-auto-approve", dir).want(t, exitOK, "2 migrated")
	store, _ := reconcile.OpenStore(filepath.Join(dir, ".hyperagent"))
	st, _ := store.Load()
	exportB := st.Migrations[`migration.web["b"]`].Export.Files[0].Path
	rewrite(t, dir, `toset(["a", "b"])`, `toset(["a"])`)
	r := runCLI(t, ctx, "", false, "plan", "-detailed-exitcode", dir)
	r.want(t, exitChanges, `- migration.web["b"]`, "prune ", "forget ", "the source VM and any defined domain are kept",
		"Plan: 0 to migrate, 0 to replace, 1 to remove.")
	runCLI(t, ctx, "", false, "apply", "-auto-approve", dir).want(t, exitOK, "1 removed", `Removed:`)
	if _, err := os.Stat(exportB); !os.IsNotExist(err) {
		t.Errorf("the removed migration's export %s is still there: %v", exportB, err)
	}
	runCLI(t, ctx, "", false, "state", "-state-dir", filepath.Join(dir, ".hyperagent"), "list").want(t, exitOK, `migration.web["a"]`)
	if r := runCLI(t, ctx, "", false, "state", "-state-dir", filepath.Join(dir, ".hyperagent"), "list"); strings.Contains(r.stdout, `web["b"]`) {
		t.Errorf("forgotten migration still listed:\n%s", r.stdout)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "fakes", "kvm-domains.log")); err == nil && !strings.Contains(string(b), "web-b") {
		t.Errorf("the domain of the removed migration was not kept")
	}

	// prevent_destroy: applied with it set, the removal is refused.
	rewrite(t, dir, `export { dir`, "lifecycle { prevent_destroy = true }\n  export { dir")
	runCLI(t, ctx, "", false, "apply", "-auto-approve", dir).want(t, exitOK)
	rewrite(t, dir, `toset(["a"])`, `toset(["c"])`)
	r = runCLI(t, ctx, "", false, "plan", dir)
	r.want(t, exitError, `- migration.web["a"]`, "lifecycle.prevent_destroy is set", "blocked")
	r = runCLI(t, ctx, "", false, "apply", "-auto-approve", dir)
	r.want(t, exitError, "prevent_destroy")
	st, _ = store.Load()
	if st.Migrations[`migration.web["a"]`] == nil {
		t.Error("prevent_destroy did not keep the record")
	}
}

func rewrite(t *testing.T, dir, old, new string) {
	t.Helper()
	p := filepath.Join(dir, "main.hcl")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("main.hcl lacks %q", old)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSecretsNeverWritten: a sensitive variable's value reaches the plugin
// (the fake's token) but no output, log line, saved plan or state file.
func TestSecretsNeverWritten(t *testing.T) {
	const secret = "s3cr3t-Tok3n-4242"
	dir := t.TempDir()
	fakes := filepath.Join(dir, "fakes")
	hcl := `
variable "token" {
  sensitive = true
}
source "fake" "src" {
  dir   = "` + fakes + `"
  token = var.token
}
converter "fake" "conv" {
  dir    = "` + fakes + `"
  rounds = 1
  token  = var.token
}
target "fake" "kvm" {
  dir = "` + fakes + `"
}
migration "web" {
  source    = source.fake.src
  converter = converter.fake.conv
  target    = target.fake.kvm
  vm        = "/DC1/vm/web"
  export { dir = "` + filepath.Join(dir, "exports") + `" }
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	varFile := filepath.Join(t.TempDir(), "secret.hcl")
	if err := os.WriteFile(varFile, []byte(`token = "`+secret+`"`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	planFile := filepath.Join(dir, "saved.plan")
	var all strings.Builder
	run := func(code int, args ...string) {
		t.Helper()
		var out, errb strings.Builder
		e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
			environ:  []string{"HYPERAGENT_LOG=trace"},
			registry: newFakeRegistry()}
		if got := run(context.Background(), args, e); got != code {
			t.Fatalf("%v: exit %d, want %d\n%s\n%s", args, got, code, out.String(), errb.String())
		}
		all.WriteString(out.String() + errb.String())
	}
	run(exitOK, "plan", "-var", "token="+secret, "-out", planFile, dir)
	run(exitOK, "plan", "-var-file", varFile, "-json", dir)
	run(exitOK, "show", planFile)
	run(exitOK, "show", "-json", planFile)
	run(exitOK, "apply", "-var", "token="+secret, "-auto-approve", dir)
	run(exitOK, "apply", "-var", "token="+secret, "-auto-approve", "-json", dir)
	run(exitOK, "state", "-state-dir", filepath.Join(dir, ".hyperagent"), "show", "migration.web")
	run(exitOK, "show", "-state-dir", filepath.Join(dir, ".hyperagent"), "-json")
	setVMs(t, dir, `{"/DC1/vm/web": {"fingerprint": "v2"}}`)
	run(exitError, "apply", "-var", "token="+secret, planFile)
	if !strings.Contains(all.String(), "[DEBUG] hyperagent.apply: step: address=migration.web step=export status=start") {
		t.Errorf("the engine's debug log is missing, so it was not checked:\n%s", all.String())
	}
	if !strings.Contains(all.String(), "fake configured: addr=source.fake.src token=(sensitive value)") {
		t.Errorf("the fake's careless log line is missing or not redacted:\n%s", all.String())
	}
	if strings.Contains(all.String(), secret) {
		t.Errorf("the secret is in the output or logs:\n%s", all.String())
	}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("%s holds the secret", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestApplyJSON(t *testing.T) {
	dir := fakeRepo(t, 0, twoMigrations)
	ctx := context.Background()
	runCLI(t, ctx, "yes\n", true, "apply", "-json", dir).want(t, exitError)
	r := runCLI(t, ctx, "", false, "apply", "-json", "-auto-approve", dir)
	r.want(t, exitOK)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	steps := 0
	for _, l := range lines[:len(lines)-1] {
		var ev stepEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Type != "step" {
			t.Fatalf("line %q: %v %+v", l, err, ev)
		}
		steps++
	}
	if steps != 2*4*2 { // two migrations, four steps, start and done
		t.Errorf("%d step events, want 16:\n%s", steps, r.stdout)
	}
	var sum struct {
		Type   string           `json:"type"`
		Result reconcile.Result `json:"result"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Type != "summary" || len(sum.Result.Migrated) != 2 {
		t.Errorf("summary line %q: %v %+v", lines[len(lines)-1], err, sum)
	}
}

// TestStateDirFromConfig: state commands find agent.state_dir through the
// config in the working directory, and refuse to guess when it does not
// load.
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
		r.stderrHas(t, `No value for required variable`, "its state directory is unknown")
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
