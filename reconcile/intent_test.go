package reconcile

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestInterruptedDefineIsDefinedAgain: a target may move the converted
// disks into its storage before it defines the domain. A run stopped
// there leaves outputs gone from where the converter left them and no
// domain recorded: the next plan defines again (the target adopts the
// disks it placed), it does not convert again. Without the recorded
// intent, missing outputs are converted again.
func TestInterruptedDefineIsDefinedAgain(t *testing.T) {
	h := newHarness(t, "", "a")
	p := h.plan(PlanRequest{})
	c := p.Change("migration.a")
	c.Steps = c.Steps[:len(c.Steps)-1] // up to await: the define does not run
	if res := h.apply(p); !res.OK() {
		t.Fatalf("apply: %+v", res)
	}
	st := h.state()
	ms := st.Migrations["migration.a"]
	if ms.DefineStartedAt == nil || ms.Domain != nil || len(ms.Outputs) == 0 {
		t.Fatalf("after await: %+v; want the define's intent recorded with the outputs", ms)
	}
	// The target moved the disks, then the process died.
	placed := filepath.Join(t.TempDir(), "placed.qcow2")
	if err := os.Rename(ms.Outputs[0].Path, placed); err != nil {
		t.Fatal(err)
	}
	if kinds := stepKinds(h.plan(PlanRequest{}).Change("migration.a")); len(kinds) != 1 || kinds[0] != StepDefine {
		t.Fatalf("steps %v after an interrupted define; want define alone", kinds)
	}
	ms.DefineStartedAt = nil
	h.writeState(st)
	if kinds := stepKinds(h.plan(PlanRequest{}).Change("migration.a")); kinds[0] == StepDefine {
		t.Fatalf("steps %v for outputs gone with no define begun; want a conversion again", kinds)
	}
}

// TestAgentPassLeavesFullConverterToNextPass: a pass that does not await
// (the agent's) submits only as many jobs as the converter's limit
// leaves room for, and leaves the rest to later passes instead of
// waiting for slots nothing in the pass frees; the next pass collects
// what ended and submits more, until all are defined.
func TestAgentPassLeavesFullConverterToNextPass(t *testing.T) {
	h := newHarness(t, "", "a", "b", "c", "d", "e")
	h.conv.MaxParallel = 2
	h.conv.Rounds = 1
	pass := func() *Result {
		t.Helper()
		if _, err := h.store.Lock("agent pass"); err != nil {
			t.Fatal(err)
		}
		defer h.store.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := h.engine().Apply(ctx, h.state(), h.plan(PlanRequest{}), ApplyOptions{SkipAwait: true})
		if err != nil || ctx.Err() != nil {
			t.Fatalf("pass: %v, %v (a pass waiting on a converter slot it cannot get runs until cancelled)", err, ctx.Err())
		}
		return res
	}
	res := pass()
	if len(res.Waiting) != 2 || len(res.Skipped) != 3 {
		t.Fatalf("first pass: %d waiting, %d skipped (%+v); want 2 jobs submitted and 3 left for later", len(res.Waiting), len(res.Skipped), res)
	}
	for passes := 1; ; passes++ {
		if passes > 10 {
			t.Fatalf("not converged after %d passes", passes)
		}
		if h.plan(PlanRequest{}).HasChanges() {
			pass()
			continue
		}
		break
	}
	if hw := h.conv.HighWater(); hw > 2 {
		t.Errorf("%d jobs in flight at once; the limit is 2", hw)
	}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		if got := h.conv.Submits("migration." + n); got != 1 {
			t.Errorf("migration.%s submitted %d times", n, got)
		}
	}
}
