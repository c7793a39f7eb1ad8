package pass

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/plugintest"
	"github.com/hypersdk/hyperagent/reconcile"
)

func TestPlanThenApplyConverges(t *testing.T) {
	dir := t.TempDir()
	writeWorld(t, dir, worldHCL(dir, nil, "a", "b"))
	w := mustOpen(t, dir)
	res, err := w.Run(context.Background(), Request{Mode: ModePlan, Operation: "plan", Plan: reconcile.PlanRequest{Refresh: true}})
	if err != nil || res.Plan.Summary.Migrate != 2 || res.Applied != nil {
		t.Fatalf("plan pass: %+v, %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".hyperagent", "state.json")); !os.IsNotExist(err) {
		t.Errorf("a plan pass wrote state (%v)", err)
	}
	res = applyAll(t, w)
	if res.Applied == nil || len(res.Applied.Migrated) != 2 || !res.Applied.OK() {
		t.Fatalf("apply pass: %+v", res.Applied)
	}
	if held, err := reconcile.LockHeld(w.Store.Dir()); held || err != nil {
		t.Errorf("lock still held after the pass (%v)", err)
	}
	res = applyAll(t, w)
	if res.Applied != nil || res.Plan.HasChanges() {
		t.Errorf("second pass: applied %+v", res.Applied)
	}
}

// TestPassWaitsForTheLock: a pass meets a lock another process's agent
// holds: without a timeout it fails at once naming the holder and its
// operation; with one it waits, says whom for, and runs once released.
func TestPassWaitsForTheLock(t *testing.T) {
	dir := t.TempDir()
	writeWorld(t, dir, worldHCL(dir, nil, "a"))
	w := mustOpen(t, dir)
	other, err := reconcile.OpenStore(w.Store.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Lock("agent pass 42"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = w.Run(ctx, Request{Mode: ModeApply, Operation: "apply", Plan: reconcile.PlanRequest{Refresh: true}})
	var le *reconcile.LockedError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "agent pass 42") {
		t.Fatalf("err = %v, want the lock error naming the agent's pass", err)
	}
	var waited []string
	var mu sync.Mutex
	go func() { time.Sleep(400 * time.Millisecond); other.Unlock() }()
	res, err := w.Run(ctx, Request{Mode: ModeApply, Operation: "apply", Plan: reconcile.PlanRequest{Refresh: true},
		LockTimeout: 30 * time.Second, LockWaiting: func(h reconcile.LockInfo, _ time.Duration) {
			mu.Lock()
			waited = append(waited, h.Operation)
			mu.Unlock()
		}})
	if err != nil || res.Applied == nil || !res.Applied.OK() {
		t.Fatalf("after waiting: %+v, %v", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(waited) == 0 || waited[0] != "agent pass 42" {
		t.Errorf("waited for %v, want the agent named", waited)
	}
}

// TestInterruptedPass: a cancelled pass (the CLI's interrupt, the agent's
// SIGTERM) starts no new step, cancels the one in flight, records it, and
// releases the lock; the next pass converges without exporting twice.
func TestInterruptedPass(t *testing.T) {
	dir := t.TempDir()
	writeWorld(t, dir, worldHCL(dir, map[string]string{"source": "  max_parallel = 1\n"}, "a", "b", "c"))
	w := mustOpen(t, dir)
	src, _, _ := fakes(w)
	src.Gate = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for src.InFlight() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	res, err := w.Run(ctx, Request{Mode: ModeApply, Operation: "apply", Plan: reconcile.PlanRequest{Refresh: true}})
	if err != nil {
		t.Fatal(err)
	}
	a := res.Applied
	if len(a.Interrupted) != 1 || len(a.NotStarted) != 2 || len(a.Migrated) != 0 {
		t.Fatalf("result %+v, want one interrupted and two not started", a)
	}
	if held, _ := reconcile.LockHeld(w.Store.Dir()); held {
		t.Fatal("the lock is still held")
	}
	st, err := w.Store.Load()
	if err != nil {
		t.Fatal(err)
	}
	le := st.Migrations[a.Interrupted[0].Address].LastError
	if le == nil || !strings.HasPrefix(le.Message, "interrupted: ") {
		t.Errorf("last error %+v, want the interruption recorded", le)
	}
	src.Gate = nil
	if res := applyAll(t, w); !res.Applied.OK() || len(res.Applied.Migrated) != 3 {
		t.Fatalf("after the interrupt: %+v", res.Applied)
	}
	for _, addr := range []string{"migration.a", "migration.b", "migration.c"} {
		if n := src.Exports(addr); n != 1 {
			t.Errorf("%s exported %d times, want 1", addr, n)
		}
	}
}

// TestSecretsNeverLeaveThePass: plugins that quote a sensitive value (in
// a finding, in an export error) never get it into anything a pass
// returns or writes: the plan, its JSON, the result, the events, the
// errors, the state file.
func TestSecretsNeverLeaveThePass(t *testing.T) {
	for _, secret := range []string{"s3cr3t-Tok3n-4242", "example", "a1"} {
		t.Run(secret, func(t *testing.T) {
			dir := t.TempDir()
			hcl := "variable \"token\" {\n  sensitive = true\n}\n" +
				worldHCL(dir, map[string]string{"source": "  token = var.token\n"}, "web")
			writeWorld(t, dir, hcl)
			w := mustOpen(t, dir, "token="+secret)
			src, _, _ := fakes(w)
			src.SetVM("/DC1/vm/web", plugintest.VM{Fingerprint: "v1", Findings: []plugins.Finding{{
				Severity: "warning", Summary: "login as " + secret + " is deprecated", Detail: "token " + secret}}})
			var seen strings.Builder
			var mu sync.Mutex
			record := func(s string) { mu.Lock(); seen.WriteString(s + "\n"); mu.Unlock() }
			req := Request{Mode: ModeApply, Operation: "apply", Plan: reconcile.PlanRequest{Refresh: true},
				Apply: reconcile.ApplyOptions{Events: func(ev reconcile.Event) {
					record(ev.Detail)
					if ev.Err != nil {
						record(ev.Err.Error())
					}
				}}}
			res, err := w.Run(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := res.Plan.Encode()
			record(string(b))
			// The VM changes; the new export fails quoting a URL with
			// the secret, which state records as the last error.
			src.SetVM("/DC1/vm/web", plugintest.VM{Fingerprint: "v2", FailExport: "https://svc:" + secret + "@vcenter.example.com refused"})
			res, err = w.Run(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			r, _ := json.Marshal(res.Applied)
			record(string(r))
			st, _ := os.ReadFile(filepath.Join(dir, ".hyperagent", "state.json"))
			record(string(st))
			all := seen.String()
			if !strings.Contains(all, "https://svc:(sensitive value)@vcenter.example.com refused") ||
				!strings.Contains(all, "login as (sensitive value) is deprecated") {
				t.Fatalf("the quoted secret did not come back redacted, so nothing was checked:\n%s", all)
			}
			for _, line := range strings.Split(all, "\n") {
				if containsStanding(line, secret) {
					t.Errorf("the secret %q got out: %s", secret, line)
				}
			}
		})
	}
}

// containsStanding finds the secret where it stands as itself (the host
// vcenter.example.com legitimately contains "example").
func containsStanding(s, secret string) bool {
	return reconcile.NewRedactor([]string{secret}).String(s) != s
}
