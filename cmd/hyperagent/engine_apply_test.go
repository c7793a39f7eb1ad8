package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hypersdk/hyperagent/reconcile"
)

// TestStaleSavedPlanNamesWhatMoved: each input a saved plan is bound to,
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
	// A careless source quotes the credential in a finding.
	setVMs(t, dir, `{"/DC1/vm/web": {"findings": [{"severity": "warning", "summary": "login as `+secret+` is deprecated", "detail": "token `+secret+`"}]}}`)
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
	// ... and in an export error, which state records as the last error.
	setVMs(t, dir, `{"/DC1/vm/web": {"fingerprint": "v3", "fail_export": "https://svc:`+secret+`@vc refused"}}`)
	run(exitError, "apply", "-var", "token="+secret, "-auto-approve", "-json", dir)
	run(exitError, "apply", "-var", "token="+secret, "-auto-approve", dir)
	run(exitOK, "state", "-state-dir", filepath.Join(dir, ".hyperagent"), "show", "migration.web")
	if !strings.Contains(all.String(), "https://svc:(sensitive value)@vc refused") ||
		!strings.Contains(all.String(), "login as (sensitive value) is deprecated") {
		t.Errorf("the quoted secrets did not reach the output redacted, so redaction was not checked:\n%s", all.String())
	}
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
		// src-vms.json is the test's input: what the remote side says.
		if err != nil || d.IsDir() || d.Name() == "src-vms.json" {
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
	// -json cannot ask: the refusal is a diagnostic line on stdout.
	r := runCLI(t, ctx, "yes\n", true, "apply", "-json", dir)
	r.want(t, exitError)
	if ls := uiLines(t, r.stdout); ls.count("diagnostic") != 1 || !strings.Contains(r.stdout, "cannot ask for approval") {
		t.Errorf("no diagnostic for the refusal:\n%s", r.stdout)
	}
	r = runCLI(t, ctx, "", false, "apply", "-json", "-auto-approve", dir)
	r.want(t, exitOK)
	ls := uiLines(t, r.stdout)
	for typ, n := range map[string]int{"version": 1, "planned_change": 2, "change_summary": 2,
		"apply_start": 2 * 4, "apply_complete": 2 * 4, "apply_errored": 0, "diagnostic": 0, "apply_result": 1} {
		if got := ls.count(typ); got != n {
			t.Errorf("%d %s lines, want %d:\n%s", got, typ, n, r.stdout)
		}
	}
	if ls[0].Type != "version" || ls[len(ls)-1].Type != "apply_result" || len(ls[len(ls)-1].Result.Migrated) != 2 {
		t.Errorf("first %s, last %s %+v", ls[0].Type, ls[len(ls)-1].Type, ls[len(ls)-1].Result)
	}
	if r.stderr != "" {
		t.Errorf("stderr with -json: %s", r.stderr)
	}
}
