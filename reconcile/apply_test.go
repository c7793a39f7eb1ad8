package reconcile

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hypersdk/hyperagent/plugins"
	"github.com/hypersdk/hyperagent/plugins/plugintest"
	"github.com/hypersdk/hyperagent/schema/addrs"
)

func TestApplyConvergesOnce(t *testing.T) {
	h := newHarness(t, "", "a", "b", "web[x]")
	res := h.converge()
	if diff := cmp.Diff([]string{"migration.a", "migration.b", `migration.web["x"]`}, res.Migrated); diff != "" {
		t.Errorf("migrated (-want +got):\n%s", diff)
	}
	for _, m := range h.cfg.Migrations {
		a := m.Addr.String()
		if e, s, d := h.src.Exports(a), h.conv.Submits(a), h.tgt.Defines(a); e != 1 || s != 1 || d != 1 {
			t.Errorf("%s: exports=%d submits=%d defines=%d, want 1 each", a, e, s, d)
		}
	}
	fi, err := os.Stat(h.store.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	st := h.state()
	// 3 records created, then 3 × (export 2 + submit 2 + await 1 +
	// define 1) changes; changes made while another's write is under way
	// share the next write (a group commit), so there are at most that
	// many writes, and at least one migration's.
	if st.Serial > 1+3*6 || st.Serial < 1+6 || st.Lineage == "" {
		t.Errorf("serial %d lineage %q: want a write for each step's changes (7 to 19 writes)", st.Serial, st.Lineage)
	}
}

// TestLimits checks the high-water marks the fakes record against the
// declared limits, and that the limit is actually reached (the engine runs
// in parallel). The gate holds exports until the test has seen MaxParallel
// of them in flight at once.
func TestLimits(t *testing.T) {
	names := []string{"a", "b", "c", "d", "e", "f"}
	h := newHarness(t, "", names...)
	h.src.MaxParallel, h.conv.MaxParallel, h.tgt.MaxParallel = 2, 1, 1
	h.src.Gate = make(chan struct{})
	p := h.plan(PlanRequest{})
	done := make(chan *Result)
	go func() { done <- h.apply(p) }()
	for released := 0; released < len(names); released++ {
		if released == 0 {
			for h.src.InFlight() < 2 {
				runtime.Gosched()
			}
		}
		h.src.Gate <- struct{}{}
	}
	res := <-done
	if !res.OK() {
		t.Fatalf("apply: %+v", res)
	}
	if got := h.src.HighWater(); got != 2 {
		t.Errorf("source exports in flight at most %d, want 2", got)
	}
	if got := h.conv.HighWater(); got != 1 {
		t.Errorf("converter jobs in flight at most %d, want 1", got)
	}
	if got := h.tgt.HighWater(); got != 1 {
		t.Errorf("target defines in flight at most %d, want 1", got)
	}
}

func TestParallelismBoundsMigrations(t *testing.T) {
	h := newHarness(t, "", "a", "b", "c", "d", "e")
	h.src.Gate = make(chan struct{})
	p := h.plan(PlanRequest{})
	done := make(chan *Result)
	go func() {
		if _, err := h.store.Lock("apply"); err != nil {
			t.Error(err)
		}
		defer h.store.Unlock()
		res, err := h.engine().Apply(context.Background(), h.state(), p, ApplyOptions{Parallelism: 3})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	for h.src.InFlight() < 3 {
		runtime.Gosched()
	}
	for range 5 {
		h.src.Gate <- struct{}{}
	}
	if res := <-done; !res.OK() {
		t.Fatalf("apply: %+v", res)
	}
	if got := h.src.HighWater(); got != 3 {
		t.Errorf("exports in flight at most %d, want 3 (-parallelism)", got)
	}
}

func TestFailureSkipsDependentsOnly(t *testing.T) {
	h := newHarness(t, "", "db", "app", "web", "other")
	h.migration("app").DependsOn = []addrs.Migration{{Name: "db"}}
	h.migration("web").DependsOn = []addrs.Migration{{Name: "app"}}
	h.rehash()
	h.src.FailExport("migration.db", plugins.Terminal(errInjected))
	res := h.apply(h.plan(PlanRequest{}))
	want := &Result{
		Migrated: []string{"migration.other"},
		Removed:  []string{},
		Failed:   []Failure{{Address: "migration.db", Step: StepExport, Error: "export migration.db: injected", Terminal: true}},
		Waiting:  []Wait{},
		Skipped: []Skip{
			{Address: "migration.app", Reason: "dependency migration.db failed"},
			{Address: "migration.web", Reason: "dependency migration.app was skipped"},
		},
		NotStarted:  []string{},
		Interrupted: []Failure{},
	}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	st := h.state()
	if le := st.Migrations["migration.db"].LastError; le == nil || le.Step != StepExport {
		t.Errorf("last error of db = %+v, want the export failure recorded", le)
	}
	h.src.FailExport("migration.db", nil)
	h.converge()
}

func TestBlockedChangeIsSkipped(t *testing.T) {
	h := newHarness(t, "", "missing", "dep", "fine")
	h.migration("dep").DependsOn = []addrs.Migration{{Name: "missing"}}
	h.rehash()
	h.src.SetVM(h.migration("missing").VM, vmMissing)
	res := h.apply(h.plan(PlanRequest{}))
	if diff := cmp.Diff([]string{"migration.fine"}, res.Migrated); diff != "" {
		t.Errorf("migrated (-want +got):\n%s", diff)
	}
	if len(res.Skipped) != 2 || !strings.Contains(res.Skipped[1].Reason, "blocked") {
		t.Errorf("skipped = %+v, want missing (blocked) and dep", res.Skipped)
	}
	if h.src.Exports("migration.missing") != 0 {
		t.Error("a blocked migration was exported")
	}
}

func TestFailedJobRetriesAsNewAttempt(t *testing.T) {
	h := newHarness(t, "", "a")
	h.conv.FailNextJobs("migration.a", 1)
	res := h.apply(h.plan(PlanRequest{}))
	if len(res.Failed) != 1 || res.Failed[0].Step != StepAwait {
		t.Fatalf("result %+v, want await failure", res)
	}
	p := h.plan(PlanRequest{})
	c := p.Change("migration.a")
	if c.Steps[0].Kind != StepSubmit || c.Steps[0].Attempt != 2 || c.Steps[0].JobID != JobID(h.state().Lineage, "migration.a", 2) {
		t.Fatalf("retry steps %+v, want submit of attempt 2", c.Steps)
	}
	h.apply(p)
	if got := h.conv.Submits("migration.a"); got != 2 {
		t.Errorf("submits = %d, want 2 (one per attempt)", got)
	}
	if got := h.src.Exports("migration.a"); got != 1 {
		t.Errorf("exports = %d, want 1: a failed job does not redo the export", got)
	}
	h.converge()
}

func TestStalledJobIsWithdrawnAndResubmitted(t *testing.T) {
	h := newHarness(t, "", "a")
	h.conv.StallJobs("migration.a", "daemon hyper2kvm@x.service is inactive")
	h.apply(h.plan(PlanRequest{}))
	h.conv.StallJobs("migration.a", "")
	p := h.plan(PlanRequest{})
	kinds := stepKinds(p.Change("migration.a"))
	if diff := cmp.Diff([]StepKind{StepWithdraw, StepSubmit, StepAwait, StepDefine}, kinds); diff != "" {
		t.Fatalf("steps (-want +got):\n%s", diff)
	}
	want := &Condition{Kind: ConditionJobStalled, JobID: h.state().Migrations["migration.a"].Job.ID, Detail: "daemon hyper2kvm@x.service is inactive"}
	if diff := cmp.Diff(want, p.Change("migration.a").Condition); diff != "" {
		t.Errorf("condition (-want +got):\n%s", diff)
	}
	res := h.apply(p)
	if !res.OK() || h.conv.Withdrawn("migration.a") != 1 {
		t.Fatalf("result %+v withdrawn %d", res, h.conv.Withdrawn("migration.a"))
	}
}

// TestSubmitIntentIsRecognised simulates a run killed after Submit and
// before the state recorded it: the next plan finds the job by observation
// and awaits it instead of submitting again.
func TestSubmitIntentIsRecognised(t *testing.T) {
	h := newHarness(t, "", "a")
	h.conv.FailNextJobs("migration.a", 0)
	p := h.plan(PlanRequest{})
	p.Changes[0].Steps = p.Changes[0].Steps[:1] // export only
	h.apply(p)
	st := h.state()
	ms := st.Migrations["migration.a"]
	id := JobID(st.Lineage, "migration.a", 1)
	ms.Job, ms.Attempts = &JobRecord{Converter: convAddr.String(), ID: id, Attempt: 1}, 1
	h.writeState(st)
	if _, err := h.conv.Submit(context.Background(), plugins.SubmitRequest{Address: "migration.a", Campaign: st.Lineage, JobID: id, Export: *ms.Export}); err != nil {
		t.Fatal(err)
	}
	p = h.plan(PlanRequest{})
	if kinds := stepKinds(p.Change("migration.a")); kinds[0] != StepAwait {
		t.Fatalf("steps %v, want await first: the submitted job must be recognised", kinds)
	}
	h.converge()
	if got := h.conv.Submits("migration.a"); got != 1 {
		t.Errorf("submits = %d, want 1", got)
	}
}

func TestInterruptStopsAndRecords(t *testing.T) {
	h := newHarness(t, "", "a", "b", "c", "d")
	h.cfg.Agent.Parallelism = 2
	h.src.Gate = make(chan struct{})
	p := h.plan(PlanRequest{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *Result)
	go func() { done <- h.applyCtx(ctx, p) }()
	for h.src.InFlight() < 2 {
		runtime.Gosched()
	}
	cancel()
	res := <-done
	if len(res.Interrupted) != 2 || len(res.NotStarted) != 2 || len(res.Migrated) != 0 {
		t.Fatalf("result %+v: want 2 interrupted mid-export and 2 not started", res)
	}
	st := h.state()
	for _, f := range res.Interrupted {
		le := st.Migrations[f.Address].LastError
		if le == nil || !strings.HasPrefix(le.Message, "interrupted") {
			t.Errorf("%s: last error %+v, want the interruption recorded", f.Address, le)
		}
	}
	if _, ok, _ := ReadLockInfo(h.store.Dir()); ok {
		t.Error("the lock info is still there after apply returned")
	}
	h.src.Gate = nil
	h.converge()
	for _, m := range h.cfg.Migrations {
		if n := h.src.Exports(m.Addr.String()); n != 1 {
			t.Errorf("%s exported %d times, want 1", m.Addr, n)
		}
	}
}

func TestRemovalPrunesAndForgets(t *testing.T) {
	h := newHarness(t, "", "a", "b")
	h.converge()
	exportFile := h.state().Migrations["migration.b"].Export.Files[0].Path
	h.cfg.Migrations = without(h.cfg.Migrations, "b")
	h.rehash()
	res := h.apply(h.plan(PlanRequest{}))
	if diff := cmp.Diff([]string{"migration.b"}, res.Removed); diff != "" {
		t.Errorf("removed (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(exportFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("export file still there: %v", err)
	}
	if _, _, ok := h.tgt.Domain("b"); !ok {
		t.Error("the defined domain was touched")
	}
	if _, ok := h.state().Migrations["migration.b"]; ok {
		t.Error("the record is still in state")
	}
}

func TestRemovalWithdrawsQueuedJob(t *testing.T) {
	h := newHarness(t, "", "a")
	p := h.plan(PlanRequest{})
	p.Changes[0].Steps = p.Changes[0].Steps[:2] // export, submit
	h.apply(p)
	h.cfg.Migrations = nil
	h.rehash()
	p = h.plan(PlanRequest{})
	if diff := cmp.Diff([]StepKind{StepWithdraw, StepPrune, StepForget}, stepKinds(p.Change("migration.a"))); diff != "" {
		t.Fatalf("steps (-want +got):\n%s", diff)
	}
	res := h.apply(p)
	if len(res.Removed) != 1 || h.conv.Withdrawn("migration.a") != 1 {
		t.Fatalf("result %+v, withdrawn %d: want the queued job withdrawn", res, h.conv.Withdrawn("migration.a"))
	}
	if _, ok := h.conv.Job(JobID(h.state().Lineage, "migration.a", 1)); ok {
		t.Error("the job is still known to the converter")
	}
}

func TestTargetSelection(t *testing.T) {
	h := newHarness(t, "", "db", "app", "web[a]", "web[b]")
	h.migration("app").DependsOn = []addrs.Migration{{Name: "db"}}
	h.rehash()
	tests := map[string]struct {
		sel  Selection
		want []string
	}{
		"target pulls dependencies": {Selection{Targets: []addrs.Migration{{Name: "app"}}}, []string{"migration.app", "migration.db"}},
		"block target":              {Selection{Targets: []addrs.Migration{{Name: "web"}}}, []string{`migration.web["a"]`, `migration.web["b"]`}},
		"exclude instance": {Selection{Excludes: []addrs.Migration{{Name: "web", Key: "a", HasKey: true}}},
			[]string{"migration.app", "migration.db", `migration.web["b"]`}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got []string
			for _, c := range h.plan(PlanRequest{Selection: tc.sel}).Changes {
				got = append(got, c.Address)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

func stepKinds(c *Change) []StepKind {
	var out []StepKind
	for _, s := range c.Steps {
		out = append(out, s.Kind)
	}
	return out
}

var vmMissing = plugintest.VM{Missing: true}

// TestWaitingHoldsNoParallelism: a migration whose job sits in the queue
// gives its parallelism slot to one that can export meanwhile: with
// parallelism 1, an export runs while another's job waits, and the
// converter's limit of one job still holds (no deadlock between them).
func TestWaitingHoldsNoParallelism(t *testing.T) {
	h := newHarness(t, "", "a", "b", "c")
	h.conv.Rounds = 20
	h.conv.MaxParallel = 1
	var mu sync.Mutex
	awaiting := map[string]bool{}
	overlaps := 0
	events := func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case ev.Step == StepAwait && ev.Status == "start":
			awaiting[ev.Address] = true
		case ev.Step == StepAwait:
			delete(awaiting, ev.Address)
		case ev.Step == StepExport && ev.Status == "start" && len(awaiting) > 0:
			overlaps++
		}
	}
	p := h.plan(PlanRequest{})
	if _, err := h.store.Lock("apply"); err != nil {
		t.Fatal(err)
	}
	defer h.store.Unlock()
	done := make(chan *Result, 1)
	go func() {
		res, err := h.engine().Apply(context.Background(), h.state(), p, ApplyOptions{Parallelism: 1, Events: events})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	select {
	case res := <-done:
		if res == nil || !res.OK() || len(res.Migrated) != 3 {
			t.Fatalf("result %+v", res)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("apply did not finish: a deadlock between the parallelism and the converter's limit")
	}
	if hw := h.conv.HighWater(); hw != 1 {
		t.Errorf("jobs in flight at most %d, want 1", hw)
	}
	if overlaps == 0 {
		t.Errorf("no export started while a job waited: the waiting migration held the only slot")
	}
}

// TestClaimedStallIsNotResubmitted: a job a consumer claimed that shows no
// progress may still be running: no second attempt is queued beside it;
// the plan blocks and says what to do.
func TestClaimedStallIsNotResubmitted(t *testing.T) {
	h := newHarness(t, "", "a")
	h.conv.StallClaimedJobs("migration.a", "processing for 2h5m (timeout 2h); hyper2kvm@x.service is active")
	h.apply(h.plan(PlanRequest{}))
	c := h.plan(PlanRequest{}).Change("migration.a")
	if !c.Blocked || !strings.Contains(firstError(c.Findings), "was claimed and shows no progress") {
		t.Fatalf("change %+v, want blocked", c)
	}
	if c.Condition == nil || c.Condition.Kind != ConditionJobStalled || !strings.Contains(c.Condition.Detail, "timeout 2h") {
		t.Errorf("condition %+v, want job_stalled with the converter's detail", c.Condition)
	}
	h.apply(h.plan(PlanRequest{}))
	if n := h.conv.Submits("migration.a"); n != 1 {
		t.Errorf("submitted %d times, want 1: a second attempt ran beside the claimed one", n)
	}
}

// TestDefineRecordsWhen: every define, a redefine of the same domain
// after it vanished included, records when it happened.
func TestDefineRecordsWhen(t *testing.T) {
	h := newHarness(t, "", "a")
	h.converge()
	first := h.state().Migrations["migration.a"]
	if first.DefinedAt == nil || first.Domain == nil {
		t.Fatalf("record %+v, want defined_at set", first)
	}
	mustDo(t, h.tgt.Undefine(first.Domain.Name))
	h.converge()
	again := h.state().Migrations["migration.a"]
	if again.DefinedAt == nil || !again.DefinedAt.After(*first.DefinedAt) {
		t.Errorf("defined_at %v after the redefine, want later than %v", again.DefinedAt, first.DefinedAt)
	}
}
