package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/reconcile"
	"github.com/hypersdk/hyperagent/reconcile/pgstate/pgtest"
)

// pgStateHCL is a state block keeping the state in workspace ws of the
// tests' database, its connection string a sensitive variable.
func pgStateHCL(ws string) string {
	return fmt.Sprintf("variable \"pg\" {\n  sensitive = true\n}\nstate {\n  backend   = \"pg\"\n  conn_str  = var.pg\n  workspace = %q\n}\n", ws)
}

func addHCL(t *testing.T, dir, hcl string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "state.hcl"), []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
}

// stateBackends gives each backend's repo setup: what to add to a repo
// and the -var arguments every command then takes.
func stateBackends(t *testing.T) map[string]func(t *testing.T, dir string) []string {
	cs := pgtest.ConnStr(t, os.Getenv)
	return map[string]func(*testing.T, string) []string{
		"local": func(*testing.T, string) []string { return nil },
		"pg": func(t *testing.T, dir string) []string {
			addHCL(t, dir, pgStateHCL(pgtest.Workspace(t, cs)))
			return []string{"-var", "pg=" + cs}
		},
	}
}

func pulled(t *testing.T, r cliResult) *reconcile.State {
	t.Helper()
	r.want(t, exitOK)
	st, err := reconcile.DecodeState([]byte(r.stdout))
	if err != nil {
		t.Fatalf("state pull printed no state: %v\n%s", err, r.stdout)
	}
	return st
}

// TestStatePullPushMv: on both backends, pull prints what apply
// recorded; mv renames a record and refuses a taken address; push
// refuses an older state and another campaign's unless -force, and the
// pushed state is what the next pull prints. The connection string
// appears in no output.
func TestStatePullPushMv(t *testing.T) {
	for name, setup := range stateBackends(t) {
		t.Run(name, func(t *testing.T) {
			dir := fakeRepo(t, 0, twoMigrations)
			vars := setup(t, dir)
			t.Chdir(dir)
			cli := func(args ...string) cliResult {
				t.Helper()
				r := runCLI(t, t.Context(), "", false, append(args[:1:1], append(vars, args[1:]...)...)...)
				for _, v := range vars {
					if secret, ok := strings.CutPrefix(v, "pg="); ok && strings.Contains(r.stdout+r.stderr, secret) {
						t.Fatalf("the connection string was printed:\n%s%s", r.stdout, r.stderr)
					}
				}
				return r
			}
			cli("apply", "-auto-approve", ".").want(t, exitOK, "Apply complete: 2 migrated")
			applied := pulled(t, cli("state", "pull"))
			if len(applied.Migrations) != 2 || applied.Serial == 0 || applied.Lineage == "" {
				t.Fatalf("pulled %+v", applied)
			}
			saved := filepath.Join(t.TempDir(), "pulled.json")
			if err := os.WriteFile(saved, []byte(cli("state", "pull").stdout), 0o600); err != nil {
				t.Fatal(err)
			}

			a, b, site := `migration.web["a"]`, `migration.web["b"]`, `migration.site["a"]`
			cli("state", "mv", a, site).want(t, exitOK, "Moved "+a+" to "+site)
			if r := cli("state", "mv", site, b); r.code != exitError || !strings.Contains(r.stderr, b+" is in the state already") {
				t.Fatalf("mv onto a recorded address: %+v", r)
			}
			if r := cli("state", "mv", a, site); r.code != exitError || !strings.Contains(r.stderr, a+" is not in the state") {
				t.Fatalf("mv of a missing address: %+v", r)
			}
			moved := pulled(t, cli("state", "pull"))
			if ms := moved.Migrations[site]; ms == nil || ms.Address != site || moved.Migrations[a] != nil || moved.Serial != applied.Serial+1 {
				t.Fatalf("after mv: serial %d, %v", moved.Serial, moved.Addresses())
			}
			if d := cmp.Diff(applied.Migrations[a].Export, moved.Migrations[site].Export); d != "" {
				t.Errorf("mv changed the record:\n%s", d)
			}

			if r := cli("state", "push", saved); r.code != exitError || !strings.Contains(r.stderr, fmt.Sprintf("serial %d, older than the stored serial %d", applied.Serial, moved.Serial)) {
				t.Fatalf("push of an older state: %+v", r)
			}
			cli("state", "push", "-force", saved).want(t, exitOK, "Pushed ")
			back := pulled(t, cli("state", "pull"))
			if back.Serial != moved.Serial+1 || back.Lineage != applied.Lineage {
				t.Errorf("after push: serial %d lineage %s, want %d %s", back.Serial, back.Lineage, moved.Serial+1, applied.Lineage)
			}
			if d := cmp.Diff(applied.Migrations, back.Migrations); d != "" {
				t.Errorf("the pushed records differ from the pulled ones:\n%s", d)
			}

			other := back.Clone()
			other.Lineage, other.Serial = "another-campaign", back.Serial+5
			b2, _ := other.Encode()
			if err := os.WriteFile(saved, b2, 0o600); err != nil {
				t.Fatal(err)
			}
			if r := cli("state", "push", saved); r.code != exitError || !strings.Contains(r.stderr, `campaign "another-campaign" and the stored one of campaign "`+applied.Lineage) {
				t.Fatalf("push of another campaign: %+v", r)
			}
			cli("state", "push", "-force", saved).want(t, exitOK)
			if got := pulled(t, cli("state", "pull")); got.Lineage != "another-campaign" || got.Serial != other.Serial+1 {
				t.Errorf("forced push: lineage %s serial %d", got.Lineage, got.Serial)
			}
		})
	}
}

// TestStatePushLocalToPG: a campaign's local state pulled and pushed to
// an empty pg workspace is what the workspace's pull prints, record for
// record, and a plan there has nothing to do.
func TestStatePushLocalToPG(t *testing.T) {
	cs := pgtest.ConnStr(t, os.Getenv)
	dir := fakeRepo(t, 0, twoMigrations)
	t.Chdir(dir)
	runCLI(t, t.Context(), "", false, "apply", "-auto-approve", ".").want(t, exitOK, "Apply complete: 2 migrated")
	local := runCLI(t, t.Context(), "", false, "state", "pull")
	file := filepath.Join(t.TempDir(), "local.json")
	if err := os.WriteFile(file, []byte(local.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	addHCL(t, dir, pgStateHCL(pgtest.Workspace(t, cs)))
	runCLI(t, t.Context(), "", false, "state", "-var", "pg="+cs, "push", file).want(t, exitOK, "Pushed ")
	want, got := pulled(t, local), pulled(t, runCLI(t, t.Context(), "", false, "state", "-var", "pg="+cs, "pull"))
	if d := cmp.Diff(want.Migrations, got.Migrations); d != "" || got.Lineage != want.Lineage {
		t.Fatalf("pg holds another state than the local one pushed (-local +pg):\n%s", d)
	}
	runCLI(t, t.Context(), "", false, "plan", "-var", "pg="+cs, ".").want(t, exitOK, "No changes")
}

// TestKilledApplyLeavesNoPGLock: an apply on the pg backend is SIGKILLed
// mid-export; the server drops its session and with it its hold on the
// campaign and its claims, so the next apply proceeds without
// force-unlock and converges. While it ran, a second apply ran beside it
// and left the migrations it claims to it, and a state change that
// needs the campaign to itself was refused, naming it.
func TestKilledApplyLeavesNoPGLock(t *testing.T) {
	cs := pgtest.ConnStr(t, os.Getenv)
	dir := slowExports(t, 0)
	addHCL(t, dir, pgStateHCL(pgtest.Workspace(t, cs)))
	c := startCLI(t, "apply", "-auto-approve", "-var", "pg="+cs, dir)
	c.stdout.until(t, ": export start", 2)
	holder := fmt.Sprintf("apply by pid %d", c.cmd.Process.Pid)
	r := runCLI(t, t.Context(), "", false, "apply", "-auto-approve", "-var", "pg="+cs, dir)
	r.want(t, exitOK, "Left to other processes", "is being worked on by "+holder)
	t.Chdir(dir) // the CLI runs in this process: -chdir would stay
	r = runCLI(t, t.Context(), "", false, "state", "rm", "-var", "pg="+cs, `migration.web["a"]`)
	if r.code != exitError || !strings.Contains(r.stderr, holder) {
		t.Fatalf("state rm while an apply runs: exit %d\n%s", r.code, r.stderr)
	}
	c.signal(t, syscall.SIGKILL)
	c.wait(t)
	runCLI(t, t.Context(), "", false, "apply", "-auto-approve", "-lock-timeout=10s", "-var", "pg="+cs, fakeRepoFast(t, dir)).
		want(t, exitOK, "Apply complete: 2 migrated")
	runCLI(t, t.Context(), "", false, "plan", "-var", "pg="+cs, dir).want(t, exitOK, "No changes")
}

// TestStatusFallsBackToEitherBackend: with no agent answering, status
// shows what the state records wherever the configuration keeps it —
// a local directory, or a PostgreSQL workspace — and loads the
// configuration without its other variables. A state whose place
// depends on a variable not given is said to be unknown.
func TestStatusFallsBackToEitherBackend(t *testing.T) {
	for name, setup := range stateBackends(t) {
		t.Run(name, func(t *testing.T) {
			dir := fakeRepo(t, 0, twoMigrations)
			vars := setup(t, dir)
			runCLI(t, t.Context(), "", false, append(append([]string{"apply"}, vars...), "-auto-approve", dir)...).want(t, exitOK, "Apply complete: 2 migrated")
			sock := "unix:" + filepath.Join(t.TempDir(), "none.sock")
			where := "What the state in " + filepath.Join(dir, ".hyperagent") + " records"
			if name == "pg" {
				where = `What the state in PostgreSQL workspace "TestStatusFallsBackToEitherBackend-pg-`
			}
			r := runCLI(t, t.Context(), "", false, append(append([]string{"status"}, vars...), "-config", dir, "-listen", sock)...)
			r.want(t, exitOK, "No agent is running", where, "Migrations (2)", `migration.web["a"]  defined`, `migration.web["b"]  defined`)
			if name == "pg" {
				r.lacks(t, strings.TrimPrefix(vars[1], "pg="))
				r = runCLI(t, t.Context(), "", false, "status", "-config", dir, "-listen", sock)
				r.want(t, exitError)
				r.stderrHas(t, "no agent answers on "+sock, "its state is unknown")
			}
		})
	}
}

// TestWorkspaceList: on both backends, workspace list marks the
// configuration's campaign, said to have no state until the first apply,
// then listed as held; on PostgreSQL it is listed among the database's
// other workspaces, the only one marked.
func TestWorkspaceList(t *testing.T) {
	for name, setup := range stateBackends(t) {
		t.Run(name, func(t *testing.T) {
			dir := fakeRepo(t, 0, twoMigrations)
			vars := setup(t, dir)
			t.Chdir(dir)
			want := reconcile.DefaultWorkspace
			if b, err := os.ReadFile(filepath.Join(dir, "state.hcl")); err == nil { // pgStateHCL's
				_, rest, _ := strings.Cut(string(b), "workspace = \"")
				want, _, _ = strings.Cut(rest, "\"")
			}
			list := func() []string {
				t.Helper()
				r := runCLI(t, t.Context(), "", false, append([]string{"workspace", "list"}, vars...)...)
				r.want(t, exitOK)
				var starred []string
				for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
					if s, ok := strings.CutPrefix(l, "* "); ok {
						starred = append(starred, s)
					} else if !strings.HasPrefix(l, "  ") {
						t.Errorf("line %q: want \"* \" or two spaces before the name", l)
					}
				}
				return starred
			}
			if got := list(); !cmp.Equal(got, []string{want + " (no state written yet)"}) {
				t.Errorf("before apply: marked %q, want %s with no state", got, want)
			}
			runCLI(t, t.Context(), "", false, append([]string{"apply", "-auto-approve"}, append(vars, ".")...)...).want(t, exitOK)
			if got := list(); !cmp.Equal(got, []string{want}) {
				t.Errorf("after apply: marked %q, want %s", got, want)
			}
		})
	}
}
