package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/jsondoc"
)

// fakeRepo writes a migration repo over the fake plugins (file-backed in
// <dir>/fakes, so effects persist between commands) with the given
// migration blocks.
func fakeRepo(t *testing.T, exportDelayMS int, migrations string) string {
	t.Helper()
	dir := t.TempDir()
	hcl := fmt.Sprintf(`
source "fake" "src" {
  dir      = %[1]q
  delay_ms = %[2]d
}
converter "fake" "conv" {
  dir    = %[1]q
  rounds = 1
}
target "fake" "kvm" {
  dir = %[1]q
}
%[3]s`, filepath.Join(dir, "fakes"), exportDelayMS, strings.ReplaceAll(migrations, "EXPORTS", filepath.Join(dir, "exports")))
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const twoMigrations = `
migration "web" {
  for_each  = toset(["a", "b"])
  source    = source.fake.src
  converter = converter.fake.conv
  target    = target.fake.kvm
  vm        = "/DC1/vm/web-${each.key}"
  export { dir = "EXPORTS" }
}
`

type cliResult struct {
	stdout, stderr string
	code           int
}

func runCLI(t *testing.T, ctx context.Context, stdin string, tty bool, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, stdinTTY: tty,
		log: hclog.NewNullLogger(), registry: newFakeRegistry()}
	code := run(ctx, args, e)
	return cliResult{out.String(), errb.String(), code}
}

func (r cliResult) want(t *testing.T, code int, stdoutHas ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stdoutHas {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
		}
	}
}

func TestPlanApplyShowState(t *testing.T) {
	dir := fakeRepo(t, 0, twoMigrations)
	ctx := context.Background()
	runCLI(t, ctx, "", false, "plan", "-detailed-exitcode", dir).want(t, exitChanges,
		`+ migration.web["a"]`, "Plan: 2 to migrate, 0 to replace, 0 to remove.")
	r := runCLI(t, ctx, "", false, "apply", dir)
	r.want(t, exitError)
	if !strings.Contains(r.stderr, "-auto-approve") {
		t.Errorf("refusal does not mention -auto-approve: %s", r.stderr)
	}
	runCLI(t, ctx, "no\n", true, "apply", dir).want(t, exitError)
	runCLI(t, ctx, "yes\n", true, "apply", dir).want(t, exitOK,
		"Enter a value:", `migration.web["a"]: export done`, "Apply complete: 2 migrated")
	runCLI(t, ctx, "", false, "plan", "-detailed-exitcode", dir).want(t, exitOK, "No changes.")
	runCLI(t, ctx, "", false, "apply", dir).want(t, exitOK, "No changes.")

	sd := filepath.Join(dir, ".hyperagent")
	runCLI(t, ctx, "", false, "state", "-state-dir", sd, "list").want(t, exitOK, "migration.web[\"a\"]\nmigration.web[\"b\"]\n")
	// Options also follow the subcommand, as in Terraform.
	runCLI(t, ctx, "", false, "state", "list", "-state-dir", sd).want(t, exitOK, "migration.web[\"a\"]\nmigration.web[\"b\"]\n")
	runCLI(t, ctx, "", false, "state", "show", "-state-dir="+sd, `migration.web["b"]`).want(t, exitOK, `"address": "migration.web[\"b\"]"`)
	r = runCLI(t, ctx, "", false, "state", "-state-dir", sd, "show", `migration.web["b"]`)
	r.want(t, exitOK, `"address": "migration.web[\"b\"]"`)
	runCLI(t, ctx, "", false, "show", "-state-dir", sd).want(t, exitOK, "domain:    web-b")
	// Without -state-dir, show finds the state through the config in the
	// working directory. (-chdir itself is covered by a script: in-process
	// it would move this whole test binary.)
	t.Chdir(dir)
	r = runCLI(t, ctx, "", false, "show", "-json")
	r.want(t, exitOK, `"format_version": "1.0"`, `"lineage"`, `"address": "migration.web[\"a\"]"`)
	checkSchema(t, "state.json", r.stdout)

	runCLI(t, ctx, "", false, "state", "-state-dir", sd, "rm", `migration.web["b"]`).want(t, exitOK, "Removed")
	runCLI(t, ctx, "", false, "state", "-state-dir", sd, "rm", `migration.web["b"]`).want(t, exitError)
	// Forgotten, the migration is planned again; its domain (defined by
	// hyperagent for that address) is still recognised by the target.
	runCLI(t, ctx, "", false, "plan", dir).want(t, exitOK, `+ migration.web["b"]`)
}

func TestPlanJSONAndSavedPlan(t *testing.T) {
	dir := fakeRepo(t, 0, twoMigrations)
	ctx := context.Background()
	planFile := filepath.Join(t.TempDir(), "tf.plan")
	// plan -json is the machine-readable UI; -out saves the plan file,
	// which show -json prints as a document.
	r := runCLI(t, ctx, "", false, "plan", "-json", "-out", planFile, dir)
	r.want(t, exitOK)
	ls := uiLines(t, r.stdout)
	if ls.count("planned_change") != 2 || ls[len(ls)-1].Type != "change_summary" || ls[len(ls)-1].Changes["migrate"] != 2.0 {
		t.Errorf("plan -json:\n%s", r.stdout)
	}
	r = runCLI(t, ctx, "", false, "show", "-json", planFile)
	r.want(t, exitOK)
	checkSchema(t, "plan.json", r.stdout)
	var p jsondoc.Plan
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("show -json FILE is not a plan document: %v\n%s", err, r.stdout)
	}
	if p.FormatVersion != jsondoc.FormatVersion || p.Summary.Migrate != 2 || len(p.Fingerprints) != 2 || len(p.Changes) != 2 {
		t.Errorf("plan %+v", p)
	}
	fi, err := os.Stat(planFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved plan: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	runCLI(t, ctx, "", false, "show", planFile).want(t, exitOK, "Plan: 2 to migrate")

	// The VM changes after the plan: the saved plan is refused, naming it.
	vms := `{"/DC1/vm/web-a": {"fingerprint": "v2"}}`
	if err := os.WriteFile(filepath.Join(dir, "fakes", "src-vms.json"), []byte(vms), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, ctx, "", false, "apply", planFile)
	r.want(t, exitError)
	if !strings.Contains(r.stderr, `the source VM of migration.web["a"] changed (fingerprint v1 → v2)`) {
		t.Errorf("stale plan error does not name the VM:\n%s", r.stderr)
	}
	runCLI(t, ctx, "", false, "plan", "-out", planFile, dir).want(t, exitOK)
	runCLI(t, ctx, "", false, "apply", planFile).want(t, exitOK, "Apply complete: 2 migrated")
	// Applied, the plan is stale: the state moved on.
	r = runCLI(t, ctx, "", false, "apply", planFile)
	if r.code != exitError || !strings.Contains(r.stderr, "the state was written since") {
		t.Errorf("re-applying a used plan: exit %d\n%s", r.code, r.stderr)
	}
}

func TestLockedStateNamesHolder(t *testing.T) {
	dir := fakeRepo(t, 0, twoMigrations)
	ctx := context.Background()
	store, err := reconcile.OpenStore(filepath.Join(dir, ".hyperagent"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := store.Lock("agent")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	holder := fmt.Sprintf("ID %s, agent by pid %d on %s since %s", info.ID, os.Getpid(), host, info.Since.UTC().Format(time.RFC3339))
	sd := filepath.Join(dir, ".hyperagent")
	for _, args := range [][]string{
		{"apply", "-auto-approve", dir},
		{"state", "-state-dir", sd, "rm", "migration.web"},
	} {
		r := runCLI(t, ctx, "", false, args...)
		r.want(t, exitError)
		if !strings.Contains(r.stderr, holder) || !strings.Contains(r.stderr, "hyperagent force-unlock "+info.ID) {
			t.Errorf("%s: lock error does not name the holder (%s):\n%s", args[0], holder, r.stderr)
		}
	}
	// A wrong ID is refused, even with -force, and the lock stays.
	r := runCLI(t, ctx, "", false, "force-unlock", "-state-dir", sd, "-force", "0000-wrong")
	r.want(t, exitError)
	if !strings.Contains(r.stderr, `lock ID "0000-wrong" does not match the held lock (`+holder) {
		t.Errorf("wrong ID: %s", r.stderr)
	}
	if got, ok, _ := reconcile.ReadLockInfo(sd); !ok || got.ID != info.ID {
		t.Fatalf("the lock changed after a refused force-unlock: %+v %v", got, ok)
	}
	// Without a terminal, force-unlock wants -force.
	r = runCLI(t, ctx, "", false, "force-unlock", "-state-dir", sd, info.ID)
	r.want(t, exitError)
	if !strings.Contains(r.stderr, "pass -force") {
		t.Errorf("no-TTY refusal: %s", r.stderr)
	}
	runCLI(t, ctx, "no\n", true, "force-unlock", "-state-dir", sd, info.ID).want(t, exitError, "The lock is held: "+holder)
	runCLI(t, ctx, "", false, "force-unlock", "-state-dir", sd, "-force", info.ID).want(t, exitOK, "released")
	runCLI(t, ctx, "", false, "apply", "-auto-approve", dir).want(t, exitOK, "Apply complete: 2 migrated")
	// The store holds the lock through its open lock file: unreferenced,
	// it could be collected and the file's finalizer would close it,
	// releasing the lock before the commands above were refused.
	runtime.KeepAlive(store)
}

func TestBlockedPlanExitsOne(t *testing.T) {
	dir := fakeRepo(t, 0, twoMigrations)
	vms := `{"/DC1/vm/web-b": {"missing": true}}`
	if err := os.MkdirAll(filepath.Join(dir, "fakes"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fakes", "src-vms.json"), []byte(vms), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	runCLI(t, ctx, "", false, "plan", dir).want(t, exitError, `error: VM "/DC1/vm/web-b" not found`)
	r := runCLI(t, ctx, "", false, "apply", "-auto-approve", dir)
	r.want(t, exitError, "1 migrated", `migration.web["b"]: blocked by errors in the plan`)
	// Only the blocked migration is left: apply has nothing it may run,
	// and still fails.
	r = runCLI(t, ctx, "", false, "apply", "-auto-approve", dir)
	r.want(t, exitError, `error: VM "/DC1/vm/web-b" not found`)
	r.stderrHas(t, "1 migration(s) are blocked by errors")
}

// TestApproveGivesUpOnInterrupt: an interrupt while the prompt waits for
// an answer that never comes cancels the apply.
func TestApproveGivesUpOnInterrupt(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer r.Close()
	var out, errb bytes.Buffer
	e := &env{stdin: r, stdout: &out, stderr: &errb, stdinTTY: true}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if approve(ctx, e, humanProblems{e}, false) {
		t.Fatal("approve after an interrupt said yes")
	}
	if !strings.Contains(out.String(), "Enter a value:") || !strings.Contains(errb.String(), "Apply cancelled.") {
		t.Errorf("stdout %q, stderr %q", out.String(), errb.String())
	}
}

// Relative paths in the config are relative to the config directory: a plan
// made from one working directory and applied from another exports into
// the same place, under the repo.
func TestRelativePathsFollowTheConfigDir(t *testing.T) {
	dir := fakeRepo(t, 0, strings.ReplaceAll(twoMigrations, `"EXPORTS"`, `"exports"`))
	ctx := context.Background()
	planFile := filepath.Join(t.TempDir(), "tf.plan")
	t.Chdir(t.TempDir())
	runCLI(t, ctx, "", false, "plan", "-out", planFile, dir).want(t, exitOK)
	t.Chdir(t.TempDir())
	runCLI(t, ctx, "", false, "apply", planFile).want(t, exitOK, "Apply complete: 2 migrated")
	matches, err := filepath.Glob(filepath.Join(dir, "exports", "*", "disk-0.vmdk"))
	if err != nil || len(matches) != 2 {
		t.Fatalf("exports under the repo: %v (%v)", matches, err)
	}
}
